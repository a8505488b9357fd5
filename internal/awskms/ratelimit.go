package awskms

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/time/rate"
)

// LimitedOperations are the KMS operations WithRateLimit limits: the
// writes, whose request quotas (10 per second each by default) every tagger
// and person tagging keys in the account and Region shares. The reads the
// handler makes before writing (DescribeKey, ListResourceTags) have quotas
// of their own, far larger, and are not limited.
var LimitedOperations = []string{"TagResource", "UntagResource"}

// WithRateLimit returns a KMS client option that keeps the client's
// requests of each of LimitedOperations, every retry included, to at most
// perSecond per second: each attempt waits for a token of a
// golang.org/x/time/rate bucket that holds a single token (no burst above
// the rate). Every client the option is applied to gets buckets of its own,
// one per operation, which matches KMS's request quotas: they are per
// operation, account and Region, and the tagger keeps one client per
// account and Region.
//
// An attempt that cannot get its token before its context ends fails with
// a *RateLimitError that wraps context.DeadlineExceeded: the retryer of
// NewRetryer does not retry it (no later attempt would fare better), and
// Classify calls it a transient failure, so Lambda retries the event.
//
// perSecond <= 0 returns an option that changes nothing.
func WithRateLimit(perSecond float64) func(*kms.Options) {
	if perSecond <= 0 {
		return func(*kms.Options) {}
	}
	return func(o *kms.Options) {
		limiters := make(map[string]*rate.Limiter, len(LimitedOperations))
		for _, op := range LimitedOperations {
			limiters[op] = rate.NewLimiter(rate.Limit(perSecond), 1)
		}
		mw := middleware.FinalizeMiddlewareFunc("TagRateLimit",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				lim, ok := limiters[middleware.GetOperationName(ctx)]
				if !ok {
					return next.HandleFinalize(ctx, in)
				}
				if err := lim.Wait(ctx); err != nil {
					if ctx.Err() == nil { // the wait would outlast the deadline
						err = fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
					}
					return middleware.FinalizeOutput{}, middleware.Metadata{}, &RateLimitError{PerSecond: perSecond, Err: err}
				}
				return next.HandleFinalize(ctx, in)
			})
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			// Right after the retry middleware: once per attempt.
			return s.Finalize.Insert(mw, "Retry", middleware.After)
		})
	}
}

// RateLimitError is the error of an attempt that could not get its turn
// under WithRateLimit before its context ended.
type RateLimitError struct {
	// Service is the API whose client is limited (NewRateLimit); "KMS"
	// when empty.
	Service string
	// PerSecond is the limit.
	PerSecond float64
	// Err is the context's error, or one that wraps
	// context.DeadlineExceeded when the turn would come after the deadline.
	Err error
}

func (e *RateLimitError) Error() string {
	service := e.Service
	if service == "" {
		service = "KMS"
	}
	return fmt.Sprintf("waiting for the %s rate limit of %g per second: %v", service, e.PerSecond, e.Err)
}

// Unwrap returns Err.
func (e *RateLimitError) Unwrap() error { return e.Err }

// NewRateLimit returns an API option, for the APIOptions of a client of any
// AWS service, that keeps every request of the client, each retry
// included, to at most perSecond per second, as WithRateLimit does for the
// KMS writes: each attempt waits for a token of one golang.org/x/time/rate
// bucket of a single token, made here, and an attempt that cannot get its
// token before its context ends fails with a *RateLimitError naming
// service (which NewLookupRetryer does not retry). Give each client an
// option of its own: clients given the same one share its bucket. The
// stack lookups (internal/awscfn) limit their CloudFormation and
// CloudTrail clients with it, one per account and Region. perSecond <= 0
// returns an option that changes nothing.
func NewRateLimit(service string, perSecond float64) func(*middleware.Stack) error {
	if perSecond <= 0 {
		return func(*middleware.Stack) error { return nil }
	}
	lim := rate.NewLimiter(rate.Limit(perSecond), 1)
	mw := middleware.FinalizeMiddlewareFunc("LookupRateLimit",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			if err := lim.Wait(ctx); err != nil {
				if ctx.Err() == nil { // the wait would outlast the deadline
					err = fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
				}
				return middleware.FinalizeOutput{}, middleware.Metadata{}, &RateLimitError{Service: service, PerSecond: perSecond, Err: err}
			}
			return next.HandleFinalize(ctx, in)
		})
	return func(s *middleware.Stack) error {
		// Right after the retry middleware: once per attempt.
		return s.Finalize.Insert(mw, "Retry", middleware.After)
	}
}
