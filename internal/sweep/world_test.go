package sweep_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	lambdaevents "github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/kms-autotagger/kms-autotagger/internal/audit"
	"github.com/kms-autotagger/kms-autotagger/internal/audit/audittest"
	"github.com/kms-autotagger/kms-autotagger/internal/events"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws/localawstest"
	"github.com/kms-autotagger/kms-autotagger/internal/metrics"
	"github.com/kms-autotagger/kms-autotagger/internal/sweep"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

const (
	acctA = "111122223333"
	acctB = "444455556666"
	east  = "us-east-1"
	west  = "eu-west-1"
)

// world is an organization of accounts, each with its own local-kms (one
// process per region) and its own CloudTrail stand-in (each region its own
// LookupEvents quota), and moto's SQS with the sweep's FIFO queue, as the
// function's account has it. The clients route each account to its own.
type world struct {
	regions []string
	kms     map[string]*localaws.KMS
	trails  map[string]*localaws.CloudTrail
	policy  *tagger.Policy
	sqs     *localaws.SQS
	queue   string // the sweep queue's URL
	queueMu sync.Mutex

	lines localawstest.SyncBuffer // the coverage lines
}

func startWorld(tb testing.TB, accounts, regions []string, lookupRate float64) *world {
	tb.Helper()
	ctx := context.Background()
	org := audittest.StartOrganization(tb, accounts, regions, lookupRate)
	w := &world{regions: regions, kms: org.KMS, trails: org.Trails}
	q, err := localaws.StartSQS(ctx, localaws.SQSOptions{Account: acctA})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = q.Close() })
	w.sqs = q
	out, err := w.sqs.Client().CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("kms-autotagger-sweep.fifo"),
		Attributes: map[string]string{"FifoQueue": "true", "VisibilityTimeout": "2"}})
	if err != nil {
		tb.Fatal(err)
	}
	w.queue = aws.ToString(out.QueueUrl)
	if w.policy, err = tagger.NewPolicy(tagger.DefaultNames(), "", []tagger.Tag{{Key: "Governance", Value: "kms-autotagger"}}); err != nil {
		tb.Fatal(err)
	}
	return w
}

func (w *world) accounts() []string { return slices.Sorted(maps.Keys(w.kms)) }

func (w *world) clients() audit.ClientsFunc {
	return func(_ context.Context, account, region string) (audit.Clients, error) {
		k, ok := w.kms[account]
		if !ok {
			return audit.Clients{}, fmt.Errorf("no stand-in for account %s", account)
		}
		return audit.Clients{
			KMS:        k.Client(region, func(o *kms.Options) { o.RetryMaxAttempts = 3 }),
			CloudTrail: w.trails[account].Client(region, func(o *cloudtrail.Options) { o.RetryMaxAttempts = 3 }),
		}, nil
	}
}

// sweeper returns a Sweeper of the world's accounts and regions, its
// coverage lines into w.lines; opts sets the rest.
func (w *world) sweeper(tb testing.TB, opts sweep.Options) *sweep.Sweeper {
	tb.Helper()
	m, err := metrics.New(&w.lines, "KMSAutoTagger")
	if err != nil {
		tb.Fatal(err)
	}
	opts.Policy, opts.Clients, opts.Metrics = w.policy, w.clients(), m
	opts.Queue, opts.QueueURL = w.sqs.Client(), w.queue
	if opts.Scope.Accounts == nil {
		opts.Scope.Accounts = func(context.Context) ([]string, error) { return w.accounts(), nil }
	}
	if opts.Scope.Regions == nil {
		opts.Scope.Regions = func(context.Context, string) ([]string, error) { return w.regions, nil }
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, err := sweep.New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// created makes a key with its CreateKey in the event history and returns
// it with its governance tags.
func (w *world) created(tb testing.TB, account, region, eventID string) (string, []tagger.Tag) {
	tb.Helper()
	out, err := w.kms[account].Client(region).CreateKey(context.Background(), &kms.CreateKeyInput{})
	if err != nil {
		tb.Fatal(err)
	}
	key := aws.ToString(out.KeyMetadata.Arn)
	rec := audittest.CreateKeyRecord(eventID, key, audittest.User(account, "alice"), time.Now())
	if err := w.trails[account].AddEvent(region, rec); err != nil {
		tb.Fatal(err)
	}
	dec, err := events.DecodeRecord(rec)
	if err != nil {
		tb.Fatal(err)
	}
	dec.Key.Evidence = tagger.EvidenceHistory
	return key, w.policy.Plan(dec.Key, nil).Tags
}

func (w *world) tag(tb testing.TB, keyARN string, tags []tagger.Tag) {
	tb.Helper()
	f := strings.Split(keyARN, ":")
	in := &kms.TagResourceInput{KeyId: aws.String(keyARN)}
	for _, t := range tags {
		in.Tags = append(in.Tags, kmstypes.Tag{TagKey: aws.String(t.Key), TagValue: aws.String(t.Value)})
	}
	if _, err := w.kms[f[4]].Client(f[3]).TagResource(context.Background(), in); err != nil {
		tb.Fatal(err)
	}
}

func (w *world) tags(tb testing.TB, keyARN string) map[string]string {
	tb.Helper()
	return localawstest.KeyTags(tb, w.kms[strings.Split(keyARN, ":")[4]], keyARN)
}

func asMap(tags []tagger.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[t.Key] = t.Value
	}
	return m
}

// queueARN is the sweep queue's ARN, as the event source mapping gives it.
func (w *world) queueARN() string {
	return "arn:aws:sqs:" + w.sqs.Region() + ":" + w.sqs.Account() + ":" + w.queue[strings.LastIndex(w.queue, "/")+1:]
}

// invocation is what the event source mapping would hand one invocation:
// the SQS event of one received batch.
type invocation struct {
	event    lambdaevents.SQSEvent
	receipts map[string]string // message id -> receipt handle
}

// receive receives up to n messages as the event source mapping does, and
// returns them as one SQS event; none when the queue has nothing visible.
func (w *world) receive(tb testing.TB, n int32) invocation {
	tb.Helper()
	out, err := w.sqs.Client().ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(w.queue), MaxNumberOfMessages: n, WaitTimeSeconds: 1,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
	})
	if err != nil {
		tb.Fatal(err)
	}
	inv := invocation{receipts: map[string]string{}}
	for _, m := range out.Messages {
		inv.event.Records = append(inv.event.Records, lambdaevents.SQSMessage{
			MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
			Attributes: m.Attributes, EventSource: "aws:sqs", EventSourceARN: w.queueARN(), AWSRegion: w.sqs.Region(),
		})
		inv.receipts[aws.ToString(m.MessageId)] = aws.ToString(m.ReceiptHandle)
	}
	return inv
}

// finish deletes the messages of inv that the response does not name, as
// the event source mapping does with ReportBatchItemFailures.
func (w *world) finish(tb testing.TB, inv invocation, resp lambdaevents.SQSEventResponse) {
	tb.Helper()
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	for id, receipt := range inv.receipts {
		if failed[id] {
			continue
		}
		if _, err := w.sqs.Client().DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(w.queue), ReceiptHandle: aws.String(receipt)}); err != nil {
			tb.Fatal(err)
		}
	}
}

// pending is the number of messages in the queue, in flight or not.
func (w *world) pending(tb testing.TB) int {
	tb.Helper()
	out, err := w.sqs.Client().GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(w.queue),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		tb.Fatal(err)
	}
	n := 0
	for _, k := range []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible} {
		var v int
		_, _ = fmt.Sscan(out.Attributes[string(k)], &v)
		n += v
	}
	return n
}

// drain plays the event source mapping: batches of batch messages, each
// one invocation with a deadline of timeout, until the queue is empty, or
// until stop says to stop before an invocation (given the number of
// invocations so far and their results). It returns the results.
func (w *world) drain(tb testing.TB, ctx context.Context, s *sweep.Sweeper, batch int32, timeout time.Duration, stop func(n int) (cancelAfter time.Duration, halt bool)) []sweep.RecordResult {
	tb.Helper()
	var all []sweep.RecordResult
	for n := 0; ; n++ {
		var cancelAfter time.Duration
		if stop != nil {
			var halt bool
			if cancelAfter, halt = stop(n); halt {
				return all
			}
		}
		inv := w.receive(tb, batch)
		if len(inv.event.Records) == 0 {
			if w.pending(tb) == 0 {
				return all
			}
			continue // in flight: wait for the visibility timeout
		}
		ictx, cancel := context.WithTimeout(ctx, timeout)
		if cancelAfter > 0 {
			time.AfterFunc(cancelAfter, cancel)
		}
		resp, results, err := s.Process(ictx, inv.event)
		cancel()
		if err != nil {
			tb.Fatalf("invocation %d: %v", n, err)
		}
		all = append(all, results...)
		w.finish(tb, inv, resp)
		if cancelAfter > 0 {
			return all // the invocation was stopped midway: this run ends
		}
	}
}

// coverage is one coverage line.
type coverage struct {
	Account, Region                                                 string
	Keys, Compliant, Repaired, Unattributable, Forged, NonCompliant float64
	Percent                                                         *float64
	Failed                                                          float64
}

// coverages reads the coverage lines written so far.
func (w *world) coverages(tb testing.TB) []coverage {
	tb.Helper()
	var out []coverage
	for line := range strings.SplitSeq(strings.TrimSpace(w.lines.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			tb.Fatalf("coverage line %q: %v", line, err)
		}
		num := func(k string) float64 { f, _ := m[k].(float64); return f }
		c := coverage{Account: m["Account"].(string), Region: m["Region"].(string), Keys: num("CoverageKeys"), Compliant: num("CoverageCompliant"),
			Repaired: num("CoverageRepaired"), Unattributable: num("CoverageUnattributable"), Forged: num("CoverageForged"),
			NonCompliant: num("CoverageNonCompliant"), Failed: num("CoverageFailed")}
		if p, ok := m["CoveragePercent"].(float64); ok {
			c.Percent = &p
		}
		out = append(out, c)
	}
	return out
}
