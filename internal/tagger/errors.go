package tagger

import "fmt"

// AccountError is a failure to get KMS credentials for a key's account: the
// role in it could not be assumed (RoleARN names the role), or the key is
// in another account while cross-account tagging is off (RoleARN is
// empty). The KMS clients of internal/awskms return it. Classify sorts it as permanent, with CodeAssumeRoleFailed or
// CodeCrossAccountOff, unless the cause is transient (STS throttled, 5xx,
// network fault, deadline).
type AccountError struct {
	Account string
	RoleARN string
	Err     error
}

// Error names the account and, when there is one, the role.
func (e *AccountError) Error() string {
	if e.RoleARN == "" {
		return fmt.Sprintf("key of account %s: %v", e.Account, e.Err)
	}
	return fmt.Sprintf("assuming role %s in account %s: %v", e.RoleARN, e.Account, e.Err)
}

// Unwrap returns the cause.
func (e *AccountError) Unwrap() error { return e.Err }
