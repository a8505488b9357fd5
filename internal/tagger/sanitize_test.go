package tagger_test

import (
	"strconv"
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
		{"allowed punctuation", "a_b.c:d/f+g-h@i j", "a_b.c:d/f+g-h@i j"},
		{"unicode letters kept", "Zoë Ñandú 東京", "Zoë Ñandú 東京"},
		{"comma of an IAM name escaped", "arn:aws:iam::111122223333:user/alice,ops", "arn:aws:iam::111122223333:user/alice=2Cops"},
		{"the escape escaped", "a=b", "a=3Db"},
		{"disallowed escaped", "a;b<c>d\"e'f*g", "a=3Bb=3Cc=3Ed=22e=27f=2Ag"},
		{"a disallowed multi-byte character, byte by byte", "a\u2028b", "a=E2=80=A8b"},
		{"control characters", "a\nb\tc\x00d", "a=0Ab=09c=00d"},
		{"invalid utf8", "a\xffb", "a=FFb"},
		{"empty", "", ""},
		{"at limit", strings.Repeat("v", 256), strings.Repeat("v", 256)},
		{"over limit", long, strings.Repeat("a", 238) + "=_" + "9835fa6bf4e20a9b"},
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

// TestSanitizeValueKeepsPrincipalsApart tries the collisions an attacker
// would choose a principal name for: each pair must map to two values.
func TestSanitizeValueKeepsPrincipalsApart(t *testing.T) {
	victim := "arn:aws:sts::111122223333:assumed-role/Admin/" + strings.Repeat("s", 300)
	truncated := tagger.SanitizeValue(victim)
	tests := []struct{ name, a, b string }{
		{"comma and underscore", "arn:aws:iam::111122223333:user/alice,ops", "arn:aws:iam::111122223333:user/alice_ops"},
		{"escape spelled out", "arn:aws:iam::111122223333:user/alice,ops", "arn:aws:iam::111122223333:user/alice=2Cops"},
		{"invalid byte and its escape", "a\xffb", "a=FFb"},
		{"a value written whole that spells a truncation", victim, truncated},
		{"long values sharing a prefix", victim + "1", victim + "2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if a, b := tagger.SanitizeValue(tt.a), tagger.SanitizeValue(tt.b); a == b {
				t.Errorf("got %q for both %q and %q, want two values", a, tt.a, tt.b)
			}
		})
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
		// A value written whole decodes back to s: the mapping is one to one.
		if !strings.Contains(got, "=_") {
			if back := unescape(t, got); back != s {
				t.Fatalf("SanitizeValue(%q) = %q, which decodes to %q", s, got, back)
			}
		}
	})
}

// unescape reverses SanitizeValue's escaping ('=' and two hex digits per
// byte), failing t on anything else after '='.
func unescape(t *testing.T, v string) string {
	var b []byte
	for i := 0; i < len(v); i++ {
		if v[i] != '=' {
			b = append(b, v[i])
			continue
		}
		if i+2 >= len(v) {
			t.Fatalf("%q: '=' at %d without two hex digits", v, i)
		}
		n, err := strconv.ParseUint(v[i+1:i+3], 16, 8)
		if err != nil || strings.ToUpper(v[i+1:i+3]) != v[i+1:i+3] {
			t.Fatalf("%q: '=' at %d not followed by two upper-case hex digits", v, i)
		}
		b = append(b, byte(n))
		i += 2
	}
	return string(b)
}
