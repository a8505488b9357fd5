package app_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/kms-autotagger/kms-autotagger/internal/app"
	"github.com/kms-autotagger/kms-autotagger/internal/config"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws/localawstest"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// stack is the real handler, wired by app.NewHandler from the environment,
// against local-kms in two regions behind the region router and the
// SQS stand-in (moto).
type stack struct {
	*localawstest.Stack
	handler *tagger.Handler
	logs    *localawstest.SyncBuffer
}

func startStack(t *testing.T, extraEnv map[string]string) *stack {
	t.Helper()
	env := map[string]string{
		"MAX_BACKOFF":         "20ms",
		"DEAD_LETTER_RESERVE": "1s",
		"STATIC_TAGS":         "ManagedBy=kms-autotagger",
		// One handler here makes many calls in a row; the per-instance
		// limit (default 1 per second) is proven by the burst test.
		"TAG_RATE_LIMIT": "0",
	}
	maps.Copy(env, extraEnv)
	st := localawstest.Start(t, localawstest.Options{Env: env})
	cfg, err := config.FromEnv(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	logs := &localawstest.SyncBuffer{}
	h, err := app.NewHandler(cfg, localawstest.FunctionConfig(t), slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return &stack{Stack: st, handler: h, logs: logs}
}

func lambdacontextWithRequestID(ctx context.Context, id string) context.Context {
	return lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: id})
}

const userARN = localawstest.UserARN

var eventTime = localawstest.EventTime

func lambdaContext(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

func TestTagsNewKey(t *testing.T) {
	s := startStack(t, nil)
	key := s.CreateKey(t, "us-east-1")
	res, err := s.handler.Handle(lambdaContext(t, 10*time.Second), localawstest.CreateKeyEvent("11111111-aaaa-4bbb-8ccc-000000000001", key, map[string]string{"Project": "apollo"}))
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	if res.Outcome != tagger.OutcomeTagged || res.KeyARN != key || res.Attempts != 1 {
		t.Errorf("got outcome %s key %s attempts %d, want tagged %s 1", res.Outcome, res.KeyARN, res.Attempts, key)
	}
	want := map[string]string{
		"CreatedBy": userARN, "CreatedAt": eventTime, "CreationEventId": "11111111-aaaa-4bbb-8ccc-000000000001",
		"CreatedByUser": "alice", "CreatedByEvidence": "event", "ManagedBy": "kms-autotagger",
	}
	// Project was passed in the CreateKey request; local-kms has no record of
	// it since the test made the key without it, so it must not appear.
	if got := s.Tags(t, key); !reflect.DeepEqual(got, want) {
		t.Errorf("tags on key: got %v, want %v", got, want)
	}
	if n := s.KMS.Router().Count("us-east-1", localaws.KMSTarget("TagResource")); n != 1 {
		t.Errorf("TagResource calls: got %d, want exactly 1 on the happy path", n)
	}
	for _, line := range strings.Split(strings.TrimSpace(s.logs.String()), "\n") {
		for _, field := range []string{`"event_id":"11111111-aaaa-4bbb-8ccc-000000000001"`, `"event_name":"CreateKey"`, `"key_arn":"` + key + `"`} {
			if !strings.Contains(line, field) {
				t.Errorf("log line %s lacks %s", line, field)
			}
		}
	}
	// The line that ends the event names the tags written, key to value.
	lines := strings.Split(strings.TrimSpace(s.logs.String()), "\n")
	var last struct {
		Outcome string            `json:"outcome"`
		Tags    map[string]string `json:"tags"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatalf("last log line: %v", err)
	}
	if last.Outcome != "tagged" || !reflect.DeepEqual(last.Tags, want) {
		t.Errorf("last log line: got outcome %q tags %v, want tagged %v", last.Outcome, last.Tags, want)
	}
}

func TestSpoofedGovernanceTagIsCorrectedOthersUntouched(t *testing.T) {
	s := startStack(t, nil)
	key := s.CreateKey(t, "us-east-1")
	// What CreateKey with Tags would have left on the key.
	s.TagKey(t, key, map[string]string{"CreatedBy": "arn:aws:iam::111122223333:user/someone-else", "Project": "apollo"})
	res, err := s.handler.Handle(lambdaContext(t, 10*time.Second), localawstest.CreateKeyEvent("11111111-aaaa-4bbb-8ccc-000000000002", key,
		map[string]string{"CreatedBy": "arn:aws:iam::111122223333:user/someone-else", "Project": "apollo"}))
	if err != nil || res.Outcome != tagger.OutcomeTagged {
		t.Fatalf("got %s, %v; want tagged", res.Outcome, err)
	}
	got := s.Tags(t, key)
	if got["CreatedBy"] != userARN || got["Project"] != "apollo" {
		t.Errorf("got CreatedBy=%q Project=%q, want %q and the creator's apollo", got["CreatedBy"], got["Project"], userARN)
	}
	if len(res.Overridden) != 1 || res.Overridden[0].Key != "CreatedBy" {
		t.Errorf("overridden: got %v, want the spoofed CreatedBy", res.Overridden)
	}
}

func TestReplicaTaggedInItsOwnRegion(t *testing.T) {
	s := startStack(t, nil)
	primary := s.CreateKey(t, "us-east-1")
	replica := s.CreateKey(t, "eu-west-1") // local-kms has no ReplicateKey: a key in the replica region stands in
	s.KMS.SetKeyFacts(replica, localaws.KeyFacts{PrimaryARN: primary})
	res, err := s.handler.Handle(lambdaContext(t, 10*time.Second), localawstest.ReplicateKeyEvent("11111111-aaaa-4bbb-8ccc-000000000003", primary, replica))
	if err != nil || res.Outcome != tagger.OutcomeTagged {
		t.Fatalf("got %s, %v; want tagged", res.Outcome, err)
	}
	if res.Region != "eu-west-1" {
		t.Errorf("region: got %s, want eu-west-1", res.Region)
	}
	got := s.Tags(t, replica)
	if got["ReplicaOf"] != primary || got["CreatedBy"] != userARN {
		t.Errorf("replica tags: got %v, want ReplicaOf=%s CreatedBy=%s", got, primary, userARN)
	}
	if n := len(s.Tags(t, primary)); n != 0 {
		t.Errorf("primary got %d tags, want none", n)
	}
	if n := s.KMS.Router().Count("us-east-1", localaws.KMSTarget("TagResource")); n != 0 {
		t.Errorf("TagResource calls in the event's region: got %d, want 0", n)
	}
}

func TestPendingDeletionIsDeadLettered(t *testing.T) {
	s := startStack(t, nil)
	key := s.CreateKey(t, "us-east-1")
	if _, err := s.KMS.Client("us-east-1").ScheduleKeyDeletion(context.Background(), &kms.ScheduleKeyDeletionInput{KeyId: aws.String(key), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	event := localawstest.CreateKeyEvent("11111111-aaaa-4bbb-8ccc-000000000004", key, nil)
	ctx := lambdacontextWithRequestID(lambdaContext(t, 10*time.Second), "req-123")
	res, err := s.handler.Handle(ctx, event)
	if err != nil {
		t.Fatalf("Handle: %v, want success after dead-lettering", err)
	}
	if res.Outcome != tagger.OutcomeDeadLettered || res.ErrorCode != "KMSInvalidStateException" {
		t.Errorf("got %s %s, want dead-lettered KMSInvalidStateException", res.Outcome, res.ErrorCode)
	}
	msgs := s.DeadLetters(t)
	if len(msgs) != 1 {
		t.Fatalf("dead letters: got %d, want 1", len(msgs))
	}
	d := msgs[0].Record
	if d.Version != 1 || d.Kind != tagger.DeadLetterKind || d.KeyARN != key || d.Region != "us-east-1" || d.EventID != "11111111-aaaa-4bbb-8ccc-000000000004" ||
		d.Error.Code != "KMSInvalidStateException" || d.Error.Class != "permanent" || d.Attempts != 1 || d.RequestID != "req-123" || len(d.Tags) != 6 {
		t.Errorf("record: got %+v", d)
	}
	if !strings.Contains(d.Error.Message, "pending deletion") {
		t.Errorf("error message: got %q, want it to say pending deletion", d.Error.Message)
	}
	var orig, back any
	_ = json.Unmarshal(event, &orig)
	_ = json.Unmarshal(d.Event, &back)
	if !reflect.DeepEqual(orig, back) {
		t.Errorf("record event differs from the original event")
	}
	if got := msgs[0].Attributes["ErrorCode"]; got != "KMSInvalidStateException" {
		t.Errorf("ErrorCode attribute: got %q, want KMSInvalidStateException", got)
	}
}

func TestInternalErrorsRetriedThenTagged(t *testing.T) {
	s := startStack(t, nil)
	key := s.CreateKey(t, "us-east-1")
	s.KMS.Router().SetIntercept(localaws.FailFirst("us-east-1", localaws.KMSTarget("TagResource"), 2, localaws.InternalFault))
	res, err := s.handler.Handle(lambdaContext(t, 10*time.Second), localawstest.CreateKeyEvent("11111111-aaaa-4bbb-8ccc-000000000005", key, nil))
	if err != nil || res.Outcome != tagger.OutcomeTagged {
		t.Fatalf("got %s, %v; want tagged", res.Outcome, err)
	}
	if res.Attempts != 3 {
		t.Errorf("attempts: got %d, want 3", res.Attempts)
	}
	if got := s.Tags(t, key)["CreatedBy"]; got != userARN {
		t.Errorf("CreatedBy: got %q, want %q", got, userARN)
	}
}

func TestInternalErrorsForeverReturnErrorInsideDeadline(t *testing.T) {
	s := startStack(t, map[string]string{"MAX_ATTEMPTS": "1000", "MAX_BACKOFF": "200ms", "DEAD_LETTER_RESERVE": "1s"})
	key := s.CreateKey(t, "us-east-1")
	s.KMS.Router().SetIntercept(localaws.FailFirst("us-east-1", localaws.KMSTarget("TagResource"), -1, localaws.InternalFault))
	const timeout = 4 * time.Second
	ctx := lambdaContext(t, timeout)
	deadline, _ := ctx.Deadline()
	res, err := s.handler.Handle(ctx, localawstest.CreateKeyEvent("11111111-aaaa-4bbb-8ccc-000000000006", key, nil))
	if err == nil {
		t.Fatalf("got outcome %s and no error, want an error for Lambda to retry", res.Outcome)
	}
	if time.Now().After(deadline) {
		t.Errorf("handler returned %v after the invocation deadline", time.Since(deadline))
	}
	if res.Outcome != tagger.OutcomeError || res.Attempts < 2 {
		t.Errorf("got outcome %s after %d attempts, want error after several", res.Outcome, res.Attempts)
	}
	if msgs := s.DeadLetters(t); len(msgs) != 0 {
		t.Errorf("dead letters: got %d, want 0 (transient failures are Lambda's to retry)", len(msgs))
	}
}

func TestDeadLetterQueueDownReturnsError(t *testing.T) {
	s := startStack(t, nil)
	key := s.CreateKey(t, "us-east-1")
	s.KMS.Router().SetIntercept(localaws.FailFirst(localaws.AnyRegion, localaws.AnyTarget, -1, localaws.AccessDeniedFault))
	if err := s.SQS.Stop(); err != nil {
		t.Fatal(err)
	}
	res, err := s.handler.Handle(lambdaContext(t, 10*time.Second), localawstest.CreateKeyEvent("11111111-aaaa-4bbb-8ccc-000000000007", key, nil))
	if err == nil || res.Outcome != tagger.OutcomeError {
		t.Fatalf("got %s, %v; want an error: the event must not be lost", res.Outcome, err)
	}
	if !strings.Contains(err.Error(), "could not be dead-lettered") || !strings.Contains(err.Error(), "AccessDeniedException") {
		t.Errorf("error %q should say the dead letter failed and why the event failed", err)
	}
}

func TestNoKMSCallForSkippedAndMalformedEvents(t *testing.T) {
	s := startStack(t, nil)
	tests := []struct {
		name        string
		event       string
		wantOutcome tagger.Outcome
	}{
		{"failed call", `{"version":"0","id":"1","detail-type":"AWS API Call via CloudTrail","source":"aws.kms","account":"111122223333","time":"2024-01-09T18:52:34Z","region":"us-east-1","detail":{"eventVersion":"1.09","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice"},"eventTime":"2024-01-09T18:52:34Z","eventSource":"kms.amazonaws.com","eventName":"CreateKey","awsRegion":"us-east-1","errorCode":"AccessDenied","errorMessage":"no","requestParameters":null,"responseElements":null,"eventID":"e1"}}`, tagger.OutcomeSkipped},
		{"unrelated", `{"version":"0","id":"2","detail-type":"AWS API Call via CloudTrail","source":"aws.kms","account":"111122223333","time":"2024-01-09T18:52:34Z","region":"us-east-1","detail":{"eventSource":"kms.amazonaws.com","eventName":"EnableKeyRotation","eventID":"e2"}}`, tagger.OutcomeSkipped},
		{"other source", `{"version":"0","id":"3","detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","detail":{}}`, tagger.OutcomeSkipped},
		{"malformed", `{"version":"0","id":"4","detail-type":"AWS API Call via CloudTrail","source":"aws.kms","account":"111122223333","time":"2024-01-09T18:52:34Z","region":"us-east-1","detail":{"eventVersion":"1.09","userIdentity":{"type":"IAMUser"},"eventTime":"2024-01-09T18:52:34Z","eventSource":"kms.amazonaws.com","eventName":"CreateKey","awsRegion":"us-east-1","responseElements":{"keyMetadata":{}},"eventID":"e4"}}`, tagger.OutcomeDeadLettered},
		{"not json", `{"version":`, tagger.OutcomeDeadLettered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := s.handler.Handle(lambdaContext(t, 10*time.Second), []byte(tt.event))
			if err != nil || res.Outcome != tt.wantOutcome {
				t.Errorf("got %s, %v; want %s", res.Outcome, err, tt.wantOutcome)
			}
			if tt.wantOutcome == tagger.OutcomeSkipped && res.Reason == "" {
				t.Errorf("skipped with no reason")
			}
		})
	}
	if n := s.KMS.Router().Count(localaws.AnyRegion, localaws.AnyTarget); n != 0 {
		t.Errorf("KMS calls: got %d, want 0", n)
	}
	msgs := s.DeadLetters(t)
	if len(msgs) != 2 {
		t.Fatalf("dead letters: got %d, want 2", len(msgs))
	}
	for _, m := range msgs {
		if m.Record.Error.Code != "MalformedEvent" {
			t.Errorf("code: got %s, want MalformedEvent", m.Record.Error.Code)
		}
		if m.Record.EventText == "" && m.Record.Event == nil {
			t.Errorf("record keeps neither the event nor its text")
		}
	}
}
