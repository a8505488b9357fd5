package sweep_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	lambdaevents "github.com/aws/aws-lambda-go/events"

	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws/localawstest"
	"github.com/kms-autotagger/kms-autotagger/internal/sweep"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// TestSweepResumes: the plan puts one message per account and region on
// the FIFO queue (a second plan of the same run adds none); a first run
// of the event source mapping is stopped in the middle of its third
// partition; a second run sweeps the rest, the stopped one again from the
// start. Every partition is swept exactly once to its end, none skipped,
// every key repaired and one coverage line per partition written.
func TestSweepResumes(t *testing.T) {
	w := startWorld(t, []string{acctA, acctB}, []string{east, west}, 10)
	const perPart = 4
	truths := map[string][]tagger.Tag{}
	for _, a := range w.accounts() {
		for _, r := range w.regions {
			for i := range perPart {
				key, truth := w.created(t, a, r, fmt.Sprintf("e-%s-%s-%d", a, r, i))
				truths[key] = truth
				switch i {
				case 0: // compliant
					w.tag(t, key, truth)
				case 1: // a forged CreatedBy
					forged := append([]tagger.Tag(nil), truth...)
					forged[0].Value = "arn:aws:iam::" + a + ":user/mallory"
					w.tag(t, key, forged)
				} // the others miss their tags
			}
		}
	}
	s := w.sweeper(t, sweep.Options{Repair: true, LookupRate: 4, TagRate: 4, Overhead: 100 * time.Millisecond, Reserve: time.Second})
	ctx := context.Background()

	res, err := s.Plan(ctx, "run-1")
	if err != nil {
		t.Fatal(err)
	}
	if res.Accounts != 2 || res.Partitions != 4 || res.Sent != 4 || len(res.Errors) != 0 {
		t.Fatalf("got plan %+v, want 2 accounts, 4 partitions sent", res)
	}
	if _, err := s.Plan(ctx, "run-1"); err != nil { // the schedule's event delivered twice
		t.Fatal(err)
	}
	if got := w.pending(t); got != 4 {
		t.Fatalf("got %d messages after planning the run twice, want 4: the FIFO queue's deduplication drops the second", got)
	}

	// The first run: stopped 300 ms into its third invocation.
	first := w.drain(t, ctx, s, 1, time.Minute, func(n int) (time.Duration, bool) {
		if n == 2 {
			return 300 * time.Millisecond, false
		}
		return 0, false
	})
	if len(first) != 3 || first[0].Outcome != sweep.OutcomeSwept || first[1].Outcome != sweep.OutcomeSwept || first[2].Outcome != sweep.OutcomeFailed {
		t.Fatalf("first run: got %+v, want two partitions swept and the third failed when stopped", first)
	}
	if got := len(w.coverages(t)); got != 2 {
		t.Errorf("first run: got %d coverage lines, want 2", got)
	}
	if got := w.pending(t); got != 2 {
		t.Errorf("after the first run: got %d messages left, want 2 (the stopped one and the last)", got)
	}

	// The second run: the rest, the stopped partition again.
	second := w.drain(t, ctx, s, 1, time.Minute, nil)
	if len(second) != 2 || second[0].Outcome != sweep.OutcomeSwept || second[1].Outcome != sweep.OutcomeSwept {
		t.Fatalf("second run: got %+v, want the two partitions left swept", second)
	}
	if *second[0].Message != *first[2].Message && *second[1].Message != *first[2].Message {
		t.Errorf("second run: got %v and %v, want the stopped %v among them", second[0].Message, second[1].Message, first[2].Message)
	}

	lines := w.coverages(t)
	seen := map[string]int{}
	for _, c := range lines {
		seen[c.Account+"/"+c.Region]++
		// Repaired: the forged one and the two missing; the interrupted
		// partition may have repaired some before it was stopped.
		if c.Keys != perPart || c.Compliant != perPart || c.NonCompliant != 0 || c.Failed != 0 || c.Percent == nil || *c.Percent != 100 || c.Repaired > perPart-1 {
			t.Errorf("%s %s: got %+v, want %d keys all compliant after repairing at most %d, 100%%", c.Account, c.Region, c, perPart, perPart-1)
		}
	}
	want := map[string]int{acctA + "/" + east: 1, acctA + "/" + west: 1, acctB + "/" + east: 1, acctB + "/" + west: 1}
	if !maps.Equal(seen, want) {
		t.Errorf("got coverage lines per partition %v, want one each %v", seen, want)
	}
	for key, truth := range truths {
		if got := w.tags(t, key); !maps.Equal(got, asMap(truth)) {
			t.Errorf("%s: got tags %v, want %v", key, got, asMap(truth))
		}
	}
	for a, ct := range w.trails {
		for _, r := range ct.Requests(localaws.AnyRegion, "LookupEvents") {
			if r.ErrorCode == "ThrottlingException" {
				t.Errorf("account %s: a LookupEvents was throttled: the sweep exceeded the quota", a)
			}
		}
	}
}

// TestSweepShards: a partition too large for the time an invocation has
// left is cut into shards before any work, recursively until each fits;
// a shard slower than expected (its lookups take a second each) is cut in
// two when the deadline comes. Every key is audited in exactly one shard
// that finished, and no invocation passes its deadline.
func TestSweepShards(t *testing.T) {
	w := startWorld(t, []string{acctA}, []string{east}, -1)
	ctx := context.Background()

	t.Run("cut before the work", func(t *testing.T) {
		const keys = 48
		for i := range keys {
			w.created(t, acctA, east, fmt.Sprintf("s-%d", i))
		}
		s := w.sweeper(t, sweep.Options{LookupRate: 10, KeyWorkers: 8, Overhead: 100 * time.Millisecond, Reserve: 500 * time.Millisecond})
		if _, err := s.Plan(ctx, "shards-1"); err != nil {
			t.Fatal(err)
		}
		// 48 keys at 10 lookups per second need about 5.8s; an invocation
		// has 2s.
		const timeout = 2500 * time.Millisecond
		start := time.Now()
		results := w.drain(t, ctx, s, 1, timeout, nil)
		total, swept, split := 0, 0, 0
		for _, r := range results {
			if r.Seconds > timeout.Seconds() {
				t.Errorf("%v: took %.2fs, more than the invocation's %s", r.Message, r.Seconds, timeout)
			}
			switch r.Outcome {
			case sweep.OutcomeSwept:
				swept++
				total += r.Keys
			case sweep.OutcomeSplit:
				split++
			case sweep.OutcomeFailed:
				// A stand-in's fault: the record comes back, as in SQS.
				t.Logf("%v: failed (%s): delivered again", r.Message, r.Reason)
			default:
				t.Errorf("%v: got %s (%s), want swept or split", r.Message, r.Outcome, r.Reason)
			}
		}
		if split == 0 || swept < 3 || total != keys {
			t.Errorf("got %d splits and %d shards swept holding %d keys, want the partition split and its %d keys swept once", split, swept, total, keys)
		}
		sum := 0.0
		for _, c := range w.coverages(t) {
			sum += c.Keys
		}
		if int(sum) != keys {
			t.Errorf("got coverage lines of %g keys, want %d", sum, keys)
		}
		t.Logf("%d keys: %d splits, %d shards swept in %s", keys, split, swept, time.Since(start).Round(time.Millisecond))
	})

	t.Run("cut at the deadline", func(t *testing.T) {
		w.lines = localawstest.SyncBuffer{}
		// Every lookup takes half a second: 48 keys, 8 at a time, need 3s; the
		// estimate says less than 1.
		w.trails[acctA].SetIntercept(func(_ http.ResponseWriter, _ *http.Request, _, _ string) bool {
			time.Sleep(500 * time.Millisecond)
			return false
		})
		defer w.trails[acctA].SetIntercept(nil)
		s := w.sweeper(t, sweep.Options{LookupRate: 100, KeyWorkers: 8, Overhead: 100 * time.Millisecond, Reserve: 500 * time.Millisecond})
		if _, err := s.Plan(ctx, "shards-2"); err != nil {
			t.Fatal(err)
		}
		const timeout = 1500 * time.Millisecond
		results := w.drain(t, ctx, s, 1, timeout, nil)
		total, cut := 0, 0
		for _, r := range results {
			if r.Seconds > timeout.Seconds() {
				t.Errorf("%v: took %.2fs, more than the invocation's %s", r.Message, r.Seconds, timeout)
			}
			switch {
			case r.Outcome == sweep.OutcomeSwept:
				total += r.Keys
			case r.Outcome == sweep.OutcomeSplit && r.Shards == 2 && strings.Contains(r.Reason, "not done in the time left"):
				cut++
			case r.Outcome == sweep.OutcomeFailed:
				// A stand-in's fault: the record comes back, as in SQS.
				t.Logf("%v: failed (%s): delivered again", r.Message, r.Reason)
			default:
				t.Errorf("%v: got %s %d (%s), want swept, or split in two at the deadline", r.Message, r.Outcome, r.Shards, r.Reason)
			}
		}
		if cut == 0 || total != 48 {
			t.Errorf("got %d cuts at the deadline and %d keys swept, want at least one cut and all 48 keys", cut, total)
		}
	})
}

// TestProcessRefuses: records that are not the sweep's to act on fail
// (and so end in the dead-letter queue), never touching a key; a failed
// record of a FIFO message group holds back the later ones of the group.
func TestProcessRefuses(t *testing.T) {
	w := startWorld(t, []string{acctA}, []string{east}, -1)
	s := w.sweeper(t, sweep.Options{Overhead: 100 * time.Millisecond, Reserve: 100 * time.Millisecond})
	msg := func(change func(*sweep.Message)) string {
		m := sweep.Message{Version: sweep.MessageVersion, Kind: sweep.MessageKind, Run: "r1", Account: acctA, Region: east, Shard: 0, Shards: 1, Planned: time.Now()}
		if change != nil {
			change(&m)
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	for _, tc := range []struct {
		name, body, want, outcome string
	}{
		{"not JSON", "{", "not a sweep message", sweep.OutcomeRefused},
		{"another kind", msg(func(m *sweep.Message) { m.Kind = "kms-autotagger.dead-letter" }), "not a sweep message", sweep.OutcomeRefused},
		{"another version", msg(func(m *sweep.Message) { m.Version = 2 }), "not a sweep message", sweep.OutcomeRefused},
		{"a bad account", msg(func(m *sweep.Message) { m.Account = "12345" }), `account "12345" is not a 12-digit account ID`, sweep.OutcomeRefused},
		{"a bad region", msg(func(m *sweep.Message) { m.Region = "moon-1" }), "is not a region name", sweep.OutcomeRefused},
		{"a bad run", msg(func(m *sweep.Message) { m.Run = "a b" }), "run", sweep.OutcomeRefused},
		{"no such shard", msg(func(m *sweep.Message) { m.Shard, m.Shards = 4, 4 }), "shard 4 of 4 does not exist", sweep.OutcomeRefused},
		{"too many shards", msg(func(m *sweep.Message) { m.Shards = sweep.MaxShards + 1 }), "does not exist", sweep.OutcomeRefused},
		{"an account outside the scope", msg(func(m *sweep.Message) { m.Account = acctB }), "not in the sweep's scope", sweep.OutcomeRefused},
		{"a region outside the scope", msg(func(m *sweep.Message) { m.Region = west }), "not in the sweep's scope", sweep.OutcomeRefused},
		{"fine", msg(nil), "", sweep.OutcomeSwept},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := lambdaevents.SQSEvent{Records: []lambdaevents.SQSMessage{{MessageId: "m1", Body: tc.body, EventSource: "aws:sqs"}}}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			resp, results, err := s.Process(ctx, ev)
			if err != nil {
				t.Fatal(err)
			}
			r := results[0]
			if r.Outcome != tc.outcome || !strings.Contains(r.Reason, tc.want) {
				t.Errorf("got %s (%s), want %s with a reason containing %q", r.Outcome, r.Reason, tc.outcome, tc.want)
			}
			wantFailed := tc.outcome != sweep.OutcomeSwept
			if got := len(resp.BatchItemFailures) == 1 && resp.BatchItemFailures[0].ItemIdentifier == "m1"; got != wantFailed {
				t.Errorf("got batch item failures %+v, want m1 reported: %v", resp.BatchItemFailures, wantFailed)
			}
		})
	}

	t.Run("a FIFO group after a failure", func(t *testing.T) {
		group := map[string]string{"MessageGroupId": acctA + "." + east}
		ev := lambdaevents.SQSEvent{Records: []lambdaevents.SQSMessage{
			{MessageId: "bad", Body: "{", Attributes: group},
			{MessageId: "good", Body: msg(nil), Attributes: group},
			{MessageId: "other", Body: msg(nil), Attributes: map[string]string{"MessageGroupId": "other"}},
		}}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		resp, results, err := s.Process(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		var failed []string
		for _, f := range resp.BatchItemFailures {
			failed = append(failed, f.ItemIdentifier)
		}
		if strings.Join(failed, ",") != "bad,good" || results[1].Outcome != sweep.OutcomeSkipped || results[2].Outcome != sweep.OutcomeSwept {
			t.Errorf("got failures %v and results %+v, want bad and good (held back, unread), other swept", failed, results)
		}
	})

	t.Run("no time left", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		defer cancel()
		resp, results, err := s.Process(ctx, lambdaevents.SQSEvent{Records: []lambdaevents.SQSMessage{{MessageId: "late", Body: msg(nil)}}})
		if err != nil {
			t.Fatal(err)
		}
		if results[0].Outcome != sweep.OutcomeSkipped || len(resp.BatchItemFailures) != 1 {
			t.Errorf("got %+v and %+v, want skipped and reported", results, resp)
		}
	})
}

// TestPlanErrors: an account whose regions cannot be listed is left out
// with a failed coverage line; the others are planned.
func TestPlanErrors(t *testing.T) {
	w := startWorld(t, []string{acctA}, []string{east}, -1)
	s := w.sweeper(t, sweep.Options{Scope: sweep.Scope{
		Accounts: func(context.Context) ([]string, error) { return []string{acctA, acctB}, nil },
		Regions: func(_ context.Context, a string) ([]string, error) {
			if a == acctB {
				return nil, fmt.Errorf("AccessDenied: account:ListRegions")
			}
			return []string{east, west}, nil
		},
	}})
	res, err := s.Plan(context.Background(), "plan-errors")
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 2 || len(res.Errors) != 1 || !strings.Contains(res.Errors[0], acctB) {
		t.Errorf("got %+v, want 2 sent and account %s's error", res, acctB)
	}
	lines := w.coverages(t)
	if len(lines) != 1 || lines[0].Account != acctB || lines[0].Failed != 1 || lines[0].Percent != nil {
		t.Errorf("got coverage lines %+v, want one failed line of %s without coverage", lines, acctB)
	}
}
