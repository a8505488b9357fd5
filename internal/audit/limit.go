package audit

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
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
	// OpListObjects and OpGetObject are the trail archive's S3 calls.
	OpListObjects = "ListObjectsV2"
	OpGetObject   = "GetObject"
)

// Rate-limit classes: the operations of one class share one token bucket
// per account and region.
const (
	classRead    = "read"    // ListKeys, DescribeKey, ListResourceTags
	classLookup  = "lookup"  // LookupEvents
	classWrite   = "write"   // TagResource, UntagResource
	classArchive = "archive" // ListObjectsV2, GetObject of the trail archive
)

// classOf is the rate-limit class of each operation.
var classOf = map[string]string{
	OpListKeys:         classRead,
	OpDescribeKey:      classRead,
	OpListResourceTags: classRead,
	OpLookupEvents:     classLookup,
	OpTagResource:      classWrite,
	OpUntagResource:    classWrite,
	OpListObjects:      classArchive,
	OpGetObject:        classArchive,
}

// DefaultArchiveRate is the trail archive's S3 requests per second per
// account and region, ListObjectsV2 and GetObject together. S3 allows
// thousands per second per prefix, and each account and region has its
// own prefix in the archive: the bound only keeps a run of old keys from
// reading faster than it needs.
const DefaultArchiveRate = 50.0

// Rates are the client-side rate limits of each partition, in requests
// per second (retries included); zero or less, or +Inf, is no limit.
type Rates struct {
	// Read is ListKeys, DescribeKey and ListResourceTags together.
	Read float64
	// Lookup is LookupEvents.
	Lookup float64
	// Write is TagResource and UntagResource together.
	Write float64
	// Archive is the trail archive's ListObjectsV2 and GetObject together.
	Archive float64
}

func (r Rates) of(class string) float64 {
	switch class {
	case classRead:
		return r.Read
	case classLookup:
		return r.Lookup
	case classWrite:
		return r.Write
	case classArchive:
		return r.Archive
	}
	return 0
}

// opStats are the attempts of one operation in one account and region.
type opStats struct {
	count       int
	first, last time.Time
}

// Meter holds the client-side rate limiters of a run, one token bucket per
// partition (account and region) and class of operations, and counts every
// attempt with its time. The audit, the backfill and the sweep share it.
//
// The buckets are golang.org/x/time/rate limiters holding a single token:
// no burst above the rate, and each attempt, retries included, waits for
// its token, so the rate the service sees never exceeds the limit, whatever
// the retryer does. Every partition has its own buckets: partitions never
// wait for each other, and one account and region never gets more than its
// limits however many partitions run at once. It is safe for concurrent
// use.
type Meter struct {
	rates Rates

	mu       sync.Mutex
	limiters map[Partition]map[string]*rate.Limiter
	// reserving keeps the reservations of one KMSInTurn together against
	// those of the others at the same moment (a plain Wait can still come
	// between them, and then takes one token, no more).
	reserving sync.Mutex
	stats     map[Partition]map[string]*opStats
}

// NewMeter returns a Meter limiting each partition to rates.
func NewMeter(rates Rates) *Meter {
	return &Meter{
		rates:    rates,
		limiters: make(map[Partition]map[string]*rate.Limiter),
		stats:    make(map[Partition]map[string]*opStats),
	}
}

// limiter returns the bucket of op's class in p, nil when it has no limit.
func (m *Meter) limiter(p Partition, op string) *rate.Limiter {
	class := classOf[op]
	r := m.rates.of(class)
	if !(r > 0) || math.IsInf(r, 1) {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	byClass, ok := m.limiters[p]
	if !ok {
		byClass = make(map[string]*rate.Limiter, 4)
		m.limiters[p] = byClass
	}
	l, ok := byClass[class]
	if !ok {
		l = rate.NewLimiter(rate.Limit(r), 1)
		byClass[class] = l
	}
	return l
}

// count records one attempt of op in p at t.
func (m *Meter) count(p Partition, op string, t time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	byOp, ok := m.stats[p]
	if !ok {
		byOp = make(map[string]*opStats)
		m.stats[p] = byOp
	}
	st, ok := byOp[op]
	if !ok {
		st = &opStats{first: t}
		byOp[op] = st
	}
	st.count++
	st.last = t
}

// snapshot returns a copy of the statistics of p.
func (m *Meter) snapshot(p Partition) map[string]opStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]opStats, len(m.stats[p]))
	for op, st := range m.stats[p] {
		out[op] = *st
	}
	return out
}

// Usage is what one partition sent during a run.
type Usage struct {
	// Requests counts the attempts per operation, retries included.
	Requests map[string]int
	// LookupEvents, TagWrites (TagResource and UntagResource) and Reads
	// (ListKeys, DescribeKey, ListResourceTags) count the attempts of a
	// class; the PerSecond figures are the rate achieved between the first
	// and the last of them (zero with fewer than two).
	LookupEvents          int
	LookupEventsPerSecond float64
	TagWrites             int
	TagWritesPerSecond    float64
	Reads                 int
	ReadsPerSecond        float64
	// First and Last are the times of the first and the last attempt.
	First, Last time.Time
	// Bound is the least time the rate limits allow for these requests:
	// for each class (n-1)/rate, n attempts one token apart, the longest
	// of them. A partition cannot take less; one that takes about as long
	// was held back by its limits only.
	Bound time.Duration
}

// Usage returns what p sent so far.
func (m *Meter) Usage(p Partition) Usage {
	stats := m.snapshot(p)
	u := Usage{Requests: make(map[string]int, len(stats))}
	byClass := map[string]opStats{}
	for op, st := range stats {
		u.Requests[op] = st.count
		byClass[classOf[op]] = merge(byClass[classOf[op]], st)
		if u.First.IsZero() || st.first.Before(u.First) {
			u.First = st.first
		}
		if st.last.After(u.Last) {
			u.Last = st.last
		}
	}
	u.LookupEvents, u.LookupEventsPerSecond = achieved(byClass[classLookup])
	u.TagWrites, u.TagWritesPerSecond = achieved(byClass[classWrite])
	u.Reads, u.ReadsPerSecond = achieved(byClass[classRead])
	for class, st := range byClass {
		if r := m.rates.of(class); r > 0 && !math.IsInf(r, 1) && st.count > 1 {
			u.Bound = max(u.Bound, time.Duration(float64(st.count-1)/r*float64(time.Second)))
		}
	}
	return u
}

// middleware returns the stack mutator that, for every attempt of a call to
// op in p, waits for the bucket and counts the attempt. It sits right after
// the retry middleware, so it runs once per attempt. With a reservation,
// the call's first attempt waits for that token instead of a new one.
func (m *Meter) middleware(p Partition, op string, first *rate.Reservation) func(*middleware.Stack) error {
	lim := m.limiter(p, op)
	var reserved atomic.Bool
	reserved.Store(first != nil)
	mw := middleware.FinalizeMiddlewareFunc("PartitionMeter",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			var err error
			switch {
			case reserved.CompareAndSwap(true, false):
				err = waitFor(ctx, first)
			case lim != nil:
				err = lim.Wait(ctx)
			}
			if err != nil {
				return middleware.FinalizeOutput{}, middleware.Metadata{}, fmt.Errorf("waiting for the %s rate limit of account %s in %s: %w", op, p.Account, p.Region, err)
			}
			m.count(p, op, time.Now())
			return next.HandleFinalize(ctx, in)
		})
	return func(st *middleware.Stack) error {
		if err := st.Finalize.Insert(mw, "Retry", middleware.After); err != nil {
			return st.Finalize.Add(mw, middleware.Before)
		}
		return nil
	}
}

// waitFor waits until the token of res is due, or gives it back when ctx
// ends first.
func waitFor(ctx context.Context, res *rate.Reservation) error {
	t := time.NewTimer(res.Delay())
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		res.Cancel()
		return ctx.Err()
	}
}

// KMS returns the per-call option metering op in p.
func (m *Meter) KMS(p Partition, op string) func(*kms.Options) {
	return kmsOption(m.middleware(p, op, nil))
}

// KMSInTurn returns the per-call options metering ops in p, one per op, in
// order, whose first attempts take consecutive tokens of their buckets,
// reserved now: the calls one key needs before its write (DescribeKey and
// ListResourceTags) are sent one token apart, not each behind the calls of
// every other key that asked at the same moment. Retries and further pages
// wait for their tokens as usual. A call never made leaves its token
// unused, which can only slow the partition, never speed it past its
// limit.
func (m *Meter) KMSInTurn(p Partition, ops ...string) []func(*kms.Options) {
	lims := make([]*rate.Limiter, len(ops))
	for i, op := range ops {
		lims[i] = m.limiter(p, op)
	}
	m.reserving.Lock()
	res := make([]*rate.Reservation, len(ops))
	for i, l := range lims {
		if l != nil {
			res[i] = l.Reserve()
		}
	}
	m.reserving.Unlock()
	opts := make([]func(*kms.Options), len(ops))
	for i, op := range ops {
		opts[i] = kmsOption(m.middleware(p, op, res[i]))
	}
	return opts
}

func kmsOption(mw func(*middleware.Stack) error) func(*kms.Options) {
	return func(o *kms.Options) { o.APIOptions = append(o.APIOptions, mw) }
}

// CloudTrail returns the per-call option metering op in p.
func (m *Meter) CloudTrail(p Partition, op string) func(*cloudtrail.Options) {
	mw := m.middleware(p, op, nil)
	return func(o *cloudtrail.Options) { o.APIOptions = append(o.APIOptions, mw) }
}

// S3 returns the per-call option metering the trail archive's S3 calls
// made for p, each counted under its own operation.
func (m *Meter) S3(p Partition) func(*s3.Options) {
	list, get := m.middleware(p, OpListObjects, nil), m.middleware(p, OpGetObject, nil)
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			switch st.ID() { // the SDK names each operation's stack after it
			case OpGetObject:
				return get(st)
			case OpListObjects:
				return list(st)
			}
			return nil
		})
	}
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

// achieved returns the count of st and the rate between its first and its
// last attempt.
func achieved(st opStats) (int, float64) {
	if st.count < 2 || !st.last.After(st.first) {
		return st.count, 0
	}
	return st.count, float64(st.count-1) / st.last.Sub(st.first).Seconds()
}

// merge adds up the attempts of two operations.
func merge(a, b opStats) opStats {
	switch {
	case a.count == 0:
		return b
	case b.count == 0:
		return a
	}
	m := opStats{count: a.count + b.count, first: a.first, last: a.last}
	if b.first.Before(m.first) {
		m.first = b.first
	}
	if b.last.After(m.last) {
		m.last = b.last
	}
	return m
}
