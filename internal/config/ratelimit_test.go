package config_test

import (
	"strings"
	"testing"

	"github.com/kms-autotagger/kms-autotagger/internal/config"
)

func TestTagRateLimit(t *testing.T) {
	tests := []struct {
		value   string
		want    float64
		wantErr bool
	}{
		{"", 1, false}, // the default: 10 per second across the template's 10 reserved instances
		{"0", 0, false},
		{"1", 1, false},
		{" 2.5 ", 2.5, false},
		{"0.2", 0.2, false},
		{"-1", 0, true},
		{"fast", 0, true},
		{"NaN", 0, true},
		{"+Inf", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			c, err := config.FromEnv(env(map[string]string{config.EnvTagRateLimit: tt.value}))
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), config.EnvTagRateLimit) {
					t.Fatalf("got error %v, want one naming %s", err, config.EnvTagRateLimit)
				}
				return
			}
			if err != nil {
				t.Fatalf("FromEnv: %v", err)
			}
			if c.TagRateLimit != tt.want {
				t.Errorf("TagRateLimit: got %g, want %g", c.TagRateLimit, tt.want)
			}
		})
	}
}

func TestTagRateLimitSetting(t *testing.T) {
	for _, s := range config.Settings {
		if s.Env == config.EnvTagRateLimit {
			// 1 per instance: 10 per second, the default TagResource quota,
			// across template.yaml's default ReservedConcurrency of 10.
			if s.Default != "1" {
				t.Errorf("default: got %q, want \"1\"", s.Default)
			}
			return
		}
	}
	t.Errorf("Settings has no %s", config.EnvTagRateLimit)
}
