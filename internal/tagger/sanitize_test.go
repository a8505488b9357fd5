package tagger_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

func TestSanitizeValue(t *testing.T) {
	long := strings.Repeat("a", 300)
	tests := []struct {
		name, in, want string
	}{
		{"arn unchanged", "arn:aws:iam::111122223333:user/alice@example.com", "arn:aws:iam::111122223333:user/alice@example.com"},
		{"allowed punctuation", "a_b.c:d/e=f+g-h@i j", "a_b.c:d/e=f+g-h@i j"},
		{"unicode letters kept", "Zoë Ñandú 東京", "Zoë Ñandú 東京"},
		{"disallowed replaced", "a,b;c<d>e\"f'g*h", "a_b_c_d_e_f_g_h"},
		{"control characters", "a\nb\tc\x00d", "a_b_c_d"},
		{"invalid utf8", "a\xffb", "a_b"},
		{"empty", "", ""},
		{"at limit", strings.Repeat("v", 256), strings.Repeat("v", 256)},
		{"over limit", long, strings.Repeat("a", 245) + "..." + "9835fa6b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tagger.SanitizeValue(tt.in)
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if err := tagger.ValidateValue(got); err != nil {
				t.Errorf("sanitized value fails validation: %v", err)
			}
		})
	}
}

func TestSanitizeValueTruncationDistinguishesPrefixes(t *testing.T) {
	a := tagger.SanitizeValue(strings.Repeat("x", 300) + "a")
	b := tagger.SanitizeValue(strings.Repeat("x", 300) + "b")
	if a == b {
		t.Errorf("got the same truncation %q for different values, want different hashes", a)
	}
	multi := tagger.SanitizeValue(strings.Repeat("é", 400))
	if n := utf8.RuneCountInString(multi); n != tagger.MaxTagValueLen {
		t.Errorf("got %d characters, want %d", n, tagger.MaxTagValueLen)
	}
}

func FuzzSanitizeValue(f *testing.F) {
	for _, s := range []string{"", "arn:aws:iam::1:user/a", "a\xffb", strings.Repeat("é,", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := tagger.SanitizeValue(s)
		if err := tagger.ValidateValue(got); err != nil {
			t.Fatalf("SanitizeValue(%q) = %q, which KMS rejects: %v", s, got, err)
		}
		if tagger.SanitizeValue(s) != got {
			t.Fatalf("SanitizeValue(%q) is not deterministic", s)
		}
	})
}
