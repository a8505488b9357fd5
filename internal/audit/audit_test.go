package audit_test

import (
	"context"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/kms-autotagger/kms-autotagger/internal/audit"
	"github.com/kms-autotagger/kms-autotagger/internal/audit/audittest"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// want is what the audit must say of one key.
type want struct {
	status  audit.Status
	missing []tagger.Tag
	wrong   []audit.Mismatch
	forged  []tagger.Tag
	eventID string
	// evidence is where the event was found; empty means the history's
	// for a key with an event.
	evidence string
	// expected is the key's governance tags; nil for a key without a
	// creation event.
	expected []tagger.Tag
	reason   string // a part of the reason
	// repaired says whether --repair fixes it.
	repaired bool
}

// scenario is the keys of TestAudit: across two accounts and two regions,
// one key per finding.
type scenario struct {
	keys  map[string]string // name -> key ARN
	wants map[string]want   // by name
	order []string
	// ownTags are tags of others that the repair must leave alone.
	ownTags map[string]tagger.Tag
}

func (s *scenario) add(name, keyARN string, w want) {
	s.keys[name] = keyARN
	s.wants[name] = w
	s.order = append(s.order, name)
}

func setUp(t *testing.T, w *world) *scenario {
	t.Helper()
	s := &scenario{keys: map[string]string{}, wants: map[string]want{}, ownTags: map[string]tagger.Tag{}}
	alice := audittest.User(acctA, "alice")
	mallory := "arn:aws:iam::" + acctA + ":user/mallory"
	team := tagger.Tag{Key: "Team", Value: "payments"}

	// Account A, us-east-1: compliant, missing, pending deletion, and an
	// AWS managed key, which is left out.
	key, truth := w.created(t, acctA, "us-east-1", "a0000000-0000-4000-8000-000000000001", alice)
	w.tag(t, key, with(truth, team)...)
	s.ownTags["compliant"] = team
	s.add("compliant", key, want{status: audit.StatusCompliant, eventID: "a0000000-0000-4000-8000-000000000001", expected: truth})

	key, truth = w.created(t, acctA, "us-east-1", "a0000000-0000-4000-8000-000000000002", alice)
	s.add("missing", key, want{status: audit.StatusMissing, missing: truth, eventID: "a0000000-0000-4000-8000-000000000002",
		expected: truth, reason: "missing " + keysOf(truth), repaired: true})

	key = w.createKey(t, acctA, "us-east-1")
	if _, err := w.client(key).ScheduleKeyDeletion(context.Background(), &kms.ScheduleKeyDeletionInput{KeyId: aws.String(key), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	s.add("pending", key, want{status: audit.StatusPendingDeletion, reason: "PendingDeletion, to be deleted"})

	managed := w.createKey(t, acctA, "us-east-1")
	w.kms[acctA].SetKeyFacts(managed, localaws.KeyFacts{KeyManager: "AWS"})

	// Account A, eu-west-1: a wrong value, a case variant, and a key older
	// than the event history with a case variant.
	key, truth = w.created(t, acctA, "eu-west-1", "a0000000-0000-4000-8000-000000000003", alice)
	w.tag(t, key, with(truth, tagger.Tag{Key: "CreatedBy", Value: mallory})...)
	s.add("wrong", key, want{status: audit.StatusWrong, wrong: []audit.Mismatch{{Key: "CreatedBy", Value: mallory, Want: alice.ARN}},
		eventID: "a0000000-0000-4000-8000-000000000003", expected: truth, reason: "wrong values of CreatedBy", repaired: true})

	key, truth = w.created(t, acctA, "eu-west-1", "a0000000-0000-4000-8000-000000000004", alice)
	w.tag(t, key, with(truth, tagger.Tag{Key: "createdby", Value: mallory}, team)...)
	s.ownTags["case-variant"] = team
	s.add("case-variant", key, want{status: audit.StatusForged, forged: []tagger.Tag{{Key: "createdby", Value: mallory}},
		eventID: "a0000000-0000-4000-8000-000000000004", expected: truth, reason: "case variants of governance tags: createdby", repaired: true})

	key = w.createKey(t, acctA, "eu-west-1")
	w.kms[acctA].SetKeyFacts(key, localaws.KeyFacts{CreationDate: time.Now().Add(-100 * 24 * time.Hour)})
	w.tag(t, key, tagger.Tag{Key: "CREATEDBY", Value: mallory})
	s.add("old", key, want{status: audit.StatusUnattributable, forged: []tagger.Tag{{Key: "CREATEDBY", Value: mallory}},
		reason: "before the 90 days CloudTrail's event history holds"})

	// Account B, us-east-1: an owned tag with no true value, no creation
	// event, a role's key missing CreatedByRole, and a compliant primary.
	bob := audittest.User(acctB, "bob")
	admin := "arn:aws:iam::" + acctB + ":role/admin"
	key, truth = w.created(t, acctB, "us-east-1", "b0000000-0000-4000-8000-000000000001", bob)
	w.tag(t, key, with(truth, tagger.Tag{Key: "CreatedByRole", Value: admin})...)
	s.add("no-true-value", key, want{status: audit.StatusForged, forged: []tagger.Tag{{Key: "CreatedByRole", Value: admin}},
		eventID: "b0000000-0000-4000-8000-000000000001", expected: truth,
		reason: "governance tags with no true value for this key: CreatedByRole", repaired: true})

	key = w.createKey(t, acctB, "us-east-1")
	w.tag(t, key, tagger.Tag{Key: "CreatedBy", Value: mallory})
	s.add("unattributable", key, want{status: audit.StatusUnattributable, reason: "no CreateKey or ReplicateKey event of the key"})

	deployer := audittest.Role(acctB, "deployer")
	key, truth = w.created(t, acctB, "us-east-1", "b0000000-0000-4000-8000-000000000002", deployer)
	var noRole []tagger.Tag
	for _, tg := range truth {
		if tg.Key != "CreatedByRole" {
			noRole = append(noRole, tg)
		}
	}
	w.tag(t, key, noRole...)
	s.add("role-missing", key, want{status: audit.StatusMissing, missing: []tagger.Tag{{Key: "CreatedByRole", Value: deployer.ARN}},
		eventID: "b0000000-0000-4000-8000-000000000002", expected: truth, repaired: true})

	primary, truth := w.created(t, acctB, "us-east-1", "b0000000-0000-4000-8000-000000000003", bob)
	w.tag(t, primary, truth...)
	s.add("primary", primary, want{status: audit.StatusCompliant, eventID: "b0000000-0000-4000-8000-000000000003", expected: truth})

	// Account B, eu-west-1: governance tags from another creation event,
	// and a replica whose creator only the ReplicateKey in the primary's
	// region names.
	key, truth = w.created(t, acctB, "eu-west-1", "b0000000-0000-4000-8000-000000000004", bob)
	w.tag(t, key, with(truth, tagger.Tag{Key: "CreationEventId", Value: "b0000000-0000-4000-8000-0000000000ff"})...)
	s.add("other-event", key, want{status: audit.StatusWrong,
		wrong:   []audit.Mismatch{{Key: "CreationEventId", Value: "b0000000-0000-4000-8000-0000000000ff", Want: "b0000000-0000-4000-8000-000000000004"}},
		eventID: "b0000000-0000-4000-8000-000000000004", expected: truth, repaired: true})

	replica := w.createKey(t, acctB, "eu-west-1")
	w.kms[acctB].SetKeyFacts(replica, localaws.KeyFacts{PrimaryARN: primary})
	now := time.Now()
	w.addEvent(t, acctB, audittest.ReplicaCreateKeyRecord("b0000000-0000-4000-8000-000000000005", replica, primary, now))
	ev := w.addEvent(t, acctB, audittest.ReplicateKeyRecord("b0000000-0000-4000-8000-000000000006", primary, replica, bob, now))
	truth = w.policy.Plan(ev, nil).Tags
	if value(truth, "ReplicaOf") != primary {
		t.Fatalf("the replica's truth %v has no ReplicaOf", truth)
	}
	s.add("replica", replica, want{status: audit.StatusMissing, missing: truth, eventID: "b0000000-0000-4000-8000-000000000006",
		expected: truth, repaired: true})
	return s
}

// checkRows compares every row with its want, field by field; repaired
// says whether the run was the repair.
func checkRows(t *testing.T, s *scenario, rep *audit.Report, repairRun bool) {
	t.Helper()
	rows := map[string]audit.Row{}
	for _, r := range rep.Keys {
		rows[r.KeyARN] = r
	}
	if got, want := len(rep.Keys), len(s.keys); got != want {
		t.Errorf("got %d rows, want %d (the AWS managed key left out)", got, want)
	}
	for _, name := range s.order {
		key, w := s.keys[name], s.wants[name]
		t.Run(name, func(t *testing.T) {
			r, ok := rows[key]
			if !ok {
				t.Fatalf("no row for %s", key)
			}
			if r.Account != accountOf(key) || r.Region != regionOf(key) || r.KeyID != key[strings.LastIndex(key, "/")+1:] {
				t.Errorf("got account %s region %s key %s, want those of %s", r.Account, r.Region, r.KeyID, key)
			}
			if r.Status != w.status {
				t.Errorf("status: got %s, want %s (reason %q)", r.Status, w.status, r.Reason)
			}
			if !reflect.DeepEqual(r.Missing, w.missing) {
				t.Errorf("missing: got %v, want %v", r.Missing, w.missing)
			}
			if !reflect.DeepEqual(r.Wrong, w.wrong) {
				t.Errorf("wrong: got %v, want %v", r.Wrong, w.wrong)
			}
			if !reflect.DeepEqual(r.Forged, w.forged) {
				t.Errorf("forged: got %v, want %v", r.Forged, w.forged)
			}
			if r.EventID != w.eventID {
				t.Errorf("event: got %q, want %q", r.EventID, w.eventID)
			}
			wantEvidence := w.evidence
			if wantEvidence == "" && w.eventID != "" {
				wantEvidence = tagger.EvidenceHistory
			}
			if r.Evidence != wantEvidence {
				t.Errorf("evidence: got %q, want %q", r.Evidence, wantEvidence)
			}
			if !reflect.DeepEqual(r.Expected, w.expected) {
				t.Errorf("expected: got %v, want %v", r.Expected, w.expected)
			}
			if !strings.Contains(r.Reason, w.reason) {
				t.Errorf("reason: got %q, want it to contain %q", r.Reason, w.reason)
			}
			if r.CreationDate.IsZero() || time.Since(r.CreationDate) < 0 {
				t.Errorf("creation date: got %v", r.CreationDate)
			}
			var wantAction audit.Action
			switch {
			case !repairRun || w.status == audit.StatusCompliant || w.status == audit.StatusPendingDeletion:
			case w.repaired:
				wantAction = audit.ActionRepaired
			default:
				wantAction = audit.ActionNotRepaired
			}
			if r.Action != wantAction {
				t.Errorf("action: got %q, want %q (reason %q)", r.Action, wantAction, r.Reason)
			}
			if wantAction == audit.ActionRepaired {
				var wantRemoved []string
				for _, f := range w.forged {
					wantRemoved = append(wantRemoved, f.Key)
				}
				wantWritten := slices.Clone(w.missing)
				for _, m := range w.wrong {
					wantWritten = append(wantWritten, tagger.Tag{Key: m.Key, Value: m.Want})
				}
				if !reflect.DeepEqual(r.Removed, wantRemoved) {
					t.Errorf("removed: got %v, want %v", r.Removed, wantRemoved)
				}
				if !sameTags(r.Written, wantWritten) {
					t.Errorf("written: got %v, want %v", r.Written, wantWritten)
				}
			}
		})
	}
}

// keysOf lists the keys of tags as the audit's reasons do, comma
// separated in the policy's order.
func keysOf(tags []tagger.Tag) string {
	keys := make([]string, len(tags))
	for i, t := range tags {
		keys[i] = t.Key
	}
	return strings.Join(keys, ", ")
}

func sameTags(a, b []tagger.Tag) bool { return maps.Equal(asMap(a), asMap(b)) && len(a) == len(b) }

func TestAudit(t *testing.T) {
	w := startWorld(t, []string{acctA, acctB}, []string{"us-east-1", "eu-west-1"})
	s := setUp(t, w)
	ctx := context.Background()

	t.Run("audit", func(t *testing.T) {
		rep, err := w.auditor(t, audit.Options{}).Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		checkRows(t, s, rep, false)
		parts := []struct {
			account, region string
			keys, managed   int
			statuses        map[audit.Status]int
			coverage        float64
		}{
			{acctA, "eu-west-1", 3, 0, map[audit.Status]int{audit.StatusWrong: 1, audit.StatusForged: 1, audit.StatusUnattributable: 1}, 0},
			{acctA, "us-east-1", 3, 1, map[audit.Status]int{audit.StatusCompliant: 1, audit.StatusMissing: 1, audit.StatusPendingDeletion: 1}, 50},
			{acctB, "eu-west-1", 2, 0, map[audit.Status]int{audit.StatusWrong: 1, audit.StatusMissing: 1}, 0},
			{acctB, "us-east-1", 4, 0, map[audit.Status]int{audit.StatusForged: 1, audit.StatusUnattributable: 1, audit.StatusMissing: 1, audit.StatusCompliant: 1}, 25},
		}
		if len(rep.Partitions) != len(parts) {
			t.Fatalf("got %d partitions, want %d", len(rep.Partitions), len(parts))
		}
		for i, want := range parts {
			p := rep.Partitions[i]
			if p.Account != want.account || p.Region != want.region {
				t.Errorf("partition %d: got %s %s, want %s %s", i, p.Account, p.Region, want.account, want.region)
			}
			if p.Keys != want.keys || p.AWSManagedKeys != want.managed || !maps.Equal(p.Statuses, want.statuses) {
				t.Errorf("%s %s: got %d keys, %d AWS managed, %v; want %d, %d, %v", p.Account, p.Region, p.Keys, p.AWSManagedKeys, p.Statuses, want.keys, want.managed, want.statuses)
			}
			if p.Coverage == nil || *p.Coverage != want.coverage {
				t.Errorf("%s %s: got coverage %v, want %g", p.Account, p.Region, p.Coverage, want.coverage)
			}
			if p.CoverageAfterRepair != nil || p.Error != "" {
				t.Errorf("%s %s: got coverage after repair %v and error %q, want neither", p.Account, p.Region, p.CoverageAfterRepair, p.Error)
			}
			if p.LookupEventsLimit != audit.DefaultLookupRate || p.TagWritesLimit != audit.DefaultTagRate || p.TagWrites != 0 {
				t.Errorf("%s %s: got limits %g and %g, %d tag writes; want the defaults and none", p.Account, p.Region, p.LookupEventsLimit, p.TagWritesLimit, p.TagWrites)
			}
			if p.LookupEventsPerSecond > p.LookupEventsLimit*1.02 {
				t.Errorf("%s %s: got %.3f LookupEvents per second, want at most %g", p.Account, p.Region, p.LookupEventsPerSecond, p.LookupEventsLimit)
			}
		}
		// The old key is unattributable without a lookup; the others need
		// one each, and the replica one more, in its primary's region.
		if got := rep.Partitions[0].LookupEvents; got != 2 {
			t.Errorf("%s eu-west-1: got %d LookupEvents, want 2 (none for the key older than the history)", acctA, got)
		}
		if got := rep.Partitions[3].LookupEvents; got != 5 {
			t.Errorf("%s us-east-1: got %d LookupEvents, want 5 (4 keys and the replica's ReplicateKey)", acctB, got)
		}
		sum := rep.Summary
		wantStatuses := map[audit.Status]int{audit.StatusCompliant: 2, audit.StatusMissing: 3, audit.StatusWrong: 2, audit.StatusForged: 2,
			audit.StatusUnattributable: 2, audit.StatusPendingDeletion: 1}
		if sum.Keys != 12 || sum.AWSManagedKeys != 1 || !maps.Equal(sum.Statuses, wantStatuses) || sum.NonCompliant != 9 || sum.Repaired != 0 {
			t.Errorf("summary: got %d keys, %d AWS managed, %v, %d not compliant, %d repaired; want 12, 1, %v, 9, 0",
				sum.Keys, sum.AWSManagedKeys, sum.Statuses, sum.NonCompliant, sum.Repaired, wantStatuses)
		}
		if want := 100 * 2.0 / 11; sum.Coverage == nil || *sum.Coverage != want {
			t.Errorf("coverage: got %v, want %g", sum.Coverage, want)
		}
		if want := []string{s.keys["old"], s.keys["unattributable"]}; !reflect.DeepEqual(sum.Unattributable, want) {
			t.Errorf("unattributable: got %v, want %v", sum.Unattributable, want)
		}
		if !reflect.DeepEqual(sum.Accounts, []string{acctA, acctB}) || !reflect.DeepEqual(sum.Regions, []string{"eu-west-1", "us-east-1"}) || sum.Partitions != 4 {
			t.Errorf("scope: got %v %v %d, want both accounts, both regions, 4 partitions", sum.Accounts, sum.Regions, sum.Partitions)
		}
		if rep.Compliant() {
			t.Error("got a compliant report, want not")
		}
		if got := w.throttled(); got != 0 {
			t.Errorf("got %d LookupEvents throttled by CloudTrail's quota, want none", got)
		}
		// Nothing was written.
		if got := w.tags(t, s.keys["missing"]); len(got) != 0 {
			t.Errorf("audit without repair: got tags %v on the missing key, want none", got)
		}
	})

	t.Run("repair", func(t *testing.T) {
		rep, err := w.auditor(t, audit.Options{Repair: true}).Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		checkRows(t, s, rep, true)
		sum := rep.Summary
		if sum.Repaired != 7 || sum.NonCompliant != 2 || !sum.Repair {
			t.Errorf("got %d repaired, %d not compliant, want 7 and the 2 unattributable", sum.Repaired, sum.NonCompliant)
		}
		if want := 100 * 9.0 / 11; sum.CoverageAfterRepair == nil || *sum.CoverageAfterRepair != want {
			t.Errorf("coverage after repair: got %v, want %g", sum.CoverageAfterRepair, want)
		}
		for _, p := range rep.Partitions {
			if p.TagWritesPerSecond > p.TagWritesLimit*1.02 {
				t.Errorf("%s %s: got %.3f tag writes per second, want at most %g", p.Account, p.Region, p.TagWritesPerSecond, p.TagWritesLimit)
			}
		}
		// The keys now carry exactly their governance tags, and the tags of
		// others as they were; unattributable keys are untouched.
		for _, name := range s.order {
			wt := s.wants[name]
			got := w.tags(t, s.keys[name])
			switch {
			case wt.expected != nil:
				want := asMap(wt.expected)
				if own, ok := s.ownTags[name]; ok {
					want[own.Key] = own.Value
				}
				if !maps.Equal(got, want) {
					t.Errorf("%s: got tags %v, want %v", name, got, want)
				}
			case name == "old":
				if !maps.Equal(got, map[string]string{"CREATEDBY": wt.forged[0].Value}) {
					t.Errorf("%s: got tags %v, want them untouched", name, got)
				}
			case name == "unattributable":
				if len(got) != 1 || got["CreatedBy"] == "" {
					t.Errorf("%s: got tags %v, want them untouched", name, got)
				}
			}
		}
	})

	t.Run("audit again", func(t *testing.T) {
		rep, err := w.auditor(t, audit.Options{}).Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sum := rep.Summary
		want := map[audit.Status]int{audit.StatusCompliant: 9, audit.StatusUnattributable: 2, audit.StatusPendingDeletion: 1}
		if !maps.Equal(sum.Statuses, want) || sum.NonCompliant != 2 {
			t.Errorf("got %v with %d not compliant, want %v and 2", sum.Statuses, sum.NonCompliant, want)
		}
		if want := []string{s.keys["old"], s.keys["unattributable"]}; !reflect.DeepEqual(sum.Unattributable, want) {
			t.Errorf("unattributable: got %v, want %v", sum.Unattributable, want)
		}
		for _, r := range rep.Keys {
			if r.Status != audit.StatusUnattributable && !r.Compliant() {
				t.Errorf("%s: got %s (%s), want compliant", r.KeyARN, r.Status, r.Reason)
			}
		}
	})
}
