package tagger

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits KMS enforces on tags (see the KMS API reference for Tag and
// TagResource).
const (
	// MaxTagKeyLen is the longest tag key KMS accepts, in characters.
	MaxTagKeyLen = 128
	// MaxTagValueLen is the longest tag value KMS accepts, in characters.
	MaxTagValueLen = 256
	// MaxTagsPerKey is the most tags one KMS key can carry.
	MaxTagsPerKey = 50
	// ReservedPrefix starts tag keys that only AWS may use.
	ReservedPrefix = "aws:"
	// Escape starts the escape of a byte KMS does not accept in a value,
	// and of itself: '=' and two upper-case hex digits of the byte, as in
	// quoted-printable (RFC 2045, section 6.7).
	Escape = '='
	// truncMark and truncHashLen end a truncated value: "=_", which no
	// escaped value contains ('=' is always followed by two hex digits
	// there), and that many hex digits (64 bits) of the SHA-256 of the full
	// value.
	truncMark    = "=_"
	truncHashLen = 16
)

// allowed reports whether KMS accepts r in a tag key or value: Unicode
// letters, numbers and space separators, and _ . : / = + - @.
func allowed(r rune) bool {
	if unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Zs, r) {
		return true
	}
	return strings.ContainsRune("_.:/=+-@", r)
}

// SanitizeValue makes s a tag value KMS accepts. The mapping is
// deterministic and keeps different values apart (two principals never get
// the same tag value):
//   - every character KMS accepts (a letter, number or space separator, or
//     one of _ . : / + - @) is kept;
//   - '=' and every byte of any other character (',' which IAM names may
//     contain, or invalid UTF-8) become '=' and the byte's two upper-case
//     hex digits: "alice,ops" is "alice=2Cops", "a=b" is "a=3Db", and
//     "alice_ops" stays "alice_ops";
//   - a result longer than 256 characters keeps its first 238 characters
//     and ends with "=_" and 16 hex digits (64 bits) of the SHA-256 of the
//     original s. No escaped value contains "=_", so a truncated value
//     never equals another value written whole.
func SanitizeValue(s string) string {
	return fit(escape(s), s, MaxTagValueLen)
}

// ValidateKey reports why KMS would reject k as a tag key, or nil. Tag keys
// come from configuration, so they are checked, never silently rewritten.
func ValidateKey(k string) error {
	switch n := utf8.RuneCountInString(k); {
	case n == 0:
		return errors.New("tag key is empty")
	case n > MaxTagKeyLen:
		return fmt.Errorf("tag key %q is %d characters, more than %d", k, n, MaxTagKeyLen)
	}
	if isReserved(k) {
		return fmt.Errorf("tag key %q starts with the reserved prefix %q", k, ReservedPrefix)
	}
	if !utf8.ValidString(k) {
		return fmt.Errorf("tag key %q is not valid UTF-8", k)
	}
	for _, r := range k {
		if !allowed(r) {
			return fmt.Errorf("tag key %q has the character %q, which KMS does not accept", k, r)
		}
	}
	return nil
}

// ValidateValue reports why KMS would reject v as a tag value, or nil.
func ValidateValue(v string) error {
	if n := utf8.RuneCountInString(v); n > MaxTagValueLen {
		return fmt.Errorf("tag value is %d characters, more than %d", n, MaxTagValueLen)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("tag value %q is not valid UTF-8", v)
	}
	for _, r := range v {
		if !allowed(r) {
			return fmt.Errorf("tag value %q has the character %q, which KMS does not accept", v, r)
		}
	}
	return nil
}

// escape applies SanitizeValue's escaping to s.
func escape(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || r == Escape || !allowed(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size <= 1) || r == Escape || !allowed(r) {
			for _, c := range []byte(s[i : i+size]) {
				fmt.Fprintf(&b, "%c%02X", Escape, c)
			}
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// fit truncates clean to max characters, ending it with a hash of original.
func fit(clean, original string, max int) string {
	if utf8.RuneCountInString(clean) <= max {
		return clean
	}
	sum := sha256.Sum256([]byte(original))
	suffix := truncMark + hex.EncodeToString(sum[:])[:truncHashLen]
	keep := max - utf8.RuneCountInString(suffix)
	i, n := 0, 0
	for i = range clean {
		if n == keep {
			break
		}
		n++
	}
	return clean[:i] + suffix
}
