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
	// Replacement stands in for every character KMS does not accept.
	Replacement = '_'
	// truncMark and truncHashLen end a truncated value: "..." and that many
	// hex digits of the SHA-256 of the full value.
	truncMark    = "..."
	truncHashLen = 8
)

// allowed reports whether KMS accepts r in a tag key or value: Unicode
// letters, numbers and space separators, and _ . : / = + - @.
func allowed(r rune) bool {
	if unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Zs, r) {
		return true
	}
	return strings.ContainsRune("_.:/=+-@", r)
}

// SanitizeValue makes s a tag value KMS accepts. It is deterministic:
//   - every character that is not a letter, number, space separator or one of
//     _ . : / = + - @ (including invalid UTF-8) becomes '_';
//   - a result longer than 256 characters keeps its first 245 characters and
//     ends with "..." and the first 8 hex digits of the SHA-256 of the
//     original s, so two long values that share a prefix still differ.
func SanitizeValue(s string) string {
	return fit(replaceDisallowed(s), s, MaxTagValueLen)
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

func replaceDisallowed(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || !allowed(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s { // invalid UTF-8 yields utf8.RuneError per bad byte
		if r == utf8.RuneError || !allowed(r) {
			r = Replacement
		}
		b.WriteRune(r)
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
