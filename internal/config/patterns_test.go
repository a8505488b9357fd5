package config

import (
	"regexp"
	"strings"
	"testing"
)

// The patterns isRoleName and isRolePath stand for, as IAM documents them.
var (
	roleNameRegexp = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
	rolePathRegexp = regexp.MustCompile(`^/([\x21-\x7E]{0,510}/)?$`)
)

// FuzzRolePatterns checks that isRoleName and isRolePath agree with the
// regular expressions on every input; the seeds are the edge cases.
func FuzzRolePatterns(f *testing.F) {
	for _, s := range []string{
		"", "/", "//", "/a/", "a", "/a", "a/", "/governance/", "/a b/", "/\x7f/", "/é/", "/\xff/",
		"/" + strings.Repeat("x", 510) + "/", "/" + strings.Repeat("x", 511) + "/",
		"kms-autotagger-member", "role_name+=,.@-", "role name", "rôle", strings.Repeat("r", 64), strings.Repeat("r", 65),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := isRoleName(s), roleNameRegexp.MatchString(s); got != want {
			t.Errorf("isRoleName(%q): got %v, want %v", s, got, want)
		}
		if got, want := isRolePath(s), rolePathRegexp.MatchString(s); got != want {
			t.Errorf("isRolePath(%q): got %v, want %v", s, got, want)
		}
	})
}
