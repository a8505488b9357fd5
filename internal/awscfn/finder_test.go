package awscfn_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

func handle(t *testing.T, w *world, event []byte) (tagger.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return w.handler.Handle(ctx, event)
}

func mustTag(t *testing.T, w *world, event []byte) tagger.Result {
	t.Helper()
	res, err := handle(t, w, event)
	if err != nil || res.Outcome != tagger.OutcomeTagged {
		t.Fatalf("Handle: got %s (%s), error %v; want tagged", res.Outcome, res.Reason, err)
	}
	return res
}

// TestStackAndOperator: a key CloudFormation made with a service role,
// while its stack is still being created, gets its stack's ARN
// (DescribeStackResources by its id) and the Identity Center user who ran
// CreateStack (CloudTrail's record), with the other governance tags, in
// one TagResource.
func TestStackAndOperator(t *testing.T) {
	w := newWorld(t, nil)
	stack := newStack("payments")
	key := w.createdByCloudFormation(t, stack, "CREATE_IN_PROGRESS")
	at := now()
	w.ranStack(t, "stackop_createstack_sso", stack, at.Add(-90*time.Second))
	id := "dad9a22f-e9b0-4be2-9cbd-" + nextID()

	res := mustTag(t, w, createKeyEvent(t, "createkey_cloudformation", id, key, at))
	want := with(cloudFormationTags(id, at), "CreatedByStack", stack, "CreatedByUser", carol)
	if got := w.Tags(t, key); !reflect.DeepEqual(got, want) {
		t.Errorf("tags:\ngot  %v\nwant %v", got, want)
	}
	if n := w.KMS.Router().Count(region, localaws.KMSTarget("TagResource")); n != 1 {
		t.Errorf("TagResource calls: got %d, want 1", n)
	}
	if len(res.Pending) != 0 || len(res.Unset) != 0 {
		t.Errorf("pending %+v unset %+v, want none", res.Pending, res.Unset)
	}
	calls := w.cfn.Requests("DescribeStackResources")
	if len(calls) != 1 || calls[0].PhysicalResourceID != keyID(key) || calls[0].Region != region || calls[0].Account != account {
		t.Errorf("DescribeStackResources calls: got %+v, want one by the key's id in %s %s", calls, account, region)
	}
	if n := w.CloudTrail.Count(region, "LookupEvents"); n != 1 {
		t.Errorf("LookupEvents calls: got %d, want 1 (by the stack's ARN)", n)
	}

	// A redelivery: nothing to write, no removal.
	res, err := handle(t, w, createKeyEvent(t, "createkey_cloudformation", id, key, at))
	if err != nil || res.Outcome != tagger.OutcomeSkipped {
		t.Errorf("redelivery: got %s (%s), error %v; want skipped", res.Outcome, res.Reason, err)
	}
}

// TestOperatorByUpdateAndChangeSet: the operator is the caller of the
// stack's latest operation before the key's creation, whether an
// UpdateStack or an ExecuteChangeSet tied to the stack by its
// CreateChangeSet; a failed call, or a call on another stack of the same
// name, is not it; a pipeline role's session names no person.
func TestOperatorByUpdateAndChangeSet(t *testing.T) {
	w := newWorld(t, nil)
	at := now()

	t.Run("UpdateStack by a pipeline role", func(t *testing.T) {
		stack := newStack("payments")
		key := w.createdByCloudFormation(t, stack, "UPDATE_IN_PROGRESS")
		w.ranStack(t, "stackop_createstack_sso", stack, at.Add(-3*time.Hour))
		w.ranStack(t, "stackop_updatestack_pipeline", stack, at.Add(-2*time.Minute))
		w.ranStack(t, "stackop_updatestack_failed", stack, at.Add(-time.Minute)) // refused: the stack was busy
		id := "dad9a22f-e9b0-4be2-9cbd-" + nextID()
		res := mustTag(t, w, createKeyEvent(t, "createkey_cloudformation", id, key, at))
		if got, want := w.Tags(t, key), with(cloudFormationTags(id, at), "CreatedByStack", stack); !reflect.DeepEqual(got, want) {
			t.Errorf("tags:\ngot  %v\nwant %v", got, want)
		}
		n := noteOf(res.Unset, "CreatedByUser")
		if n == nil || !strings.Contains(n.Reason, "UpdateStack") || !strings.Contains(n.Reason, "ordinary role session") {
			t.Errorf("unset CreatedByUser: got %+v, want the UpdateStack's pipeline session named", n)
		}
	})

	t.Run("ExecuteChangeSet by the change set's ARN", func(t *testing.T) {
		stack := newStack("orders")
		key := w.createdByCloudFormation(t, stack, "UPDATE_IN_PROGRESS")
		changeSet := "arn:aws:cloudformation:" + region + ":" + account + ":changeSet/orders-release-42/1e5c9a3d-7b2f-4e6a-8c0d-" + nextID()
		for _, rec := range []struct {
			fixture string
			at      time.Time
		}{{"stackop_createchangeset", at.Add(-10 * time.Minute)}, {"stackop_executechangeset", at.Add(-time.Minute)}} {
			b := operationRecord(t, rec.fixture, stack, rec.at)
			s := strings.ReplaceAll(string(b), "arn:aws:cloudformation:eu-west-1:111122223333:stack/orders/9d3b1f7c-5fa4-11ef-b2c6-06e4a1f3d5b7", stack)
			s = strings.ReplaceAll(s, "arn:aws:cloudformation:eu-west-1:111122223333:changeSet/orders-release-42/1e5c9a3d-7b2f-4e6a-8c0d-4f1b3d5a7c9e", changeSet)
			if err := w.CloudTrail.AddEvent(region, []byte(s)); err != nil {
				t.Fatal(err)
			}
		}
		// The same name's stack deleted and made again: not this one.
		other := newStack("orders")
		w.ranStack(t, "stackop_createstack_sso", other, at.Add(-30*time.Second))
		id := "dad9a22f-e9b0-4be2-9cbd-" + nextID()
		mustTag(t, w, createKeyEvent(t, "createkey_cloudformation", id, key, at))
		if got, want := w.Tags(t, key), with(cloudFormationTags(id, at), "CreatedByStack", stack, "CreatedByUser", "erin@example.com"); !reflect.DeepEqual(got, want) {
			t.Errorf("tags:\ngot  %v\nwant %v", got, want)
		}
	})
}

// TestStackSetInstance: the stack of a StackSet instance is named, its
// operator is not looked up (it is recorded in the StackSet's
// administrator account), and the result says so.
func TestStackSetInstance(t *testing.T) {
	w := newWorld(t, nil)
	stack := newStack("StackSet-baseline-keys-3f1c7a9e-2b4d-4e6f-8a0c-1e3b5d7f9a2c")
	key := w.createdByCloudFormation(t, stack, "CREATE_COMPLETE")
	at := now()
	id := "e2a4c6e8-0a2c-4e6a-8c0e-" + nextID()
	res := mustTag(t, w, createKeyEvent(t, "createkey_stackset_instance", id, key, at))
	if got := w.Tags(t, key); got["CreatedByStack"] != stack || got["CreatedByUser"] != "" {
		t.Errorf("tags: got %v, want CreatedByStack %s and no CreatedByUser", got, stack)
	}
	if n := noteOf(res.Unset, "CreatedByUser"); n == nil || !strings.Contains(n.Reason, "administrator account") {
		t.Errorf("unset CreatedByUser: got %+v, want the StackSet's administrator account named", n)
	}
	if n := w.CloudTrail.Count(region, "LookupEvents"); n != 0 {
		t.Errorf("LookupEvents calls: got %d, want none for a StackSet instance", n)
	}
	if !strings.Contains(w.logs.String(), `"unset":{"CreatedByUser":"made by the StackSet instance`) {
		t.Errorf("log: want the reason on the event's line, got %s", w.logs.String())
	}
}

// TestWithoutServiceRole: CloudFormation calls with the operator's own
// credentials, so the CreateKey names the person; only the stack is looked
// up.
func TestWithoutServiceRole(t *testing.T) {
	w := newWorld(t, nil)
	stack := newStack("orders")
	key := w.createdByCloudFormation(t, stack, "CREATE_COMPLETE")
	at := now()
	id := "4f6a8c0e-2b4d-4f6a-8c0e-" + nextID()
	mustTag(t, w, createKeyEvent(t, "createkey_cloudformation_no_service_role", id, key, at))
	if got := w.Tags(t, key); got["CreatedByStack"] != stack || got["CreatedByUser"] != "erin@example.com" {
		t.Errorf("tags: got %v, want the stack and the operator's own name", got)
	}
	if n := w.CloudTrail.Count(region, "LookupEvents"); n != 0 {
		t.Errorf("LookupEvents calls: got %d, want none: the event names the person", n)
	}
}

// TestLookupThrottledBriefly: the SDK's standard retryer rides out a few
// Throttling answers within the invocation.
func TestLookupThrottledBriefly(t *testing.T) {
	w := newWorld(t, nil)
	stack := newStack("payments")
	key := w.createdByCloudFormation(t, stack, "CREATE_COMPLETE")
	at := now()
	w.ranStack(t, "stackop_createstack_sso", stack, at.Add(-time.Minute))
	w.cfn.SetIntercept(localaws.FailFirstQuery(region, "DescribeStackResources", 2, localaws.CloudFormationThrottling))
	w.CloudTrail.SetIntercept(localaws.FailFirst(region, localaws.CloudTrailTarget("LookupEvents"), 2, localaws.ThrottlingFault))
	id := "dad9a22f-e9b0-4be2-9cbd-" + nextID()
	mustTag(t, w, createKeyEvent(t, "createkey_cloudformation", id, key, at))
	if got, want := w.Tags(t, key), with(cloudFormationTags(id, at), "CreatedByStack", stack, "CreatedByUser", carol); !reflect.DeepEqual(got, want) {
		t.Errorf("tags:\ngot  %v\nwant %v", got, want)
	}
	if n := w.cfn.Count("DescribeStackResources"); n != 3 {
		t.Errorf("DescribeStackResources calls: got %d, want 3 (two throttled, retried)", n)
	}
	if n := w.CloudTrail.Count(region, "LookupEvents"); n != 3 {
		t.Errorf("LookupEvents calls: got %d, want 3 (two throttled, retried)", n)
	}
}

// TestLookupFailingFinishesLater: with the lookup throttled past its
// retries, the other governance tags are written in the same invocation
// and the event is returned as a transient error (AttributionPending) for
// Lambda to try again; the next attempt writes CreatedByStack and
// CreatedByUser; a later attempt whose lookup fails again removes nothing.
func TestLookupFailingFinishesLater(t *testing.T) {
	w := newWorld(t, map[string]string{"MAX_ATTEMPTS": "3"})
	stack := newStack("payments")
	key := w.createdByCloudFormation(t, stack, "CREATE_COMPLETE")
	at := now()
	w.ranStack(t, "stackop_createstack_sso", stack, at.Add(-time.Minute))
	event := createKeyEvent(t, "createkey_cloudformation", "dad9a22f-e9b0-4be2-9cbd-"+nextID(), key, at)
	id := eventIDOf(t, event)
	known := cloudFormationTags(id, at)

	w.cfn.SetIntercept(localaws.FailFirstQuery(region, "DescribeStackResources", -1, localaws.CloudFormationThrottling))
	res, err := handle(t, w, event)
	if err == nil || res.Outcome != tagger.OutcomeError || res.ErrorCode != tagger.CodeAttributionPending {
		t.Fatalf("throttled: got %s %s, error %v; want the error AttributionPending for Lambda to retry", res.Outcome, res.ErrorCode, err)
	}
	if got := w.Tags(t, key); !reflect.DeepEqual(got, known) {
		t.Errorf("throttled: tags:\ngot  %v\nwant the others, written now %v", got, known)
	}
	if res.TagsWritten != len(known) {
		t.Errorf("throttled: tags written: got %d, want %d", res.TagsWritten, len(known))
	}
	for _, k := range []string{"CreatedByStack", "CreatedByUser"} {
		if n := noteOf(res.Pending, k); n == nil || !n.Retry || !strings.Contains(n.Reason, "Throttling") {
			t.Errorf("throttled: pending %s: got %+v, want it pending on the throttling, to retry", k, n)
		}
	}
	if n := w.cfn.Count("DescribeStackResources"); n != 3 {
		t.Errorf("throttled: DescribeStackResources calls: got %d, want MAX_ATTEMPTS 3", n)
	}
	if len(w.DeadLetters(t)) != 0 {
		t.Error("throttled: got a dead letter, want the event returned to Lambda")
	}

	// Lambda's retry, a minute later: the lookup succeeds.
	w.cfn.SetIntercept(nil)
	res = mustTag(t, w, event)
	if got, want := w.Tags(t, key), with(known, "CreatedByStack", stack, "CreatedByUser", carol); !reflect.DeepEqual(got, want) {
		t.Errorf("retry: tags:\ngot  %v\nwant %v", got, want)
	}
	if res.TagsWritten != 2 {
		t.Errorf("retry: tags written: got %d, want the 2 pending", res.TagsWritten)
	}

	// Another attempt whose lookup fails: unknown is not "no true value".
	w.cfn.SetIntercept(localaws.FailFirstQuery(region, "DescribeStackResources", -1, localaws.CloudFormationInternal))
	untags := w.KMS.Router().Count(region, localaws.KMSTarget("UntagResource"))
	res, err = handle(t, w, event)
	if err == nil || res.ErrorCode != tagger.CodeAttributionPending {
		t.Errorf("failing again: got %s %s, error %v; want AttributionPending", res.Outcome, res.ErrorCode, err)
	}
	if got, want := w.Tags(t, key), with(known, "CreatedByStack", stack, "CreatedByUser", carol); !reflect.DeepEqual(got, want) {
		t.Errorf("failing again: tags:\ngot  %v\nwant those written earlier kept %v", got, want)
	}
	if n := w.KMS.Router().Count(region, localaws.KMSTarget("UntagResource")) - untags; n != 0 {
		t.Errorf("failing again: UntagResource calls: got %d, want none", n)
	}
	for _, k := range []string{"CreatedByStack", "CreatedByUser"} {
		if n := noteOf(res.Pending, k); n == nil || !n.Kept {
			t.Errorf("failing again: pending %s: got %+v, want the carried value kept", k, n)
		}
	}
}

func eventIDOf(t *testing.T, event []byte) string {
	t.Helper()
	var ev struct {
		Detail struct {
			EventID string `json:"eventID"`
		} `json:"detail"`
	}
	if err := json.Unmarshal(event, &ev); err != nil {
		t.Fatal(err)
	}
	return ev.Detail.EventID
}

// TestLookupDenied: a permanent failure (the role lacks
// cloudformation:DescribeStackResources) is not retried: the key is
// tagged without the stack's tags, and the result says why.
func TestLookupDenied(t *testing.T) {
	w := newWorld(t, nil)
	stack := newStack("payments")
	key := w.createdByCloudFormation(t, stack, "CREATE_COMPLETE")
	at := now()
	w.cfn.SetIntercept(localaws.FailFirstQuery(localaws.AnyRegion, localaws.AnyTarget, -1, localaws.CloudFormationAccessDenied))
	id := "dad9a22f-e9b0-4be2-9cbd-" + nextID()
	res := mustTag(t, w, createKeyEvent(t, "createkey_cloudformation", id, key, at))
	if got := w.Tags(t, key); !reflect.DeepEqual(got, cloudFormationTags(id, at)) {
		t.Errorf("tags:\ngot  %v\nwant %v", got, cloudFormationTags(id, at))
	}
	n := noteOf(res.Pending, "CreatedByStack")
	if n == nil || n.Retry || !strings.Contains(n.Reason, "AccessDenied") {
		t.Errorf("pending CreatedByStack: got %+v, want AccessDenied, not retried", n)
	}
	if c := w.cfn.Count("DescribeStackResources"); c != 1 {
		t.Errorf("DescribeStackResources calls: got %d, want 1 (not retried)", c)
	}
}

// TestLookupSlow: a CloudFormation that does not answer holds the other
// governance tags back no longer than STACK_LOOKUP_TIMEOUT.
func TestLookupSlow(t *testing.T) {
	w := newWorld(t, map[string]string{"STACK_LOOKUP_TIMEOUT": "400ms"})
	stack := newStack("payments")
	key := w.createdByCloudFormation(t, stack, "CREATE_COMPLETE")
	at := now()
	w.cfn.SetIntercept(func(_ http.ResponseWriter, r *http.Request, _, _ string) bool {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		return false
	})
	id := "dad9a22f-e9b0-4be2-9cbd-" + nextID()
	start := time.Now()
	res, err := handle(t, w, createKeyEvent(t, "createkey_cloudformation", id, key, at))
	took := time.Since(start)
	if err == nil || res.ErrorCode != tagger.CodeAttributionPending || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %s %s, error %v; want AttributionPending on the lookup's deadline", res.Outcome, res.ErrorCode, err)
	}
	if took > 3*time.Second {
		t.Errorf("Handle took %v, want the lookup cut at 400ms", took)
	}
	if got := w.Tags(t, key); !reflect.DeepEqual(got, cloudFormationTags(id, at)) {
		t.Errorf("tags:\ngot  %v\nwant the others %v", got, cloudFormationTags(id, at))
	}
}

// TestOperatorLookupFailing: the stack is known, its operator's record is
// not (LookupEvents throttled past its retries): CreatedByStack is written
// now, CreatedByUser later.
func TestOperatorLookupFailing(t *testing.T) {
	w := newWorld(t, map[string]string{"MAX_ATTEMPTS": "2"})
	stack := newStack("payments")
	key := w.createdByCloudFormation(t, stack, "CREATE_COMPLETE")
	at := now()
	w.ranStack(t, "stackop_createstack_sso", stack, at.Add(-time.Minute))
	w.CloudTrail.SetIntercept(localaws.FailFirst(region, localaws.CloudTrailTarget("LookupEvents"), -1, localaws.ThrottlingFault))
	event := createKeyEvent(t, "createkey_cloudformation", "dad9a22f-e9b0-4be2-9cbd-"+nextID(), key, at)
	res, err := handle(t, w, event)
	if err == nil || res.ErrorCode != tagger.CodeAttributionPending {
		t.Fatalf("got %s %s, error %v; want AttributionPending", res.Outcome, res.ErrorCode, err)
	}
	if got, want := w.Tags(t, key), with(cloudFormationTags(eventIDOf(t, event), at), "CreatedByStack", stack); !reflect.DeepEqual(got, want) {
		t.Errorf("tags:\ngot  %v\nwant %v", got, want)
	}
	if n := noteOf(res.Pending, "CreatedByUser"); n == nil || !n.Retry || noteOf(res.Pending, "CreatedByStack") != nil {
		t.Errorf("pending: got %+v, want CreatedByUser only, to retry", res.Pending)
	}
	w.CloudTrail.SetIntercept(nil)
	mustTag(t, w, event)
	if got := w.Tags(t, key)["CreatedByUser"]; got != carol {
		t.Errorf("retry: CreatedByUser: got %q, want %q", got, carol)
	}
}

// TestYoungAndOldKeys: a young key that CloudFormation or the event
// history does not know yet is pending, to retry; an old one is tagged
// without what cannot be found, and the result says why.
func TestYoungAndOldKeys(t *testing.T) {
	w := newWorld(t, nil)

	t.Run("young, stack operation not in the history yet", func(t *testing.T) {
		stack := newStack("payments")
		key := w.createdByCloudFormation(t, stack, "CREATE_IN_PROGRESS")
		at := now()
		event := createKeyEvent(t, "createkey_cloudformation", "dad9a22f-e9b0-4be2-9cbd-"+nextID(), key, at)
		res, err := handle(t, w, event)
		if err == nil || res.ErrorCode != tagger.CodeAttributionPending || w.Tags(t, key)["CreatedByStack"] != stack {
			t.Fatalf("got %s %s, error %v, tags %v; want CreatedByStack now and AttributionPending", res.Outcome, res.ErrorCode, err, w.Tags(t, key))
		}
		w.ranStack(t, "stackop_createstack_sso", stack, at.Add(-time.Minute)) // the history catches up
		mustTag(t, w, event)
		if got := w.Tags(t, key)["CreatedByUser"]; got != carol {
			t.Errorf("CreatedByUser: got %q, want %q", got, carol)
		}
	})

	t.Run("young, not listed by CloudFormation yet", func(t *testing.T) {
		key := w.createdByCloudFormation(t, "", "")
		res, err := handle(t, w, createKeyEvent(t, "createkey_cloudformation", "dad9a22f-e9b0-4be2-9cbd-"+nextID(), key, now()))
		if err == nil || res.ErrorCode != tagger.CodeAttributionPending {
			t.Errorf("got %s %s, error %v; want AttributionPending", res.Outcome, res.ErrorCode, err)
		}
	})

	old := now().Add(-2 * time.Hour)
	t.Run("old, in no stack", func(t *testing.T) {
		key := w.createdByCloudFormation(t, "", "")
		w.KMS.SetKeyFacts(key, localaws.KeyFacts{CreationDate: old})
		res := mustTag(t, w, createKeyEvent(t, "createkey_cloudformation", "dad9a22f-e9b0-4be2-9cbd-"+nextID(), key, old))
		n := noteOf(res.Pending, "CreatedByStack")
		if n == nil || n.Retry || !strings.Contains(n.Reason, "no CloudFormation stack") {
			t.Errorf("pending CreatedByStack: got %+v, want no stack, not retried", n)
		}
		if _, ok := w.Tags(t, key)["CreatedByStack"]; ok {
			t.Error("got a CreatedByStack, want none")
		}
	})

	t.Run("old, stack operation beyond the window", func(t *testing.T) {
		stack := newStack("payments")
		key := w.createdByCloudFormation(t, stack, "CREATE_COMPLETE")
		w.KMS.SetKeyFacts(key, localaws.KeyFacts{CreationDate: old})
		w.ranStack(t, "stackop_createstack_sso", stack, old.Add(-25*time.Hour))
		res := mustTag(t, w, createKeyEvent(t, "createkey_cloudformation", "dad9a22f-e9b0-4be2-9cbd-"+nextID(), key, old))
		if got := w.Tags(t, key); got["CreatedByStack"] != stack || got["CreatedByUser"] != "" {
			t.Errorf("tags: got %v, want the stack and no CreatedByUser", got)
		}
		if n := noteOf(res.Pending, "CreatedByUser"); n == nil || n.Retry || !strings.Contains(n.Reason, "holds no CreateStack") {
			t.Errorf("pending CreatedByUser: got %+v, want no operation found, not retried", n)
		}
	})
}

// TestLookupRateLimit: the lookups keep to STACK_LOOKUP_RATE_LIMIT per
// client, retries included, as the KMS writes keep to TAG_RATE_LIMIT.
func TestLookupRateLimit(t *testing.T) {
	w := newWorld(t, map[string]string{"STACK_LOOKUP_RATE_LIMIT": "4"})
	at := now()
	for range 4 {
		stack := newStack("payments")
		key := w.createdByCloudFormation(t, stack, "CREATE_COMPLETE")
		w.ranStack(t, "stackop_createstack_sso", stack, at.Add(-time.Minute))
		mustTag(t, w, createKeyEvent(t, "createkey_cloudformation", "dad9a22f-e9b0-4be2-9cbd-"+nextID(), key, at))
	}
	check := func(name string, times []time.Time) {
		t.Helper()
		if len(times) != 4 {
			t.Fatalf("%s calls: got %d, want 4", name, len(times))
		}
		for i := 1; i < len(times); i++ {
			if gap := times[i].Sub(times[i-1]); gap < 200*time.Millisecond {
				t.Errorf("%s calls %d and %d: %v apart, want at least 250ms at 4 per second", name, i-1, i, gap)
			}
		}
	}
	var cfnTimes, trailTimes []time.Time
	for _, r := range w.cfn.Requests("DescribeStackResources") {
		cfnTimes = append(cfnTimes, r.Time)
	}
	for _, r := range w.CloudTrail.Requests(region, "LookupEvents") {
		trailTimes = append(trailTimes, r.Time)
	}
	check("DescribeStackResources", cfnTimes)
	check("LookupEvents", trailTimes)
}

// tagResourceEvent is mallory's TagResource of tags on keyARN, now.
func tagResourceEvent(t *testing.T, keyARN string, tags map[string]string) []byte {
	t.Helper()
	ev := readFixture(t, "tagresource")
	at := now().Format(time.RFC3339)
	id := "2c9051d1-b43d-4bd0-8f83-" + nextID()
	ev["id"], ev["time"], ev["region"] = "e"+id, at, region
	d := obj(ev, "detail")
	d["eventID"], d["eventTime"], d["awsRegion"] = id, at, region
	d["userIdentity"] = map[string]any{"type": "IAMUser", "principalId": "AIDAMALLORY", "arn": "arn:aws:iam::111122223333:user/mallory", "accountId": account, "userName": "mallory"}
	var list []any
	for k, v := range tags {
		list = append(list, map[string]any{"tagKey": k, "tagValue": v})
	}
	obj(d, "requestParameters")["keyId"] = keyARN
	obj(d, "requestParameters")["tags"] = list
	d["resources"] = []any{map[string]any{"accountId": account, "type": "AWS::KMS::Key", "ARN": keyARN}}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTamperedStackTagsRepaired: CreatedByStack and CreatedByUser are
// governance tags like the others: someone else's values are repaired from
// the key's creation event and its stack; when the stack lookup fails
// during the repair, someone else's values go rather than stay, and the
// retry restores the true ones.
func TestTamperedStackTagsRepaired(t *testing.T) {
	w := newWorld(t, map[string]string{"MAX_ATTEMPTS": "2"})
	stack := newStack("payments")
	key := w.createdByCloudFormation(t, stack, "CREATE_COMPLETE")
	at := now()
	w.ranStack(t, "stackop_createstack_sso", stack, at.Add(-time.Minute))
	event := createKeyEvent(t, "createkey_cloudformation", "dad9a22f-e9b0-4be2-9cbd-"+nextID(), key, at)
	var env struct{ Detail json.RawMessage }
	if err := json.Unmarshal(event, &env); err != nil {
		t.Fatal(err)
	}
	if err := w.CloudTrail.AddEvent(region, env.Detail); err != nil { // the creation, in the history
		t.Fatal(err)
	}
	mustTag(t, w, event)
	truth := w.Tags(t, key)
	forged := map[string]string{"CreatedByStack": "arn:aws:cloudformation:eu-west-1:111122223333:stack/prod/1", "CreatedByUser": "mallory"}

	w.TagKey(t, key, forged)
	res := mustTag(t, w, tagResourceEvent(t, key, forged))
	if res.Repair == nil || !reflect.DeepEqual(w.Tags(t, key), truth) {
		t.Errorf("repair: got %+v, tags %v; want the truth %v restored", res.Repair, w.Tags(t, key), truth)
	}

	w.TagKey(t, key, forged)
	w.cfn.SetIntercept(localaws.FailFirstQuery(region, "DescribeStackResources", -1, localaws.CloudFormationThrottling))
	change := tagResourceEvent(t, key, forged)
	res, err := handle(t, w, change)
	if err == nil || res.ErrorCode != tagger.CodeAttributionPending {
		t.Fatalf("repair while throttled: got %s %s, error %v; want AttributionPending", res.Outcome, res.ErrorCode, err)
	}
	got := w.Tags(t, key)
	for k := range forged {
		if _, ok := got[k]; ok {
			t.Errorf("repair while throttled: %s=%s kept, want mallory's value removed", k, got[k])
		}
	}
	w.cfn.SetIntercept(nil)
	mustTag(t, w, change) // Lambda's retry
	if got := w.Tags(t, key); !reflect.DeepEqual(got, truth) {
		t.Errorf("retried repair: tags:\ngot  %v\nwant %v", got, truth)
	}
}

// TestLookupsOnlyForTheirTags: with CreatedByStack and CreatedByUser
// switched off, app.NewHandler makes no stack finder, and a key
// CloudFormation made is tagged without a lookup.
func TestLookupsOnlyForTheirTags(t *testing.T) {
	w := newWorld(t, map[string]string{"TAG_NAME_CREATED_BY_USER": "-", "TAG_NAME_CREATED_BY_STACK": "-"})
	if w.handler.Stacks != nil {
		t.Fatal("got a stack finder, want none with both tags off")
	}
	stack := newStack("payments")
	key := w.createdByCloudFormation(t, stack, "CREATE_COMPLETE")
	id := "dad9a22f-e9b0-4be2-9cbd-" + nextID()
	at := now()
	res := mustTag(t, w, createKeyEvent(t, "createkey_cloudformation", id, key, at))
	if got := w.Tags(t, key); !reflect.DeepEqual(got, cloudFormationTags(id, at)) || len(res.Pending) != 0 {
		t.Errorf("tags %v pending %+v, want %v and nothing pending", got, res.Pending, cloudFormationTags(id, at))
	}
	if n := w.cfn.Count(localaws.AnyOperation); n != 0 {
		t.Errorf("CloudFormation requests: got %d, want none", n)
	}
}

// TestStackOfManyResources: DescribeStackResources answers the first 100
// resources of the stack that holds the key, which may leave out the key's
// own entry; the stack is still the one they belong to.
func TestStackOfManyResources(t *testing.T) {
	w := newWorld(t, nil)
	stack := newStack("platform")
	for range 110 {
		w.cfn.AddResource(account, region, localaws.StackResource{StackName: "platform", StackID: stack, LogicalResourceID: "Queue" + nextID(),
			PhysicalResourceID: "https://sqs.eu-west-1.amazonaws.com/111122223333/q" + nextID(), ResourceType: "AWS::SQS::Queue", ResourceStatus: "CREATE_COMPLETE"})
	}
	key := w.createdByCloudFormation(t, stack, "CREATE_COMPLETE") // the 111th
	at := now()
	w.ranStack(t, "stackop_createstack_sso", stack, at.Add(-time.Minute))
	mustTag(t, w, createKeyEvent(t, "createkey_cloudformation", "dad9a22f-e9b0-4be2-9cbd-"+nextID(), key, at))
	if got := w.Tags(t, key); got["CreatedByStack"] != stack || got["CreatedByUser"] != carol {
		t.Errorf("tags: got %v, want the stack %s and %s", got, stack, carol)
	}
}

// TestStackThatDidNotCreateTheKey: a key imported into a stack (after the
// stack that made it let it go) was not created by that stack: it is
// tagged without CreatedByStack, and the result says why.
func TestStackThatDidNotCreateTheKey(t *testing.T) {
	w := newWorld(t, nil)
	key := w.createdByCloudFormation(t, newStack("adopter"), "IMPORT_COMPLETE")
	res := mustTag(t, w, createKeyEvent(t, "createkey_cloudformation", "dad9a22f-e9b0-4be2-9cbd-"+nextID(), key, now()))
	if n := noteOf(res.Pending, "CreatedByStack"); n == nil || n.Retry || !strings.Contains(n.Reason, "was imported into stack") {
		t.Errorf("pending CreatedByStack: got %+v, want the import named, not retried", n)
	}
	if _, ok := w.Tags(t, key)["CreatedByStack"]; ok {
		t.Error("got a CreatedByStack, want none")
	}
}
