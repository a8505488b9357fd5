package tagger

import (
	"context"
	"errors"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/kms-autotagger/kms-autotagger/internal/events"
)

// Class is what a failure means for the event: whether trying again later
// can succeed.
type Class int

const (
	// Transient failures may succeed later: KMS internal errors, throttling,
	// 5xx, network faults, a deadline reached. The handler returns them as
	// errors so that Lambda retries the event and finally hands it to the
	// on-failure destination.
	Transient Class = iota + 1
	// Permanent failures will fail the same way every time until someone
	// acts: a key pending deletion, a rejected tag, a tag limit, a bad ARN,
	// access denied, a key that is not found, a malformed event, a member
	// account's role that cannot be assumed. The handler writes them to the
	// dead-letter queue.
	Permanent
)

// String returns the lower-case name of the class.
func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case Permanent:
		return "permanent"
	default:
		return "unknown"
	}
}

// Error codes KMS and the SDK return that the classification names.
const (
	CodeKMSInternal        = "KMSInternalException"
	CodeKMSInvalidState    = "KMSInvalidStateException"
	CodeDependencyTimeout  = "DependencyTimeoutException"
	CodeThrottling         = "ThrottlingException"
	CodeLimitExceeded      = "LimitExceededException"
	CodeTag                = "TagException"
	CodeInvalidARN         = "InvalidArnException"
	CodeNotFound           = "NotFoundException"
	CodeAccessDenied       = "AccessDeniedException"
	CodeMalformedEvent     = "MalformedEvent"
	CodeTagBudgetExceeded  = "TagBudgetExceeded"
	CodeDeadlineExceeded   = "DeadlineExceeded"
	CodeNetwork            = "NetworkError"
	CodeUnknown            = "Unknown"
	CodeAssumeRoleFailed   = "AssumeRoleFailed"
	CodeCrossAccountOff    = "CrossAccountOff"
	codeRequestTimeoutLong = "RequestTimeoutException"
)

// transientCodes are API error codes worth retrying later. Every other API
// error code with a 4xx status is permanent.
var transientCodes = map[string]struct{}{
	CodeKMSInternal:        {},
	CodeDependencyTimeout:  {},
	codeRequestTimeoutLong: {},
	"RequestTimeout":       {},
	"InternalFailure":      {},
	"ServiceUnavailable":   {},
	"KMSInternalError":     {},
}

// Classify sorts err into a Class and names it with an error code: the
// smithy.APIError code for AWS errors, or one of this package's codes.
func Classify(err error) (Class, string) {
	var (
		apiErr    smithy.APIError
		malformed *events.MalformedError
		respErr   *awshttp.ResponseError
		account   *AccountError
	)
	switch {
	case errors.As(err, &account):
		// No credentials for the key's account: permanent, unless STS
		// itself failed in a way worth retrying.
		if account.RoleARN == "" {
			return Permanent, CodeCrossAccountOff
		}
		if class, code := Classify(account.Err); class == Transient && code != CodeUnknown {
			return class, code
		}
		return Permanent, CodeAssumeRoleFailed
	case errors.Is(err, events.ErrInconsistent):
		return Permanent, CodeInconsistentEvent
	case errors.As(err, &malformed):
		return Permanent, CodeMalformedEvent
	case errors.As(err, &apiErr):
		code := apiErr.ErrorCode()
		if _, ok := transientCodes[code]; ok {
			return Transient, code
		}
		if _, ok := retry.DefaultThrottleErrorCodes[code]; ok && code != CodeLimitExceeded {
			return Transient, code
		}
		if errors.As(err, &respErr) && respErr.HTTPStatusCode() >= http.StatusInternalServerError {
			return Transient, code
		}
		return Permanent, code
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return Transient, CodeDeadlineExceeded
	case retry.RetryableConnectionError{}.IsErrorRetryable(err) == aws.TrueTernary:
		return Transient, CodeNetwork
	case errors.As(err, &respErr) && respErr.HTTPStatusCode() >= http.StatusBadRequest &&
		respErr.HTTPStatusCode() < http.StatusInternalServerError && respErr.HTTPStatusCode() != http.StatusTooManyRequests:
		// A 4xx without an error code: the request itself is wrong.
		return Permanent, CodeUnknown
	default:
		// An error we cannot name is treated as transient: Lambda retries
		// it and its on-failure destination keeps it, so it is not lost.
		return Transient, CodeUnknown
	}
}
