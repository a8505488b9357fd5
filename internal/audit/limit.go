package audit

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/time/rate"
)

// Operation names, as counted in PartitionReport.Requests.
const (
	OpListKeys         = "ListKeys"
	OpDescribeKey      = "DescribeKey"
	OpListResourceTags = "ListResourceTags"
	OpLookupEvents     = "LookupEvents"
	OpTagResource      = "TagResource"
	OpUntagResource    = "UntagResource"
)

// Rate-limit classes: the operations of one class share one token bucket
// per account and region.
const (
	classRead   = "read"   // ListKeys, DescribeKey, ListResourceTags
	classLookup = "lookup" // LookupEvents
	classWrite  = "write"  // TagResource, UntagResource
)

// classOf is the rate-limit class of each operation.
var classOf = map[string]string{
	OpListKeys:         classRead,
	OpDescribeKey:      classRead,
	OpListResourceTags: classRead,
	OpLookupEvents:     classLookup,
	OpTagResource:      classWrite,
	OpUntagResource:    classWrite,
}

// scope is one account and region.
type scope struct{ account, region string }

// opStats are the attempts of one operation in one account and region.
type opStats struct {
	count       int
	first, last time.Time
}

// meter holds the client-side rate limiters of a run, one token bucket per
// account, region and class, and counts every attempt with its time.
//
// The buckets are golang.org/x/time/rate limiters holding a single token:
// no burst above the rate, and each attempt, retries included, waits for
// its token, so the rate the service sees never exceeds the limit, whatever
// the retryer does. Every partition has its own buckets: partitions never
// wait for each other, and one account and region never gets more than its
// limits however many partitions run at once.
type meter struct {
	limits map[string]rate.Limit // by class

	mu       sync.Mutex
	limiters map[scope]map[string]*rate.Limiter
	stats    map[scope]map[string]*opStats
}

func newMeter(read, lookup, write float64) *meter {
	return &meter{
		limits:   map[string]rate.Limit{classRead: rate.Limit(read), classLookup: rate.Limit(lookup), classWrite: rate.Limit(write)},
		limiters: make(map[scope]map[string]*rate.Limiter),
		stats:    make(map[scope]map[string]*opStats),
	}
}

// limiter returns the bucket of op's class in s.
func (m *meter) limiter(s scope, op string) *rate.Limiter {
	class := classOf[op]
	m.mu.Lock()
	defer m.mu.Unlock()
	byClass, ok := m.limiters[s]
	if !ok {
		byClass = make(map[string]*rate.Limiter, len(m.limits))
		m.limiters[s] = byClass
	}
	l, ok := byClass[class]
	if !ok {
		l = rate.NewLimiter(m.limits[class], 1)
		byClass[class] = l
	}
	return l
}

// count records one attempt of op in s at t.
func (m *meter) count(s scope, op string, t time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	byOp, ok := m.stats[s]
	if !ok {
		byOp = make(map[string]*opStats)
		m.stats[s] = byOp
	}
	st, ok := byOp[op]
	if !ok {
		st = &opStats{first: t}
		byOp[op] = st
	}
	st.count++
	st.last = t
}

// snapshot returns a copy of the statistics of s.
func (m *meter) snapshot(s scope) map[string]opStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]opStats, len(m.stats[s]))
	for op, st := range m.stats[s] {
		out[op] = *st
	}
	return out
}

// middleware returns the stack mutator that, for every attempt of a call to
// op in s, waits for the bucket and counts the attempt. It sits right after
// the retry middleware, so it runs once per attempt.
func (m *meter) middleware(s scope, op string) func(*middleware.Stack) error {
	lim := m.limiter(s, op)
	mw := middleware.FinalizeMiddlewareFunc("AuditMeter",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			if err := lim.Wait(ctx); err != nil {
				return middleware.FinalizeOutput{}, middleware.Metadata{}, fmt.Errorf("waiting for the %s rate limit of account %s in %s: %w", op, s.account, s.region, err)
			}
			m.count(s, op, time.Now())
			return next.HandleFinalize(ctx, in)
		})
	return func(st *middleware.Stack) error {
		if err := st.Finalize.Insert(mw, "Retry", middleware.After); err != nil {
			return st.Finalize.Add(mw, middleware.Before)
		}
		return nil
	}
}

// kmsOpt returns the per-call option metering op in s.
func (m *meter) kmsOpt(s scope, op string) func(*kms.Options) {
	mw := m.middleware(s, op)
	return func(o *kms.Options) { o.APIOptions = append(o.APIOptions, mw) }
}

// trailOpt returns the per-call option metering op in s.
func (m *meter) trailOpt(s scope, op string) func(*cloudtrail.Options) {
	mw := m.middleware(s, op)
	return func(o *cloudtrail.Options) { o.APIOptions = append(o.APIOptions, mw) }
}

// meteredTrail is a LookupAPI whose every call is metered in its scope; it
// is what the creation finder is given.
type meteredTrail struct {
	next LookupAPI
	opt  func(*cloudtrail.Options)
}

func (t meteredTrail) LookupEvents(ctx context.Context, in *cloudtrail.LookupEventsInput, optFns ...func(*cloudtrail.Options)) (*cloudtrail.LookupEventsOutput, error) {
	return t.next.LookupEvents(ctx, in, append(optFns, t.opt)...)
}
