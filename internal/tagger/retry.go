package tagger

import (
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
)

// RetryOptions bound how the KMS client retries one TagResource call.
type RetryOptions struct {
	// MaxAttempts is the most attempts per call, the first included.
	MaxAttempts int
	// MaxBackoff caps the exponential backoff (with full jitter) between
	// attempts.
	MaxBackoff time.Duration
	// NotFoundAttempts is the most attempts when KMS answers
	// NotFoundException: a key just created may not be visible everywhere
	// yet (eventual consistency), but a key that stays unknown is a
	// permanent failure.
	NotFoundAttempts int
}

// NewRetryer returns the retryer for KMS clients: the SDK's standard
// retryer (exponential backoff with jitter; 5xx, network faults and
// throttling are retried) with three changes:
//   - KMSInternalException and DependencyTimeoutException are retried,
//     which the standard retryer does not do by default;
//   - LimitExceededException is not retried: for TagResource it means the
//     key has too many tags, which no retry fixes;
//   - NotFoundException is retried up to NotFoundAttempts attempts;
//   - a *RateLimitError (see WithRateLimit) is not retried.
//
// The client-side retry quota is off: a Lambda instance handles one event
// at a time, and the invocation deadline bounds the retries instead.
func NewRetryer(o RetryOptions) aws.Retryer {
	std := retry.NewStandard(func(so *retry.StandardOptions) {
		if o.MaxAttempts > 0 {
			so.MaxAttempts = o.MaxAttempts
		}
		if o.MaxBackoff > 0 {
			so.MaxBackoff = o.MaxBackoff
		}
		so.RateLimiter = ratelimit.None
		so.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(kmsRetryable)}, so.Retryables...)
	})
	return &kmsRetryer{Standard: std, notFoundAttempts: max(o.NotFoundAttempts, 1)}
}

// kmsRetryable decides the KMS error codes the standard list gets wrong.
func kmsRetryable(err error) aws.Ternary {
	var limitErr *RateLimitError
	if errors.As(err, &limitErr) {
		return aws.FalseTernary
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return aws.UnknownTernary
	}
	switch apiErr.ErrorCode() {
	case CodeKMSInternal, CodeDependencyTimeout:
		return aws.TrueTernary
	case CodeNotFound:
		return aws.TrueTernary // bounded by kmsRetryer.RetryDelay
	case CodeLimitExceeded:
		return aws.FalseTernary
	}
	return aws.UnknownTernary
}

// kmsRetryer bounds NotFoundException retries separately from the others.
type kmsRetryer struct {
	*retry.Standard
	notFoundAttempts int
}

// RetryDelay ends the retries of a NotFoundException after
// notFoundAttempts attempts; the error it returns wraps the KMS error, so
// classification still sees its code.
func (r *kmsRetryer) RetryDelay(attempt int, opErr error) (time.Duration, error) {
	var apiErr smithy.APIError
	if attempt >= r.notFoundAttempts && errors.As(opErr, &apiErr) && apiErr.ErrorCode() == CodeNotFound {
		return 0, &retry.MaxAttemptsError{Attempt: attempt, Err: fmt.Errorf("key still not found: %w", opErr)}
	}
	return r.Standard.RetryDelay(attempt, opErr)
}
