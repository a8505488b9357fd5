package awskms

import (
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"

	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
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
// retryer, which already retries with exponential backoff and jitter every
// HTTP 500, 502, 503 and 504 (so KMSInternalException, 500, and
// DependencyTimeoutException, 503, as KMS sends them), network faults and
// the throttling codes, with four changes, each tested against the plain
// standard retryer in retry_test.go:
//   - LimitExceededException is not retried: the standard retryer takes it
//     for throttling, but for TagResource it means the key has too many
//     tags, which no retry fixes;
//   - NotFoundException, which the standard retryer does not retry, is
//     retried up to NotFoundAttempts attempts: a key just created may not be
//     visible to every KMS host yet (eventual consistency);
//   - a *RateLimitError (see WithRateLimit) is not retried: it wraps
//     context.DeadlineExceeded, a temporary error to the standard retryer,
//     but no later attempt would get a turn before the deadline either;
//   - the client-side retry quota is off: the standard retryer stops
//     retrying once a client's retries have spent its 500 tokens, but a
//     Lambda instance handles one event at a time, and the invocation
//     deadline bounds the retries instead.
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

// kmsRetryable decides the errors the standard list gets wrong for tagging.
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
	case tagger.CodeNotFound:
		return aws.TrueTernary // bounded by kmsRetryer.RetryDelay
	case tagger.CodeLimitExceeded:
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
	if attempt >= r.notFoundAttempts && errors.As(opErr, &apiErr) && apiErr.ErrorCode() == tagger.CodeNotFound {
		return 0, &retry.MaxAttemptsError{Attempt: attempt, Err: fmt.Errorf("key still not found: %w", opErr)}
	}
	return r.Standard.RetryDelay(attempt, opErr)
}

// NewLookupRetryer returns the retryer for the clients of the lookups that
// read AWS's records of a key (the stack lookups' CloudFormation and
// CloudTrail clients): the SDK's standard retryer, which retries throttling
// (CloudFormation's Throttling, CloudTrail's ThrottlingException), 5xx and
// network faults with exponential backoff and jitter, with two of the
// changes of NewRetryer: a *RateLimitError (NewRateLimit) is not retried,
// and the client-side retry quota is off, the invocation deadline bounding
// the retries instead. NotFoundAttempts is not used.
func NewLookupRetryer(o RetryOptions) aws.Retryer {
	return retry.NewStandard(func(so *retry.StandardOptions) {
		if o.MaxAttempts > 0 {
			so.MaxAttempts = o.MaxAttempts
		}
		if o.MaxBackoff > 0 {
			so.MaxBackoff = o.MaxBackoff
		}
		so.RateLimiter = ratelimit.None
		so.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
			var limitErr *RateLimitError
			if errors.As(err, &limitErr) {
				return aws.FalseTernary
			}
			return aws.UnknownTernary
		})}, so.Retryables...)
	})
}
