package redrive_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/kms-autotagger/kms-autotagger/internal/app"
	"github.com/kms-autotagger/kms-autotagger/internal/awskms"
	"github.com/kms-autotagger/kms-autotagger/internal/config"
	"github.com/kms-autotagger/kms-autotagger/internal/history"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws/localawstest"
	"github.com/kms-autotagger/kms-autotagger/internal/redrive"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

var eventTime = localawstest.EventTime

const (
	userARN = localawstest.UserARN
	ruleARN = "arn:aws:events:us-east-1:111122223333:rule/kms-autotagger-KeyCreatedRule"
	fnARN   = "arn:aws:lambda:us-east-1:111122223333:function:kms-autotagger"
)

// stack is local-kms in two regions behind the region router, the SQS
// stand-in with one queue, and two real handlers wired by app.NewHandler from
// the environment: the function's own, which dead-letters into the queue, and
// the redrive's, built the same way with DeadLetters nil as the CLI does.
type stack struct {
	*localawstest.Stack
	function *tagger.Handler
	redriver *tagger.Handler
	logs     *localawstest.SyncBuffer
	log      *slog.Logger
	// history confirms creation events from the CloudTrail stand-in's
	// event history, as the CLI's redrive does from CloudTrail's.
	history *history.Finder
}

func startStack(t *testing.T) *stack {
	t.Helper()
	st := localawstest.Start(t, localawstest.Options{CloudTrail: &localaws.CloudTrailOptions{}, Env: map[string]string{
		"MAX_BACKOFF":         "20ms",
		"TAG_RATE_LIMIT":      "0",
		"DEAD_LETTER_RESERVE": "1s",
		"STATIC_TAGS":         "ManagedBy=kms-autotagger",
		"TAMPER_REPAIR":       "false",
	}})
	cfg, err := config.FromEnv(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	logs := &localawstest.SyncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})
	log := slog.New(slog.NewJSONHandler(logs, nil))
	function, err := app.NewHandler(cfg, localawstest.FunctionConfig(t), log)
	if err != nil {
		t.Fatal(err)
	}
	if function.DeadLetters == nil {
		t.Fatal("the function's handler has no dead-letter queue")
	}
	redriver, err := app.NewHandler(cfg, localawstest.FunctionConfig(t), log)
	if err != nil {
		t.Fatal(err)
	}
	redriver.DeadLetters = nil
	finder := history.NewFinder(localawstest.FunctionConfig(t), awskms.NewRegionalKMS(localawstest.FunctionConfig(t)))
	return &stack{Stack: st, function: function, redriver: redriver, logs: logs, log: log, history: finder}
}

// createKeyEvent is localawstest.CreateKeyEvent, also recorded in the
// CloudTrail stand-in's event history: a real creation event.
func (s *stack) createKeyEvent(t *testing.T, eventID, keyARN string) []byte {
	t.Helper()
	event := localawstest.CreateKeyEvent(eventID, keyARN, nil)
	var env struct{ Detail json.RawMessage }
	if err := json.Unmarshal(event, &env); err != nil {
		t.Fatal(err)
	}
	if err := s.CloudTrail.AddEvent(localawstest.RegionOf(keyARN), env.Detail); err != nil {
		t.Fatal(err)
	}
	return event
}

// wantGovernanceTags checks that the key carries the tags of the event.
func (s *stack) wantGovernanceTags(t *testing.T, keyARN, eventID string) {
	t.Helper()
	want := map[string]string{"CreatedBy": userARN, "CreatedAt": eventTime, "CreationEventId": eventID, "CreatedByUser": "alice", "CreatedByEvidence": "event", "ManagedBy": "kms-autotagger"}
	if got := s.Tags(t, keyARN); !reflect.DeepEqual(got, want) {
		t.Errorf("tags on %s: got %v, want %v", keyARN, got, want)
	}
}

func (s *stack) send(t *testing.T, queueURL, body string, attrs map[string]string) {
	t.Helper()
	in := &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(body)}
	if len(attrs) > 0 {
		in.MessageAttributes = make(map[string]sqstypes.MessageAttributeValue, len(attrs))
		for name, v := range attrs {
			in.MessageAttributes[name] = sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
		}
	}
	if _, err := s.SQS.Client().SendMessage(context.Background(), in); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
}

// sendUndelivered sends event as EventBridge does to a rule target's
// dead-letter queue: the event as the body, the error in attributes.
func (s *stack) sendUndelivered(t *testing.T, queueURL string, event []byte) {
	t.Helper()
	s.send(t, queueURL, string(event), map[string]string{
		redrive.AttrEventBridgeRuleARN:   ruleARN,
		redrive.AttrEventBridgeTargetARN: fnARN,
		redrive.AttrEventBridgeErrorCode: "NO_PERMISSIONS",
		redrive.AttrEventBridgeErrorMsg:  "Lambda function is not authorized to be invoked by EventBridge",
		redrive.AttrEventBridgeRetries:   "0",
	})
}

// lambdaDestination is the record Lambda sends to the on-failure
// destination after the function returned handlerErr for event on every
// attempt; the error payload is the one aws-lambda-go writes.
func lambdaDestination(t *testing.T, event []byte, handlerErr error) string {
	t.Helper()
	errType := reflect.TypeOf(handlerErr)
	if errType.Kind() == reflect.Pointer {
		errType = errType.Elem()
	}
	payload, err := json.Marshal(map[string]string{"errorMessage": handlerErr.Error(), "errorType": errType.Name()})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(redrive.LambdaDestinationRecord{
		Version:   redrive.LambdaDestinationVersion,
		Timestamp: "2024-01-09T19:01:12.345Z",
		RequestContext: redrive.LambdaRequestContext{
			RequestID: "e4b46cbf-b738-4f0e-8880-a18cdf61200e", FunctionARN: fnARN + ":$LATEST",
			Condition: "RetriesExhausted", ApproximateInvokeCount: 3,
		},
		RequestPayload:  event,
		ResponseContext: redrive.LambdaResponseContext{StatusCode: 200, ExecutedVersion: "$LATEST", FunctionError: "Unhandled"},
		ResponsePayload: payload,
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// counts returns the queue's visible and in-flight message counts once they
// settle on want (the stand-in makes a message visible again a moment after
// ChangeMessageVisibility), or what they are after a few seconds.
func (s *stack) waitCounts(t *testing.T, queueURL string, wantVisible, wantInFlight int) {
	t.Helper()
	var visible, inFlight int
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out, err := s.SQS.Client().GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
			QueueUrl: aws.String(queueURL),
			AttributeNames: []sqstypes.QueueAttributeName{
				sqstypes.QueueAttributeNameApproximateNumberOfMessages,
				sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			},
		})
		if err != nil {
			t.Fatalf("GetQueueAttributes: %v", err)
		}
		visible, _ = strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)])
		inFlight, _ = strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
		if (visible == wantVisible && inFlight == wantInFlight) || time.Now().After(deadline) {
			break
		}
	}
	if visible != wantVisible || inFlight != wantInFlight {
		t.Errorf("queue: got %d visible and %d in flight, want %d and %d", visible, inFlight, wantVisible, wantInFlight)
	}
}

// bodies receives every message of the queue and makes it visible again.
// One receive of 10 takes every message the stand-in holds (it waits out
// WaitTimeSeconds for more).
func (s *stack) bodies(t *testing.T, queueURL string) []string {
	t.Helper()
	ctx := context.Background()
	out, err := s.SQS.Client().ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10, VisibilityTimeout: 30, WaitTimeSeconds: 1})
	if err != nil {
		t.Fatalf("ReceiveMessage: %v", err)
	}
	var bodies []string
	for _, m := range out.Messages {
		bodies = append(bodies, aws.ToString(m.Body))
		if _, err := s.SQS.Client().ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
	}
	return bodies
}
func invocation(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// rowKey names a row by shape and event id, which is unique in these tests.
func rowKey(r redrive.Row) string { return string(r.Shape) + " " + r.EventID }

func byKey(rows []redrive.Row) map[string]redrive.Row {
	m := make(map[string]redrive.Row, len(rows))
	for _, r := range rows {
		m[rowKey(r)] = r
	}
	return m
}

// wantRow is what a row must show; empty fields are not checked.
type wantRow struct {
	outcome       redrive.Outcome
	keyARN        string
	originalError []string // substrings
	code          string
	reason        string // substring
	deleted       bool
}

func checkRows(t *testing.T, rows []redrive.Row, want map[string]wantRow) {
	t.Helper()
	got := byKey(rows)
	if len(rows) != len(want) || len(got) != len(want) {
		t.Errorf("rows: got %d (%d distinct), want %d: %+v", len(rows), len(got), len(want), rows)
	}
	for key, w := range want {
		r, ok := got[key]
		if !ok {
			t.Errorf("no row for %q; rows %+v", key, rows)
			continue
		}
		if r.Outcome != w.outcome || r.Deleted != w.deleted {
			t.Errorf("%s: got outcome %s deleted %v (code %s, reason %q), want %s deleted %v", key, r.Outcome, r.Deleted, r.ErrorCode, r.Reason, w.outcome, w.deleted)
		}
		if w.keyARN != "" && r.KeyARN != w.keyARN {
			t.Errorf("%s: got key %s, want %s", key, r.KeyARN, w.keyARN)
		}
		for _, sub := range w.originalError {
			if !strings.Contains(r.OriginalError, sub) {
				t.Errorf("%s: original error %q lacks %q", key, r.OriginalError, sub)
			}
		}
		if w.code != "" && r.ErrorCode != w.code {
			t.Errorf("%s: got error code %q, want %q", key, r.ErrorCode, w.code)
		}
		if w.reason != "" && !strings.Contains(r.Reason, w.reason) {
			t.Errorf("%s: reason %q lacks %q", key, r.Reason, w.reason)
		}
		if r.MessageID == "" {
			t.Errorf("%s: no message id", key)
		}
	}
}

const (
	evPending  = "11111111-aaaa-4bbb-8ccc-000000000001"
	evDenied   = "11111111-aaaa-4bbb-8ccc-000000000002"
	evNoPerm   = "11111111-aaaa-4bbb-8ccc-000000000003"
	rowText    = "handler-record "
	rowUnknown = "unrecognized "
)

// TestRedriveThreeShapes fills the queue with a message of each shape the
// way production does, then redrives it: dry, before the causes are fixed,
// and after.
func TestRedriveThreeShapes(t *testing.T) {
	s := startStack(t)
	ctx := context.Background()
	kmsEast := s.KMS.Client("us-east-1")

	// 1. The handler's own record: the key is pending deletion when the
	// function runs, so it dead-letters the event.
	pending := s.CreateKey(t, "us-east-1")
	if _, err := kmsEast.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(pending), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	if res, err := s.function.Handle(invocation(t), s.createKeyEvent(t, evPending, pending)); err != nil || res.Outcome != tagger.OutcomeDeadLettered {
		t.Fatalf("function on a key pending deletion: got %s, %v; want dead-lettered", res.Outcome, err)
	}

	// 2. Lambda's on-failure record: the function's role may not tag keys in
	// eu-west-1, the function fails every attempt and Lambda gives up.
	denied := s.CreateKey(t, "eu-west-1")
	s.KMS.Router().SetIntercept(localaws.FailFirst("eu-west-1", localaws.KMSTarget("TagResource"), -1, localaws.AccessDeniedFault))
	deniedEvent := s.createKeyEvent(t, evDenied, denied)
	res, handlerErr := s.redriver.Handle(invocation(t), deniedEvent)
	if handlerErr == nil || res.ErrorCode != "AccessDeniedException" {
		t.Fatalf("handler without a queue on a denied key: got %s %s, %v; want an AccessDeniedException error", res.Outcome, res.ErrorCode, handlerErr)
	}
	s.send(t, s.QueueURL, lambdaDestination(t, deniedEvent, handlerErr), nil)

	// 3. An event EventBridge could not deliver.
	undelivered := s.CreateKey(t, "us-east-1")
	s.sendUndelivered(t, s.QueueURL, s.createKeyEvent(t, evNoPerm, undelivered))

	// A record of an event that was not JSON: it can never succeed.
	if res, err := s.function.Handle(invocation(t), []byte(`{"version":`)); err != nil || res.Outcome != tagger.OutcomeDeadLettered {
		t.Fatalf("function on text: got %s, %v; want dead-lettered", res.Outcome, err)
	}
	// And a message of no known shape.
	s.send(t, s.QueueURL, "please tag key 1234", nil)
	s.waitCounts(t, s.QueueURL, 5, 0)

	t.Run("dry run touches nothing", func(t *testing.T) {
		calls := s.KMS.Router().Count(localaws.AnyRegion, localaws.AnyTarget)
		rep, err := redrive.Run(ctx, s.SQS.Client(), s.redriver, redrive.Options{QueueURL: s.QueueURL, DryRun: true, Logger: s.log, Confirmer: s.history})
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		checkRows(t, rep.Rows, map[string]wantRow{
			"handler-record " + evPending: {outcome: redrive.OutcomeWouldRedrive, keyARN: pending,
				originalError: []string{"KMSInvalidStateException", "pending deletion"}},
			"lambda-destination " + evDenied: {outcome: redrive.OutcomeWouldRedrive, keyARN: denied,
				originalError: []string{"RetriesExhausted after 3 invocations", "Unhandled", "AccessDeniedException"}},
			"eventbridge-dlq " + evNoPerm: {outcome: redrive.OutcomeWouldRedrive, keyARN: undelivered,
				originalError: []string{"NO_PERMISSIONS: Lambda function is not authorized", "0 retries"}},
			rowText:    {outcome: redrive.OutcomeStillFailing, code: "MalformedEvent", reason: "not JSON", originalError: []string{"MalformedEvent"}},
			rowUnknown: {outcome: redrive.OutcomeUnrecognized, reason: "the body is not JSON"},
		})
		if got := s.KMS.Router().Count(localaws.AnyRegion, localaws.AnyTarget); got != calls {
			t.Errorf("KMS calls during a dry run: got %d, want 0", got-calls)
		}
		want := redrive.Summary{Messages: 5, WouldRedrive: 3, StillFailing: 1, Unrecognized: 1, Remaining: 5}
		if rep.Summary != want {
			t.Errorf("summary: got %+v, want %+v", rep.Summary, want)
		}
		s.waitCounts(t, s.QueueURL, 5, 0)
	})

	t.Run("a message received twice is processed once", func(t *testing.T) {
		// With a 1s visibility and a 2s wait, the stand-in hands out every
		// message a second time within the run.
		rep, err := redrive.Run(ctx, s.SQS.Client(), s.redriver, redrive.Options{
			Confirmer: s.history,
			QueueURL:  s.QueueURL, DryRun: true, VisibilityTimeout: time.Second, WaitTime: 2 * time.Second, Logger: s.log,
		})
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if n := len(byKey(rep.Rows)); len(rep.Rows) != 5 || n != 5 {
			t.Errorf("rows: got %d (%d distinct), want 5", len(rep.Rows), n)
		}
		s.waitCounts(t, s.QueueURL, 5, 0)
	})

	t.Run("before the fixes only the undelivered event is tagged", func(t *testing.T) {
		rep, err := redrive.Run(ctx, s.SQS.Client(), s.redriver, redrive.Options{QueueURL: s.QueueURL, Logger: s.log, Confirmer: s.history})
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		checkRows(t, rep.Rows, map[string]wantRow{
			"handler-record " + evPending: {outcome: redrive.OutcomeStillFailing, keyARN: pending, code: "KMSInvalidStateException", reason: "pending deletion"},
			"lambda-destination " + evDenied: {outcome: redrive.OutcomeStillFailing, keyARN: denied, code: "AccessDeniedException",
				reason: "access denied (injected by localaws)"},
			"eventbridge-dlq " + evNoPerm: {outcome: redrive.OutcomeTagged, keyARN: undelivered, deleted: true},
			rowText:                       {outcome: redrive.OutcomeStillFailing, code: "MalformedEvent"},
			rowUnknown:                    {outcome: redrive.OutcomeUnrecognized},
		})
		want := redrive.Summary{Messages: 5, Tagged: 1, StillFailing: 3, Unrecognized: 1, Deleted: 1, Remaining: 4}
		if rep.Summary != want {
			t.Errorf("summary: got %+v, want %+v", rep.Summary, want)
		}
		s.wantGovernanceTags(t, undelivered, evNoPerm)
		// Four left, all visible again, and no second copy of a failure.
		s.waitCounts(t, s.QueueURL, 4, 0)
	})

	t.Run("after the fixes the rest is tagged, one message at a time first", func(t *testing.T) {
		// The key's deletion is cancelled. Real KMS leaves such a key
		// Disabled; local-kms enables it, so disable it as KMS would.
		if _, err := kmsEast.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(pending)}); err != nil {
			t.Fatal(err)
		}
		if _, err := kmsEast.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(pending)}); err != nil {
			t.Fatal(err)
		}
		desc, err := kmsEast.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(pending)})
		if err != nil {
			t.Fatal(err)
		}
		if desc.KeyMetadata.KeyState != kmstypes.KeyStateDisabled {
			t.Fatalf("key state after CancelKeyDeletion: got %s, want Disabled", desc.KeyMetadata.KeyState)
		}
		// The permission is fixed.
		s.KMS.Router().SetIntercept(nil)

		one, err := redrive.Run(ctx, s.SQS.Client(), s.redriver, redrive.Options{QueueURL: s.QueueURL, Max: 1, Logger: s.log, Confirmer: s.history})
		if err != nil {
			t.Fatalf("Run --max 1: %v", err)
		}
		if len(one.Rows) != 1 || one.Summary.Messages != 1 {
			t.Fatalf("--max 1: got %d rows (summary %+v), want 1", len(one.Rows), one.Summary)
		}
		rest, err := redrive.Run(ctx, s.SQS.Client(), s.redriver, redrive.Options{QueueURL: s.QueueURL, Logger: s.log, Confirmer: s.history})
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		wantRest := 4
		if one.Rows[0].Deleted {
			wantRest = 3
		}
		if len(rest.Rows) != wantRest {
			t.Errorf("second run: got %d rows, want %d after the first run's %+v", len(rest.Rows), wantRest, one.Rows[0])
		}
		// The last word on each message, across both runs.
		final := byKey(one.Rows)
		for k, r := range byKey(rest.Rows) {
			final[k] = r
		}
		var rows []redrive.Row
		for _, r := range final {
			rows = append(rows, r)
		}
		checkRows(t, rows, map[string]wantRow{
			"handler-record " + evPending:    {outcome: redrive.OutcomeTagged, keyARN: pending, deleted: true},
			"lambda-destination " + evDenied: {outcome: redrive.OutcomeTagged, keyARN: denied, deleted: true},
			rowText:                          {outcome: redrive.OutcomeStillFailing, code: "MalformedEvent"},
			rowUnknown:                       {outcome: redrive.OutcomeUnrecognized},
		})
		s.wantGovernanceTags(t, pending, evPending)
		s.wantGovernanceTags(t, denied, evDenied)
		s.waitCounts(t, s.QueueURL, 2, 0)
		left := s.bodies(t, s.QueueURL)
		if len(left) != 2 {
			t.Fatalf("messages left: got %d, want 2: %q", len(left), left)
		}
		for _, body := range left {
			if body != "please tag key 1234" && !strings.Contains(body, `"eventText":"{\"version\":"`) {
				t.Errorf("unexpected message left in the queue: %s", body)
			}
		}
	})
}

// cancelAfterFirst runs the real handler, and cancels the run once the
// first event is done: an operator's Ctrl-C at that moment.
type cancelAfterFirst struct {
	h      redrive.Handler
	cancel context.CancelFunc
	calls  int
}

func (c *cancelAfterFirst) Handle(ctx context.Context, raw json.RawMessage) (tagger.Result, error) {
	c.calls++
	res, err := c.h.Handle(ctx, raw)
	if c.calls == 1 {
		c.cancel()
	}
	return res, err
}

func TestRedriveInterruptedThenRunAgain(t *testing.T) {
	s := startStack(t)
	queueURL, err := s.SQS.CreateQueue(context.Background(), "interrupted")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for i := range 3 {
		id := "22222222-aaaa-4bbb-8ccc-00000000000" + strconv.Itoa(i)
		keys[id] = s.CreateKey(t, "us-east-1")
		s.sendUndelivered(t, queueURL, s.createKeyEvent(t, id, keys[id]))
	}
	s.waitCounts(t, queueURL, 3, 0)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := &cancelAfterFirst{h: s.redriver, cancel: cancel}
	rep, err := redrive.Run(ctx, s.SQS.Client(), h, redrive.Options{QueueURL: queueURL, Logger: s.log, Confirmer: s.history})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: got error %v, want context.Canceled", err)
	}
	if h.calls != 1 {
		t.Errorf("handler calls after the interrupt: got %d, want 1", h.calls)
	}
	want := redrive.Summary{Messages: 3, Tagged: 1, Interrupted: 2, Deleted: 1, Remaining: 2}
	if rep.Summary != want {
		t.Errorf("summary: got %+v, want %+v (rows %+v)", rep.Summary, want, rep.Rows)
	}
	// The first event's message is deleted although the run was cancelled
	// before the delete; the others are visible again at once.
	s.waitCounts(t, queueURL, 2, 0)

	again, err := redrive.Run(context.Background(), s.SQS.Client(), s.redriver, redrive.Options{QueueURL: queueURL, Logger: s.log, Confirmer: s.history})
	if err != nil {
		t.Fatalf("Run again: %v", err)
	}
	if again.Summary.Tagged != 2 || again.Summary.Remaining != 0 {
		t.Errorf("second run: got %+v, want 2 tagged and none left", again.Summary)
	}
	for id, key := range keys {
		s.wantGovernanceTags(t, key, id)
	}
	s.waitCounts(t, queueURL, 0, 0)
}

// TestRedrivePlantedMessage: anyone who can write to the queue puts a
// creation event there that CloudTrail never recorded, naming another
// creator for an existing key. The redrive does not act on it: the message
// stays, unconfirmed, and the key is untouched.
func TestRedrivePlantedMessage(t *testing.T) {
	s := startStack(t)
	key := s.CreateKey(t, "us-east-1")
	real := s.createKeyEvent(t, "33333333-cccc-4ddd-8eee-000000000001", key)
	if res, err := s.function.Handle(invocation(t), real); err != nil || res.Outcome != tagger.OutcomeTagged {
		t.Fatalf("real event: got %s, %v; want tagged", res.Outcome, err)
	}
	before := s.Tags(t, key)
	planted := strings.ReplaceAll(string(localawstest.CreateKeyEvent("33333333-cccc-4ddd-8eee-0000000000ff", key, nil)), userARN, "arn:aws:iam::111122223333:user/mallory")
	s.sendUndelivered(t, s.QueueURL, []byte(planted))

	rep, err := redrive.Run(context.Background(), s.SQS.Client(), s.redriver, redrive.Options{QueueURL: s.QueueURL, Logger: s.log, Confirmer: s.history})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 1 || rep.Rows[0].Outcome != redrive.OutcomeUnconfirmed || rep.Rows[0].Deleted || rep.Rows[0].ErrorCode != redrive.CodeUnconfirmedEvent {
		t.Fatalf("rows: got %+v, want one unconfirmed message left in the queue", rep.Rows)
	}
	if !strings.Contains(rep.Rows[0].Reason, "CloudTrail") {
		t.Errorf("reason: got %q, want it to say CloudTrail does not confirm the event", rep.Rows[0].Reason)
	}
	if got := s.Tags(t, key); !reflect.DeepEqual(got, before) {
		t.Errorf("tags: got %v, want them untouched %v", got, before)
	}
	if rep.Summary.Remaining != 1 || rep.Summary.Unconfirmed != 1 {
		t.Errorf("summary: got %+v, want the planted message unconfirmed and still in the queue", rep.Summary)
	}

	t.Run("without a CloudTrail history nothing is confirmed", func(t *testing.T) {
		rep, err := redrive.Run(context.Background(), s.SQS.Client(), s.redriver, redrive.Options{QueueURL: s.QueueURL, Logger: s.log})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Rows) != 1 || rep.Rows[0].Outcome != redrive.OutcomeUnconfirmed {
			t.Errorf("rows: got %+v, want one unconfirmed", rep.Rows)
		}
	})
}

func TestRedriveOptionsValidated(t *testing.T) {
	tests := []struct {
		name string
		opts redrive.Options
		want string
	}{
		{"no queue", redrive.Options{}, "no queue URL"},
		{"negative max", redrive.Options{QueueURL: "q", Max: -1}, "negative"},
		{"wait over SQS's limit", redrive.Options{QueueURL: "q", WaitTime: 21 * time.Second}, "wait time"},
		{"visibility over SQS's limit", redrive.Options{QueueURL: "q", VisibilityTimeout: 13 * time.Hour}, "visibility timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A nil queue: validation must fail before any call.
			_, err := redrive.Run(context.Background(), nil, nil, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one saying %q", err, tt.want)
			}
		})
	}
}
