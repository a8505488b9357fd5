package sweep

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	lambdaevents "github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/kms-autotagger/kms-autotagger/internal/audit"
	"github.com/kms-autotagger/kms-autotagger/internal/metrics"
)

// Outcomes of one record.
const (
	// OutcomeSwept: the partition (or shard) was audited, and repaired.
	OutcomeSwept = "swept"
	// OutcomeSplit: it was too large for the time left and was sent again
	// as shards.
	OutcomeSplit = "split"
	// OutcomeRefused: the message is not one to act on (its form, its
	// scope); it is reported failed, and so ends in the dead-letter queue
	// for someone to look at.
	OutcomeRefused = "refused"
	// OutcomeFailed: the partition could not be read, or the invocation
	// ended first; reported failed, for SQS to deliver it again.
	OutcomeFailed = "failed"
	// OutcomeSkipped: not processed, for the invocation had no time left;
	// reported failed, for SQS to deliver it again.
	OutcomeSkipped = "skipped"
)

// RecordResult is what became of one record.
type RecordResult struct {
	MessageID string   `json:"messageId"`
	Message   *Message `json:"message,omitempty"`
	Outcome   string   `json:"outcome"`
	Reason    string   `json:"reason,omitempty"`
	// Keys, Compliant, Repaired, Unattributable of the partition.
	Keys           int     `json:"keys,omitempty"`
	Compliant      int     `json:"compliant,omitempty"`
	Repaired       int     `json:"repaired,omitempty"`
	Unattributable int     `json:"unattributable,omitempty"`
	Seconds        float64 `json:"seconds"`
	// Shards are the messages sent in its place, for OutcomeSplit.
	Shards int `json:"shards,omitempty"`
}

// Process handles one SQS batch of the sweep queue: each record is one
// partition, in order. The response names the records to deliver again
// (ReportBatchItemFailures); for a FIFO queue, once a record of a message
// group fails, the later records of that group are reported too, unread,
// so that the group keeps its order. Process returns an error only when ctx
// ends before it began.
func (s *Sweeper) Process(ctx context.Context, ev lambdaevents.SQSEvent) (lambdaevents.SQSEventResponse, []RecordResult, error) {
	var (
		resp    lambdaevents.SQSEventResponse
		results []RecordResult
		cache   scopeCache
		blocked = map[string]bool{} // FIFO message groups with a failed record
	)
	if err := ctx.Err(); err != nil {
		return resp, nil, err
	}
	fail := func(r lambdaevents.SQSMessage) {
		resp.BatchItemFailures = append(resp.BatchItemFailures, lambdaevents.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
		if g := r.Attributes["MessageGroupId"]; g != "" {
			blocked[g] = true
		}
	}
	for _, rec := range ev.Records {
		var res RecordResult
		if g := rec.Attributes["MessageGroupId"]; g != "" && blocked[g] {
			res = RecordResult{MessageID: rec.MessageId, Outcome: OutcomeSkipped, Reason: "an earlier record of its message group failed"}
		} else {
			res = s.record1(ctx, &cache, rec)
		}
		if res.Outcome != OutcomeSwept && res.Outcome != OutcomeSplit {
			fail(rec)
		}
		level := slog.LevelInfo
		if res.Outcome != OutcomeSwept && res.Outcome != OutcomeSplit {
			level = slog.LevelWarn
		}
		attrs := []slog.Attr{slog.String("message_id", res.MessageID), slog.String("outcome", res.Outcome), slog.Float64("seconds", res.Seconds)}
		if res.Message != nil {
			attrs = append(attrs, slog.String("account", res.Message.Account), slog.String("region", res.Message.Region),
				slog.Int("shard", res.Message.Shard), slog.Int("shards", res.Message.Shards), slog.String("run", res.Message.Run))
		}
		if res.Reason != "" {
			attrs = append(attrs, slog.String("reason", res.Reason))
		}
		if res.Outcome == OutcomeSwept {
			attrs = append(attrs, slog.Int("keys", res.Keys), slog.Int("compliant", res.Compliant), slog.Int("repaired", res.Repaired), slog.Int("unattributable", res.Unattributable))
		}
		s.log.LogAttrs(ctx, level, "sweep partition "+res.Outcome, attrs...)
		results = append(results, res)
	}
	return resp, results, nil
}

// record1 handles one record.
func (s *Sweeper) record1(ctx context.Context, cache *scopeCache, rec lambdaevents.SQSMessage) RecordResult {
	start := s.opts.Now()
	res := RecordResult{MessageID: rec.MessageId}
	defer func() { res.Seconds = s.opts.Now().Sub(start).Seconds() }()
	var m Message
	if err := json.Unmarshal([]byte(rec.Body), &m); err != nil {
		res.Outcome, res.Reason = OutcomeRefused, "the body is not a sweep message: "+err.Error()
		return res
	}
	if why := m.check(); why != "" {
		res.Outcome, res.Reason = OutcomeRefused, why
		return res
	}
	res.Message = &m
	ok, err := s.inScope(ctx, cache, m)
	switch {
	case err != nil:
		res.Outcome, res.Reason = OutcomeFailed, err.Error()
		return res
	case !ok:
		res.Outcome, res.Reason = OutcomeRefused, fmt.Sprintf("account %s in %s is not in the sweep's scope", m.Account, m.Region)
		return res
	}

	// The time this partition may take: up to the invocation's deadline,
	// less the reserve.
	deadline, hasDeadline := ctx.Deadline()
	budget := time.Duration(math.MaxInt64)
	if hasDeadline {
		budget = deadline.Sub(s.opts.Now()) - s.opts.Reserve
	}
	if budget <= s.opts.Overhead {
		res.Outcome, res.Reason = OutcomeSkipped, "no time left in this invocation"
		return res
	}
	keys, err := s.countKeys(ctx, m)
	if err != nil {
		res.Outcome, res.Reason = OutcomeFailed, err.Error()
		s.record(metrics.Coverage{Account: m.Account, Region: m.Region, Failed: true})
		return res
	}
	if need := s.estimate(keys); need > budget {
		n := min(int(math.Ceil(float64(need)/float64(budget))), MaxShards/m.Shards)
		if n >= 2 {
			return s.resend(ctx, res, m, n, fmt.Sprintf("%d keys need about %s, more than the %s left", keys, need.Round(time.Second), budget.Round(time.Second)))
		}
	}

	work, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	opts := audit.Options{
		Partitions: []audit.Partition{m.Partition()},
		Repair:     s.opts.Repair,
		Parallel:   1,
		KeyWorkers: s.opts.KeyWorkers,
		LookupRate: s.opts.LookupRate,
		TagRate:    s.opts.TagRate,
		ReadRate:   s.opts.ReadRate,
		Archive:    s.opts.Archive,
		Stacks:     s.opts.Stacks,
		KeyFilter:  func(keyARN string) bool { return inShard(keyARN, m.Shard, m.Shards) },
		Now:        s.opts.Now,
	}
	a, err := audit.New(s.opts.Policy, s.opts.Clients, s.log, opts)
	if err != nil {
		res.Outcome, res.Reason = OutcomeFailed, err.Error()
		return res
	}
	rep, err := a.Run(work)
	switch {
	case ctx.Err() != nil:
		// The invocation itself ends: the message comes back.
		res.Outcome, res.Reason = OutcomeFailed, "the invocation ended before the partition was done: "+ctx.Err().Error()
		return res
	case errors.Is(err, context.DeadlineExceeded) || (rep != nil && rep.Summary.Interrupted):
		// Slower than estimated: the shard again, in two halves.
		return s.resend(ctx, res, m, 2, "the partition was not done in the time left")
	case rep == nil || len(rep.Summary.Errors) > 0:
		why := "no report"
		if err != nil {
			why = err.Error()
		}
		res.Outcome, res.Reason = OutcomeFailed, why
		s.record(metrics.Coverage{Account: m.Account, Region: m.Region, Failed: true})
		return res
	}
	c := coverageOf(rep, m, s.opts.Repair)
	s.record(c)
	res.Outcome = OutcomeSwept
	res.Keys, res.Compliant, res.Repaired, res.Unattributable = c.Keys, c.Compliant, c.Repaired, c.Unattributable
	return res
}

// resend sends the n shards of m in its place; a record whose shards could
// not be sent fails, to be delivered again whole.
func (s *Sweeper) resend(ctx context.Context, res RecordResult, m Message, n int, why string) RecordResult {
	shards := split(m, n)
	sent, err := s.send(context.WithoutCancel(ctx), shards)
	if err != nil || sent != len(shards) {
		res.Outcome, res.Reason = OutcomeFailed, fmt.Sprintf("%s, and its %d shards could not be sent: %v", why, n, err)
		return res
	}
	res.Outcome, res.Reason, res.Shards = OutcomeSplit, fmt.Sprintf("%s: sent again as %d shards", why, n), n
	return res
}

// estimate is the time a partition of keys is expected to take.
func (s *Sweeper) estimate(keys int) time.Duration {
	return time.Duration(float64(keys)/s.opts.LookupRate*estimateFactor*float64(time.Second)) + s.opts.Overhead
}

// countKeys counts the keys of m's shard with ListKeys (a request per
// thousand keys).
func (s *Sweeper) countKeys(ctx context.Context, m Message) (int, error) {
	c, err := s.opts.Clients(ctx, m.Account, m.Region)
	if err != nil {
		return 0, fmt.Errorf("clients of account %s in %s: %w", m.Account, m.Region, err)
	}
	n := 0
	pages := kms.NewListKeysPaginator(c.KMS, &kms.ListKeysInput{Limit: aws.Int32(1000)})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return 0, fmt.Errorf("listing the keys of account %s in %s: %w", m.Account, m.Region, err)
		}
		for _, k := range out.Keys {
			if inShard(aws.ToString(k.KeyArn), m.Shard, m.Shards) {
				n++
			}
		}
	}
	return n, nil
}

// coverageOf makes the coverage line of a partition's report.
func coverageOf(rep *audit.Report, m Message, repair bool) metrics.Coverage {
	c := metrics.Coverage{Account: m.Account, Region: m.Region, Keys: rep.Summary.Keys, Repaired: rep.Summary.Repaired}
	for _, r := range rep.Keys {
		switch {
		case r.Compliant():
			c.Compliant++
		default:
			c.NonCompliant++
		}
		switch r.Status {
		case audit.StatusUnattributable:
			c.Unattributable++
		case audit.StatusForged:
			c.Forged++
		}
	}
	c.Percent = rep.Summary.Coverage
	if repair {
		c.Percent = rep.Summary.CoverageAfterRepair
	}
	return c
}
