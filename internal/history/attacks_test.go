package history_test

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws/localawstest"
	"github.com/kms-autotagger/kms-autotagger/internal/metrics"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// The attacks of issue 11, each against the real handler, local-kms in two
// regions, the SQS stand-in and the CloudTrail stand-in's event history:
// the attacker tries to leave a false governance tag on a key, and fails.
// Each test reads the key's tags and the queue afterwards.

// assertTags checks that the owned tags on keyARN are exactly want and that
// the tags in others are there with those values.
func (e *env) assertTags(t *testing.T, keyARN string, want, others map[string]string) {
	t.Helper()
	got := e.Tags(t, keyARN)
	owned := map[string]string{}
	for k, v := range got {
		if e.handler.Policy.Owns(k) {
			owned[k] = v
		}
	}
	if !maps.Equal(owned, want) {
		t.Errorf("governance tags on the key: got %v, want exactly %v", owned, want)
	}
	for k, v := range others {
		if got[k] != v {
			t.Errorf("tag %s: got %q, want %q (not the tagger's, untouched)", k, got[k], v)
		}
	}
}

// truth is what the handler writes for a key alice created with eventID.
func truth(eventID string, rec map[string]any) map[string]string {
	return map[string]string{"CreatedBy": alice, "CreatedAt": rec["eventTime"].(string), "CreationEventId": eventID, "CreatedByUser": "alice", "CreatedByEvidence": "event"}
}

func (e *env) handleErr(t *testing.T, rec map[string]any) (tagger.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return e.handler.Handle(ctx, envelope(rec))
}

func (e *env) wantDeadLetter(t *testing.T, code string) tagger.DeadLetter {
	t.Helper()
	letters := e.DeadLetters(t)
	if len(letters) != 1 {
		t.Fatalf("dead letters: got %d, want 1 with code %s", len(letters), code)
	}
	d := letters[0].Record
	if d.Error.Code != code || letters[0].Attributes[tagger.AttrErrorCode] != code {
		t.Errorf("dead letter code: got %s (attribute %s), want %s", d.Error.Code, letters[0].Attributes[tagger.AttrErrorCode], code)
	}
	return d
}

func TestAttackTagsPassedAtCreation(t *testing.T) {
	e := newEnv(t)
	key := e.CreateKey(t, "us-east-1")
	passed := map[string]string{
		"CreatedBy":       mallory,                                // a false value of an owned key
		"CreatedByRole":   "arn:aws:iam::111122223333:role/Admin", // an owned key with no true value for an IAM user's key
		"createdby":       mallory,                                // a case variant, which IAM matches as CreatedBy
		"CREATIONEVENTID": "forged",
		"Project":         "apollo", // the creator's own
	}
	e.TagKey(t, key, passed) // what CreateKey with Tags leaves on the key
	rec := createKeyRecord("a1000000-0000-4000-8000-000000000001", key, alice, nil)
	rec["requestParameters"] = map[string]any{"tags": requestTags(passed)}
	res := e.handle(t, rec)
	if res.Outcome != tagger.OutcomeTagged {
		t.Fatalf("got %s (%s), want tagged", res.Outcome, res.Reason)
	}
	e.assertTags(t, key, truth("a1000000-0000-4000-8000-000000000001", rec), map[string]string{"Project": "apollo"})
	if want := []string{"CREATIONEVENTID", "CreatedByRole", "createdby"}; !sameSet(res.Removed, want) {
		t.Errorf("removed: got %v, want %v", res.Removed, want)
	}
}

func TestAttackTagsAddedLater(t *testing.T) {
	for _, tt := range []struct {
		name   string
		prefix string
		forged map[string]string
	}{
		{"owned key with no true value", "", map[string]string{"CreatedByRole": "arn:aws:iam::111122223333:role/Admin"}},
		{"replica tag on a key that is not one", "", map[string]string{"ReplicaOf": "arn:aws:kms:us-east-1:111122223333:key/other"}},
		{"case variant", "", map[string]string{"createdby": mallory}},
		{"case variant with the prefix", "gov:", map[string]string{"GOV:createdBy": mallory, "Gov:CreatedByRole": "x"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.prefix != "" {
				p, err := tagger.NewPolicy(tagger.DefaultNames(), tt.prefix, nil)
				if err != nil {
					t.Fatal(err)
				}
				e.handler.Policy = p
			}
			key := e.CreateKey(t, "us-east-1")
			rec := createKeyRecord("a2000000-0000-4000-8000-000000000001", key, alice, nil)
			e.addHistory(t, rec)
			if res := e.handle(t, rec); res.Outcome != tagger.OutcomeTagged {
				t.Fatalf("creation: got %s (%s), want tagged", res.Outcome, res.Reason)
			}
			want := map[string]string{}
			for k, v := range truth("a2000000-0000-4000-8000-000000000001", rec) {
				want[tt.prefix+k] = v
			}

			e.TagKey(t, key, tt.forged)
			res := e.handle(t, tagRecord("a2000000-0000-4000-8000-000000000002", "TagResource", mallory, key, tt.forged))
			if res.Outcome != tagger.OutcomeTagged || res.Repair == nil {
				t.Fatalf("repair: got %s (%s), want tagged with a repair", res.Outcome, res.Reason)
			}
			if !sameSet(res.Removed, slices.Collect(maps.Keys(tt.forged))) {
				t.Errorf("removed: got %v, want %v", res.Removed, slices.Collect(maps.Keys(tt.forged)))
			}
			e.assertTags(t, key, want, nil)
		})
	}
}

func TestAttackInconsistentEvent(t *testing.T) {
	for _, tt := range []struct {
		name   string
		mutate func(env, rec map[string]any)
	}{
		{"envelope account of another account", func(env, _ map[string]any) { env["account"] = "444455556666" }},
		{"recipient account of another account", func(_, rec map[string]any) { rec["recipientAccountId"] = "444455556666" }},
		{"logged in another region", func(env, rec map[string]any) { env["region"], rec["awsRegion"] = "eu-west-1", "eu-west-1" }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			key := e.CreateKey(t, "us-east-1")
			e.TagKey(t, key, map[string]string{"CreatedBy": mallory})
			rec := createKeyRecord("a3000000-0000-4000-8000-000000000001", key, alice, nil)
			var env map[string]any
			_ = json.Unmarshal(envelope(rec), &env)
			tt.mutate(env, rec)
			env["detail"] = rec
			raw, _ := json.Marshal(env)
			res, err := e.handler.Handle(context.Background(), raw)
			if err != nil || res.Outcome != tagger.OutcomeDeadLettered || res.ErrorCode != tagger.CodeInconsistentEvent {
				t.Fatalf("got %s %s, %v; want dead-lettered %s", res.Outcome, res.ErrorCode, err, tagger.CodeInconsistentEvent)
			}
			e.wantDeadLetter(t, tagger.CodeInconsistentEvent)
			if got := e.Tags(t, key); len(got) != 1 || got["CreatedBy"] != mallory {
				t.Errorf("key tags: got %v, want them untouched", got)
			}
		})
	}
}

func TestAttackEventContradictedByKMS(t *testing.T) {
	for _, tt := range []struct {
		name  string
		facts localaws.KeyFacts
		code  string
	}{
		{"an old key claimed as new", localaws.KeyFacts{CreationDate: time.Now().AddDate(-1, 0, 0)}, tagger.CodeCreationDateMismatch},
		{"an AWS managed key", localaws.KeyFacts{KeyManager: "AWS"}, tagger.CodeKeyNotCustomerManaged},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			key := e.CreateKey(t, "us-east-1")
			e.KMS.SetKeyFacts(key, tt.facts)
			res := e.handle(t, createKeyRecord("a4000000-0000-4000-8000-000000000001", key, mallory, nil))
			if res.Outcome != tagger.OutcomeDeadLettered || res.ErrorCode != tt.code {
				t.Fatalf("got %s %s, want dead-lettered %s", res.Outcome, res.ErrorCode, tt.code)
			}
			e.wantDeadLetter(t, tt.code)
			if got := e.Tags(t, key); len(got) != 0 {
				t.Errorf("key tags: got %v, want none", got)
			}
		})
	}
}

// TestAttackSecondCreationEvent: a key is created once. A forged creation
// event for a key already tagged from its real one is refused, in either
// order of arrival the real event's tags are what the key ends with, and a
// redelivery of the real one changes nothing.
func TestAttackSecondCreationEvent(t *testing.T) {
	const realID, forgedID = "a5000000-0000-4000-8000-000000000001", "a5000000-0000-4000-8000-0000000000ff"
	t.Run("forged after the real one", func(t *testing.T) {
		e := newEnv(t)
		key := e.CreateKey(t, "us-east-1")
		real := createKeyRecord(realID, key, alice, nil)
		e.addHistory(t, real)
		if res := e.handle(t, real); res.Outcome != tagger.OutcomeTagged {
			t.Fatalf("real: got %s (%s), want tagged", res.Outcome, res.Reason)
		}
		forged := createKeyRecord(forgedID, key, mallory, nil) // never in CloudTrail's history
		res := e.handle(t, forged)
		if res.Outcome != tagger.OutcomeDeadLettered || res.ErrorCode != tagger.CodeForgedCreationEvent {
			t.Fatalf("forged: got %s %s (%s), want dead-lettered %s", res.Outcome, res.ErrorCode, res.Reason, tagger.CodeForgedCreationEvent)
		}
		e.wantDeadLetter(t, tagger.CodeForgedCreationEvent)
		e.assertTags(t, key, truth(realID, real), nil)

		e.KMS.Router().ResetCounts()
		if res := e.handle(t, real); res.Outcome != tagger.OutcomeSkipped {
			t.Errorf("redelivery: got %s (%s), want skipped", res.Outcome, res.Reason)
		}
		for _, op := range []string{"TagResource", "UntagResource"} {
			if n := e.KMS.Router().Count(localaws.AnyRegion, localaws.KMSTarget(op)); n != 0 {
				t.Errorf("%s calls for a redelivery: got %d, want 0", op, n)
			}
		}
	})
	t.Run("forged before the real one", func(t *testing.T) {
		e := newEnv(t)
		key := e.CreateKey(t, "us-east-1")
		real := createKeyRecord(realID, key, alice, nil)
		e.addHistory(t, real)
		forged := createKeyRecord(forgedID, key, mallory, nil)
		if res := e.handle(t, forged); res.Outcome != tagger.OutcomeTagged {
			t.Fatalf("forged first: got %s (%s), want tagged (nothing to contradict it yet)", res.Outcome, res.Reason)
		}
		res := e.handle(t, real)
		if res.Outcome != tagger.OutcomeTagged {
			t.Fatalf("real: got %s %s (%s), want tagged: CloudTrail confirms it", res.Outcome, res.ErrorCode, res.Reason)
		}
		e.assertTags(t, key, truth(realID, real), nil)
	})
	t.Run("neither confirmed", func(t *testing.T) {
		e := newEnv(t)
		key := e.CreateKey(t, "us-east-1")
		first := createKeyRecord(forgedID, key, mallory, nil)
		if res := e.handle(t, first); res.Outcome != tagger.OutcomeTagged {
			t.Fatalf("first: got %s (%s), want tagged", res.Outcome, res.Reason)
		}
		second := createKeyRecord(realID, key, alice, nil)
		// Old enough that CloudTrail's history would hold it by now.
		e.handler.Now = func() time.Time { return time.Now().Add(time.Hour) }
		res := e.handle(t, second)
		if res.Outcome != tagger.OutcomeDeadLettered || res.ErrorCode != tagger.CodeCreationEventConflict {
			t.Fatalf("second: got %s %s (%s), want dead-lettered %s", res.Outcome, res.ErrorCode, res.Reason, tagger.CodeCreationEventConflict)
		}
		e.wantDeadLetter(t, tagger.CodeCreationEventConflict)
		if got := e.Tags(t, key)["CreationEventId"]; got != forgedID {
			t.Errorf("CreationEventId: got %q, want the key left as it was (%q)", got, forgedID)
		}
	})
}

// TestAttackReplicaRegionCreateKey: the CreateKey KMS logs in a replica's
// region, whatever its userIdentity looks like, never sets the replica's
// creator; the ReplicateKey event does, in either order.
func TestAttackReplicaRegionCreateKey(t *testing.T) {
	const replicateID, createID = "a6000000-0000-4000-8000-000000000001", "a6000000-0000-4000-8000-000000000002"
	setup := func(t *testing.T) (e *env, primary, replica string, replicate, create map[string]any) {
		e = newEnv(t)
		primary = e.CreateKey(t, "us-east-1")
		replica = e.CreateKey(t, "eu-west-1")
		e.KMS.SetKeyFacts(replica, localaws.KeyFacts{PrimaryARN: primary})
		mrc := map[string]any{"multiRegionKeyType": "REPLICA", "primaryKey": map[string]any{"arn": primary, "region": "us-east-1"}}
		meta := map[string]any{"AWSAccountId": "111122223333", "arn": replica, "keyId": replica[strings.LastIndex(replica, "/")+1:], "keyManager": "CUSTOMER", "multiRegionConfiguration": mrc}
		replicate = record(replicateID, "ReplicateKey", alice, "us-east-1",
			map[string]any{"keyId": primary, "replicaRegion": "eu-west-1"}, map[string]any{"replicaKeyMetadata": meta}, primary)
		// Made to look like mallory's own call, and its record says nothing
		// of a replica: KMS itself says it is one.
		create = createKeyRecord(createID, replica, mallory, nil)
		return e, primary, replica, replicate, create
	}
	want := func(rec map[string]any, primary string) map[string]string {
		w := truth(replicateID, rec)
		w["ReplicaOf"] = primary
		return w
	}
	t.Run("CreateKey first", func(t *testing.T) {
		e, primary, replica, replicate, create := setup(t)
		if res := e.handle(t, create); res.Outcome != tagger.OutcomeSkipped {
			t.Fatalf("CreateKey: got %s (%s), want skipped", res.Outcome, res.Reason)
		}
		if res := e.handle(t, replicate); res.Outcome != tagger.OutcomeTagged {
			t.Fatalf("ReplicateKey: got %s (%s), want tagged", res.Outcome, res.Reason)
		}
		e.assertTags(t, replica, want(replicate, primary), nil)
	})
	t.Run("ReplicateKey first", func(t *testing.T) {
		e, primary, replica, replicate, create := setup(t)
		if res := e.handle(t, replicate); res.Outcome != tagger.OutcomeTagged {
			t.Fatalf("ReplicateKey: got %s (%s), want tagged", res.Outcome, res.Reason)
		}
		if res := e.handle(t, create); res.Outcome != tagger.OutcomeSkipped {
			t.Fatalf("CreateKey: got %s (%s), want skipped", res.Outcome, res.Reason)
		}
		e.assertTags(t, replica, want(replicate, primary), nil)
	})
}

// TestNotFoundClearsAfterAMinute: a key just created that KMS does not find
// yet goes back to Lambda (an error, no dead letter); Lambda's retry a
// minute later tags it.
func TestNotFoundClearsAfterAMinute(t *testing.T) {
	e := newEnv(t)
	key := e.CreateKey(t, "us-east-1")
	rec := createKeyRecord("a7000000-0000-4000-8000-000000000001", key, alice, nil)
	notFound := localaws.Fault{Status: 400, Code: "NotFoundException", Message: "Key '" + key + "' does not exist (injected by localaws)"}
	e.KMS.Router().SetIntercept(localaws.FailFirst(localaws.AnyRegion, localaws.KMSTarget("DescribeKey"), 1000, notFound))
	res, err := e.handleErr(t, rec)
	if err == nil || res.Outcome != tagger.OutcomeError || res.ErrorCode != tagger.CodeNotFound {
		t.Fatalf("first try: got %s %s, %v; want an error for Lambda to retry", res.Outcome, res.ErrorCode, err)
	}
	if n := len(e.DeadLetters(t)); n != 0 {
		t.Fatalf("dead letters: got %d, want 0", n)
	}

	e.KMS.Router().SetIntercept(nil)
	e.handler.Now = func() time.Time { return time.Now().Add(time.Minute) }
	if res := e.handle(t, rec); res.Outcome != tagger.OutcomeTagged {
		t.Fatalf("retry a minute later: got %s (%s), want tagged", res.Outcome, res.Reason)
	}
	e.assertTags(t, key, truth("a7000000-0000-4000-8000-000000000001", rec), nil)

	t.Run("an old key that is not found is dead-lettered", func(t *testing.T) {
		e.KMS.Router().SetIntercept(localaws.FailFirst(localaws.AnyRegion, localaws.KMSTarget("DescribeKey"), 1000, notFound))
		defer e.KMS.Router().SetIntercept(nil)
		e.handler.Now = func() time.Time { return time.Now().Add(24 * time.Hour) }
		res := e.handle(t, createKeyRecord("a7000000-0000-4000-8000-000000000002", key, alice, nil))
		if res.Outcome != tagger.OutcomeDeadLettered || res.ErrorCode != tagger.CodeNotFound {
			t.Fatalf("got %s %s, want dead-lettered %s", res.Outcome, res.ErrorCode, tagger.CodeNotFound)
		}
		e.wantDeadLetter(t, tagger.CodeNotFound)
	})
}

// TestYoungKeyRepairWaitsForTheHistory: a repair of a key whose creation
// event CloudTrail's history does not hold yet goes back to Lambda.
func TestYoungKeyRepairWaitsForTheHistory(t *testing.T) {
	e := newEnv(t)
	key := e.CreateKey(t, "us-east-1")
	e.TagKey(t, key, map[string]string{"CreatedBy": mallory})
	res, err := e.handleErr(t, tagRecord("a8000000-0000-4000-8000-000000000001", "TagResource", mallory, key, map[string]string{"CreatedBy": mallory}))
	if err == nil || res.Outcome != tagger.OutcomeError || res.ErrorCode != tagger.CodeCreationEventNotFound {
		t.Fatalf("got %s %s, %v; want an error for Lambda to retry", res.Outcome, res.ErrorCode, err)
	}
	if n := len(e.DeadLetters(t)); n != 0 {
		t.Errorf("dead letters: got %d, want 0", n)
	}
	created := createKeyRecord("a8000000-0000-4000-8000-000000000000", key, alice, nil)
	e.addHistory(t, created) // the history catches up
	if res := e.handle(t, tagRecord("a8000000-0000-4000-8000-000000000001", "TagResource", mallory, key, map[string]string{"CreatedBy": mallory})); res.Outcome != tagger.OutcomeTagged {
		t.Fatalf("retry: got %s (%s), want tagged", res.Outcome, res.Reason)
	}
	want := truth("a8000000-0000-4000-8000-000000000000", created)
	want["CreatedByEvidence"] = "history" // derived by the repair, from CloudTrail's history
	e.assertTags(t, key, want, nil)
}

// TestTwoTaggersOnOneKey: two deployments with different static tags, both
// receiving every event of the key, tag it and never repair each other or
// dead-letter each other's writes.
func TestTwoTaggersOnOneKey(t *testing.T) {
	e := newEnv(t)
	other := *e.handler // a second deployment over the same stand-ins
	roleA := "arn:aws:iam::111122223333:role/kms-autotagger/tagger-us-east-1"
	roleB := "arn:aws:iam::111122223333:role/kms-autotagger/tagger-central"
	pa, err := tagger.NewPolicy(tagger.DefaultNames(), "", []tagger.Tag{{Key: "Team", Value: "platform"}})
	if err != nil {
		t.Fatal(err)
	}
	pb, err := tagger.NewPolicy(tagger.DefaultNames(), "", []tagger.Tag{{Key: "DataClass", Value: "internal"}})
	if err != nil {
		t.Fatal(err)
	}
	a, b := e.handler, &other
	a.Policy, b.Policy = pa, pb
	a.Tamper.SelfRoleARN, b.Tamper.SelfRoleARN = roleA, roleB

	key := e.CreateKey(t, "us-east-1")
	created := createKeyRecord("a9000000-0000-4000-8000-000000000001", key, alice, nil)
	e.addHistory(t, created)
	handle := func(h *tagger.Handler, rec map[string]any) tagger.Result {
		t.Helper()
		res, err := h.Handle(context.Background(), envelope(rec))
		if err != nil {
			t.Fatalf("Handle: %v", err)
		}
		return res
	}
	for _, h := range []*tagger.Handler{a, b} {
		if res := handle(h, created); res.Outcome != tagger.OutcomeTagged {
			t.Fatalf("creation: got %s %s (%s), want tagged", res.Outcome, res.ErrorCode, res.Reason)
		}
	}
	// Each tagger's TagResource reaches the other (and itself).
	writeA := tagRecord("a9000000-0000-4000-8000-000000000002", "TagResource", roleA, key, map[string]string{"CreatedBy": alice, "Team": "platform"})
	writeB := tagRecord("a9000000-0000-4000-8000-000000000003", "TagResource", roleB, key, map[string]string{"CreatedBy": alice, "DataClass": "internal"})
	e.KMS.Router().ResetCounts()
	for _, h := range []*tagger.Handler{a, b} {
		for _, w := range []map[string]any{writeA, writeB} {
			if res := handle(h, w); res.Outcome != tagger.OutcomeSkipped {
				t.Errorf("a tagger's write: got %s (%s), want skipped", res.Outcome, res.Reason)
			}
		}
	}
	if n := e.KMS.Router().Count(localaws.AnyRegion, localaws.AnyTarget); n != 0 {
		t.Errorf("KMS calls for the taggers' own writes: got %d, want 0 (no loop)", n)
	}
	if n := len(e.DeadLetters(t)); n != 0 {
		t.Errorf("dead letters: got %d, want 0", n)
	}
	got := e.Tags(t, key)
	if got["Team"] != "platform" || got["DataClass"] != "internal" || got["CreatedBy"] != alice {
		t.Errorf("key tags: got %v, want both taggers' tags", got)
	}

	t.Run("a role named like a tagger's, off the path, is repaired", func(t *testing.T) {
		impostor := "arn:aws:iam::111122223333:role/tagger-central"
		e.TagKey(t, key, map[string]string{"CreatedBy": mallory})
		res := handle(a, tagRecord("a9000000-0000-4000-8000-000000000004", "TagResource", impostor, key, map[string]string{"CreatedBy": mallory}))
		if res.Outcome != tagger.OutcomeTagged || res.Repair == nil {
			t.Errorf("got %s (%s), want the change repaired", res.Outcome, res.Reason)
		}
		if got := e.Tags(t, key)["CreatedBy"]; got != alice {
			t.Errorf("CreatedBy: got %q, want %q", got, alice)
		}
	})
}

// TestUncorrectableForgeryIsFlagged: a key that keeps forged governance
// tags because the tagger cannot write is dead-lettered with its own code,
// naming the tags, and counted by the ForgedTagsKept metric.
func TestUncorrectableForgeryIsFlagged(t *testing.T) {
	for _, tt := range []struct {
		name  string
		setup func(t *testing.T, e *env, key string)
		cause string
	}{
		{"access denied by the key policy", func(t *testing.T, e *env, key string) {
			e.KMS.Router().SetIntercept(localaws.FailFirst(localaws.AnyRegion, localaws.KMSTarget("UntagResource"), 1000, localaws.AccessDeniedFault))
		}, "AccessDeniedException"},
		{"key pending deletion", func(t *testing.T, e *env, key string) {
			e.scheduleDeletion(t, key)
		}, "KMSInvalidStateException"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			var metricsOut strings.Builder
			m, err := newMetrics(&metricsOut)
			if err != nil {
				t.Fatal(err)
			}
			e.handler.Metrics = m
			key := e.CreateKey(t, "us-east-1")
			passed := map[string]string{"CreatedBy": mallory, "CreatedByRole": "arn:aws:iam::111122223333:role/Admin"}
			e.TagKey(t, key, passed)
			tt.setup(t, e, key)
			rec := createKeyRecord("aa000000-0000-4000-8000-000000000001", key, alice, nil)
			rec["requestParameters"] = map[string]any{"tags": requestTags(passed)}
			res := e.handle(t, rec)
			if res.Outcome != tagger.OutcomeDeadLettered || res.ErrorCode != tagger.CodeForgedTagsUncorrected {
				t.Fatalf("got %s %s (%s), want dead-lettered %s", res.Outcome, res.ErrorCode, res.Reason, tagger.CodeForgedTagsUncorrected)
			}
			d := e.wantDeadLetter(t, tagger.CodeForgedTagsUncorrected)
			if len(d.Forged) != 2 || !strings.Contains(d.Error.Message, "CreatedBy="+mallory) || !strings.Contains(d.Error.Detail, tt.cause) {
				t.Errorf("dead letter: got forged %v, message %q, detail %q; want both tags named and the cause %s", d.Forged, d.Error.Message, d.Error.Detail, tt.cause)
			}
			if !strings.Contains(metricsOut.String(), `"ForgedTagsKept":2`) {
				t.Errorf("metrics: got %s, want ForgedTagsKept 2", metricsOut.String())
			}
		})
	}
}

func requestTags(tags map[string]string) []map[string]string {
	var out []map[string]string
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		out = append(out, map[string]string{"tagKey": k, "tagValue": tags[k]})
	}
	return out
}

func sameSet(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

// scheduleDeletion puts keyARN in PendingDeletion.
func (e *env) scheduleDeletion(t *testing.T, keyARN string) {
	t.Helper()
	in := &kms.ScheduleKeyDeletionInput{KeyId: aws.String(keyARN), PendingWindowInDays: aws.Int32(7)}
	if _, err := e.KMS.Client(localawstest.RegionOf(keyARN)).ScheduleKeyDeletion(context.Background(), in); err != nil {
		t.Fatal(err)
	}
}

// newMetrics is the metrics emitter of the function, writing to w.
func newMetrics(w io.Writer) (*metrics.Emitter, error) {
	return metrics.New(w, metrics.DefaultNamespace)
}
