package backfill

import (
	"context"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/time/rate"
)

// Operation names, as counted in Summary.Requests.
const (
	OpLookupEvents     = "LookupEvents"
	OpTagResource      = "TagResource"
	OpListResourceTags = "ListResourceTags"
	OpListKeys         = "ListKeys"
	OpDescribeKey      = "DescribeKey"
)

// meter counts the attempts of every call by operation, and holds the
// client-side rate limiters of one run, one per region and operation.
//
// The limiters are golang.org/x/time/rate token buckets (the Go team's
// well-kept implementation): each attempt, retries included, waits for a
// token, so the rate the service sees never exceeds the limit, whatever the
// retryer does. A bucket holds a single token: no burst above the rate.
type meter struct {
	mu       sync.Mutex
	counts   map[string]int
	limiters map[limiterKey]*rate.Limiter
	limits   map[string]rate.Limit
}

type limiterKey struct{ region, op string }

// newMeter returns a meter limiting each operation of limits to its rate in
// every region.
func newMeter(limits map[string]float64) *meter {
	m := &meter{counts: make(map[string]int), limiters: make(map[limiterKey]*rate.Limiter), limits: make(map[string]rate.Limit)}
	for op, r := range limits {
		m.limits[op] = rate.Limit(r)
	}
	return m
}

// limiter returns the limiter of op in region, nil when op is not limited.
func (m *meter) limiter(region, op string) *rate.Limiter {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.limits[op]
	if !ok {
		return nil
	}
	k := limiterKey{region, op}
	l, ok := m.limiters[k]
	if !ok {
		l = rate.NewLimiter(r, 1)
		m.limiters[k] = l
	}
	return l
}

// requests returns a copy of the counts.
func (m *meter) requests() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]int, len(m.counts))
	for k, v := range m.counts {
		out[k] = v
	}
	return out
}

// middleware returns the stack mutator that, for every attempt of a call to
// op in region, waits for the limiter and counts the attempt. It sits right
// after the retry middleware, so it runs once per attempt.
func (m *meter) middleware(region, op string) func(*middleware.Stack) error {
	lim := m.limiter(region, op)
	mw := middleware.FinalizeMiddlewareFunc("BackfillMeter",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			if lim != nil {
				if err := lim.Wait(ctx); err != nil {
					return middleware.FinalizeOutput{}, middleware.Metadata{}, fmt.Errorf("waiting for the %s rate limit in %s: %w", op, region, err)
				}
			}
			m.mu.Lock()
			m.counts[op]++
			m.mu.Unlock()
			return next.HandleFinalize(ctx, in)
		})
	return func(s *middleware.Stack) error {
		if err := s.Finalize.Insert(mw, "Retry", middleware.After); err != nil {
			return s.Finalize.Add(mw, middleware.Before)
		}
		return nil
	}
}

// cloudtrailOpts returns the per-call option metering op in region.
func (m *meter) cloudtrailOpts(region, op string) func(*cloudtrail.Options) {
	mw := m.middleware(region, op)
	return func(o *cloudtrail.Options) { o.APIOptions = append(o.APIOptions, mw) }
}

// kmsOpts returns the per-call option metering op in region.
func (m *meter) kmsOpts(region, op string) func(*kms.Options) {
	mw := m.middleware(region, op)
	return func(o *kms.Options) { o.APIOptions = append(o.APIOptions, mw) }
}
