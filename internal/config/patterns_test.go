package config

import (
	"strings"
	"testing"
)

func TestRolePatterns(t *testing.T) {
	for _, tt := range []struct {
		s          string
		name, path bool
	}{
		{"", false, false},
		{"/", false, true},
		{"//", false, false},
		{"/a/", false, true},
		{"/a/b/", false, true},
		{"/a//b/", false, false},
		{"/governance/", false, true},
		{"/kms-autotagger/", false, true},
		{"/a", false, false},
		{"a/", false, false},
		{"/a b/", false, false},
		{"/*/", false, false},
		{"/a?/", false, false},
		{"/é/", false, false},
		{"/" + strings.Repeat("x", 510) + "/", false, true},
		{"/" + strings.Repeat("x", 511) + "/", false, false},
		{"a", true, false},
		{"kms-autotagger-member", true, false},
		{"role_name+=,.@-", true, false},
		{"role name", false, false},
		{"rôle", false, false},
		{"path/role", false, false},
		{strings.Repeat("r", 64), true, false},
		{strings.Repeat("r", 65), false, false},
	} {
		if got := isRoleName(tt.s); got != tt.name {
			t.Errorf("isRoleName(%q): got %v, want %v", tt.s, got, tt.name)
		}
		if got := isRolePath(tt.s); got != tt.path {
			t.Errorf("isRolePath(%q): got %v, want %v", tt.s, got, tt.path)
		}
	}
}
