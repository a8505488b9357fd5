package app_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/kms-autotagger/kms-autotagger/internal/app"
	"github.com/kms-autotagger/kms-autotagger/internal/config"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// stack is the real handler, wired by app.NewHandler from the environment,
// against local-kms in two regions behind the region router and the
// local-aws-sqs stand-in.
type stack struct {
	kms      *localaws.KMS
	sqs      *localaws.SQS
	queueURL string
	handler  *tagger.Handler
	logs     *strings.Builder
}

func startStack(t *testing.T, extraEnv map[string]string) *stack {
	t.Helper()
	ctx := context.Background()
	k, err := localaws.StartKMS(ctx, localaws.KMSOptions{Regions: []string{"us-east-1", "eu-west-1"}})
	if err != nil {
		t.Fatalf("starting local-kms: %v", err)
	}
	t.Cleanup(func() { _ = k.Close() })
	q, err := localaws.StartSQS(ctx, localaws.SQSOptions{})
	if err != nil {
		t.Fatalf("starting SQS stand-in: %v", err)
	}
	t.Cleanup(func() { _ = q.Close() })
	queueURL, err := q.CreateQueue(ctx, "autotagger-dlq")
	if err != nil {
		t.Fatal(err)
	}

	env := map[string]string{
		"AWS_ENDPOINT_URL_KMS":        k.URL(),
		"AWS_ENDPOINT_URL_SQS":        q.URL(),
		"AWS_REGION":                  "us-east-1",
		"AWS_ACCESS_KEY_ID":           "AKIDEXAMPLE",
		"AWS_SECRET_ACCESS_KEY":       "secret",
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"DEAD_LETTER_QUEUE_URL":       queueURL,
		"MAX_BACKOFF":                 "20ms",
		"DEAD_LETTER_RESERVE":         "1s",
		"STATIC_TAGS":                 "ManagedBy=kms-autotagger",
		// One handler here makes many calls in a row; the per-instance
		// limit (default 1 per second) is proven by the burst test.
		"TAG_RATE_LIMIT": "0",
	}
	for k, v := range extraEnv {
		env[k] = v
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	cfg, err := config.FromEnv(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	logs := &strings.Builder{}
	h, err := app.NewHandler(ctx, cfg, slog.New(slog.NewJSONHandler(&syncWriter{w: logs}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return &stack{kms: k, sqs: q, queueURL: queueURL, handler: h, logs: logs}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

func lambdacontextWithRequestID(ctx context.Context, id string) context.Context {
	return lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: id})
}

func (s *stack) createKey(t *testing.T, region string) string {
	t.Helper()
	out, err := s.kms.Client(region).CreateKey(context.Background(), &kms.CreateKeyInput{})
	if err != nil {
		t.Fatalf("CreateKey in %s: %v", region, err)
	}
	return aws.ToString(out.KeyMetadata.Arn)
}

func (s *stack) tags(t *testing.T, region, keyARN string) map[string]string {
	t.Helper()
	out, err := s.kms.Client(region).ListResourceTags(context.Background(), &kms.ListResourceTagsInput{KeyId: aws.String(keyARN)})
	if err != nil {
		t.Fatalf("ListResourceTags %s: %v", keyARN, err)
	}
	m := make(map[string]string)
	for _, tag := range out.Tags {
		m[aws.ToString(tag.TagKey)] = aws.ToString(tag.TagValue)
	}
	return m
}

// deadLetters drains the queue.
func (s *stack) deadLetters(t *testing.T) []sqsMessage {
	t.Helper()
	var msgs []sqsMessage
	for {
		out, err := s.sqs.Client().ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(s.queueURL), MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			t.Fatalf("ReceiveMessage: %v", err)
		}
		if len(out.Messages) == 0 {
			return msgs
		}
		for _, m := range out.Messages {
			var d tagger.DeadLetter
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &d); err != nil {
				t.Fatalf("dead letter is not a record: %v: %s", err, aws.ToString(m.Body))
			}
			attrs := map[string]string{}
			for k, v := range m.MessageAttributes {
				attrs[k] = aws.ToString(v.StringValue)
			}
			msgs = append(msgs, sqsMessage{record: d, attrs: attrs})
			if _, err := s.sqs.Client().DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(s.queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

type sqsMessage struct {
	record tagger.DeadLetter
	attrs  map[string]string
}

const (
	userARN   = "arn:aws:iam::111122223333:user/alice"
	eventTime = "2024-01-09T18:52:34Z"
)

// createKeyEvent is a CreateKey event as EventBridge delivers it, for the
// key keyARN, created by userARN with the request tags given.
func createKeyEvent(eventID, keyARN string, requestTags map[string]string) []byte {
	region := strings.Split(keyARN, ":")[3]
	keyID := keyARN[strings.LastIndex(keyARN, "/")+1:]
	var tags []map[string]string
	for k, v := range requestTags {
		tags = append(tags, map[string]string{"tagKey": k, "tagValue": v})
	}
	sort.Slice(tags, func(i, j int) bool { return tags[i]["tagKey"] < tags[j]["tagKey"] })
	ev := map[string]any{
		"version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": "AWS API Call via CloudTrail",
		"source": "aws.kms", "account": "111122223333", "time": eventTime, "region": region, "resources": []string{},
		"detail": map[string]any{
			"eventVersion": "1.09",
			"userIdentity": map[string]any{"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": userARN, "accountId": "111122223333", "userName": "alice"},
			"eventTime":    eventTime, "eventSource": "kms.amazonaws.com", "eventName": "CreateKey", "awsRegion": region,
			"sourceIPAddress": "192.0.2.10", "userAgent": "aws-cli/2.15.0",
			"requestParameters": map[string]any{"keySpec": "SYMMETRIC_DEFAULT", "keyUsage": "ENCRYPT_DECRYPT", "origin": "AWS_KMS", "tags": tags},
			"responseElements": map[string]any{"keyMetadata": map[string]any{
				"AWSAccountId": "111122223333", "keyId": keyID, "arn": keyARN, "creationDate": "Jan 9, 2024, 6:52:34 PM",
				"enabled": true, "keyUsage": "ENCRYPT_DECRYPT", "keyState": "Enabled", "origin": "AWS_KMS", "keyManager": "CUSTOMER",
				"keySpec": "SYMMETRIC_DEFAULT", "multiRegion": false,
			}},
			"requestID": "e0b4ad8e-6a1f-4a55-9b1b-7b0c1c8e9f10", "eventID": eventID, "readOnly": false,
			"eventType": "AwsApiCall", "managementEvent": true, "recipientAccountId": "111122223333", "eventCategory": "Management",
		},
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return b
}

// replicateKeyEvent is a ReplicateKey event: logged in the primary's region,
// the replica in replicaARN's region.
func replicateKeyEvent(eventID, primaryARN, replicaARN string) []byte {
	primaryRegion := strings.Split(primaryARN, ":")[3]
	replicaRegion := strings.Split(replicaARN, ":")[3]
	ev := map[string]any{
		"version": "0", "id": "0c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f", "detail-type": "AWS API Call via CloudTrail",
		"source": "aws.kms", "account": "111122223333", "time": eventTime, "region": primaryRegion, "resources": []string{},
		"detail": map[string]any{
			"eventVersion": "1.09",
			"userIdentity": map[string]any{"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": userARN, "accountId": "111122223333", "userName": "alice"},
			"eventTime":    eventTime, "eventSource": "kms.amazonaws.com", "eventName": "ReplicateKey", "awsRegion": primaryRegion,
			"requestParameters": map[string]any{"keyId": primaryARN, "replicaRegion": replicaRegion},
			"responseElements": map[string]any{"replicaKeyMetadata": map[string]any{
				"AWSAccountId": "111122223333", "keyId": replicaARN[strings.LastIndex(replicaARN, "/")+1:], "arn": replicaARN,
				"keyManager": "CUSTOMER", "keyState": "Enabled", "origin": "AWS_KMS", "multiRegion": true,
				"multiRegionConfiguration": map[string]any{"multiRegionKeyType": "REPLICA", "primaryKey": map[string]any{"arn": primaryARN, "region": primaryRegion}},
			}},
			"eventID": eventID, "readOnly": false, "eventType": "AwsApiCall", "managementEvent": true,
			"recipientAccountId": "111122223333", "eventCategory": "Management",
		},
	}
	b, _ := json.Marshal(ev)
	return b
}

func lambdaContext(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

func TestTagsNewKey(t *testing.T) {
	s := startStack(t, nil)
	key := s.createKey(t, "us-east-1")
	res, err := s.handler.Handle(lambdaContext(t, 10*time.Second), createKeyEvent("11111111-aaaa-4bbb-8ccc-000000000001", key, map[string]string{"Project": "apollo"}))
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	if res.Outcome != tagger.OutcomeTagged || res.KeyARN != key || res.Attempts != 1 {
		t.Errorf("got outcome %s key %s attempts %d, want tagged %s 1", res.Outcome, res.KeyARN, res.Attempts, key)
	}
	want := map[string]string{
		"CreatedBy": userARN, "CreatedAt": eventTime, "CreationEventId": "11111111-aaaa-4bbb-8ccc-000000000001",
		"ManagedBy": "kms-autotagger",
	}
	// Project was passed in the CreateKey request; local-kms has no record of
	// it since the test made the key without it, so it must not appear.
	if got := s.tags(t, "us-east-1", key); !reflect.DeepEqual(got, want) {
		t.Errorf("tags on key: got %v, want %v", got, want)
	}
	if n := s.kms.Router().Count("us-east-1", localaws.KMSTarget("TagResource")); n != 1 {
		t.Errorf("TagResource calls: got %d, want exactly 1 on the happy path", n)
	}
	for _, line := range strings.Split(strings.TrimSpace(s.logs.String()), "\n") {
		for _, field := range []string{`"event_id":"11111111-aaaa-4bbb-8ccc-000000000001"`, `"event_name":"CreateKey"`, `"key_arn":"` + key + `"`} {
			if !strings.Contains(line, field) {
				t.Errorf("log line %s lacks %s", line, field)
			}
		}
	}
}

func TestSpoofedGovernanceTagIsCorrectedOthersUntouched(t *testing.T) {
	s := startStack(t, nil)
	key := s.createKey(t, "us-east-1")
	// What CreateKey with Tags would have left on the key.
	if _, err := s.kms.Client("us-east-1").TagResource(context.Background(), &kms.TagResourceInput{KeyId: aws.String(key),
		Tags: kmsTags(map[string]string{"CreatedBy": "arn:aws:iam::111122223333:user/someone-else", "Project": "apollo"})}); err != nil {
		t.Fatal(err)
	}
	res, err := s.handler.Handle(lambdaContext(t, 10*time.Second), createKeyEvent("11111111-aaaa-4bbb-8ccc-000000000002", key,
		map[string]string{"CreatedBy": "arn:aws:iam::111122223333:user/someone-else", "Project": "apollo"}))
	if err != nil || res.Outcome != tagger.OutcomeTagged {
		t.Fatalf("got %s, %v; want tagged", res.Outcome, err)
	}
	got := s.tags(t, "us-east-1", key)
	if got["CreatedBy"] != userARN || got["Project"] != "apollo" {
		t.Errorf("got CreatedBy=%q Project=%q, want %q and the creator's apollo", got["CreatedBy"], got["Project"], userARN)
	}
	if len(res.Overridden) != 1 || res.Overridden[0].Key != "CreatedBy" {
		t.Errorf("overridden: got %v, want the spoofed CreatedBy", res.Overridden)
	}
}

func kmsTags(m map[string]string) []kmstypes.Tag {
	var tags []kmstypes.Tag
	for k, v := range m {
		tags = append(tags, kmstypes.Tag{TagKey: aws.String(k), TagValue: aws.String(v)})
	}
	return tags
}

func TestReplicaTaggedInItsOwnRegion(t *testing.T) {
	s := startStack(t, nil)
	primary := s.createKey(t, "us-east-1")
	replica := s.createKey(t, "eu-west-1") // local-kms has no ReplicateKey: a key in the replica region stands in
	res, err := s.handler.Handle(lambdaContext(t, 10*time.Second), replicateKeyEvent("11111111-aaaa-4bbb-8ccc-000000000003", primary, replica))
	if err != nil || res.Outcome != tagger.OutcomeTagged {
		t.Fatalf("got %s, %v; want tagged", res.Outcome, err)
	}
	if res.Region != "eu-west-1" {
		t.Errorf("region: got %s, want eu-west-1", res.Region)
	}
	got := s.tags(t, "eu-west-1", replica)
	if got["ReplicaOf"] != primary || got["CreatedBy"] != userARN {
		t.Errorf("replica tags: got %v, want ReplicaOf=%s CreatedBy=%s", got, primary, userARN)
	}
	if n := len(s.tags(t, "us-east-1", primary)); n != 0 {
		t.Errorf("primary got %d tags, want none", n)
	}
	if n := s.kms.Router().Count("us-east-1", localaws.KMSTarget("TagResource")); n != 0 {
		t.Errorf("TagResource calls in the event's region: got %d, want 0", n)
	}
}

func TestPendingDeletionIsDeadLettered(t *testing.T) {
	s := startStack(t, nil)
	key := s.createKey(t, "us-east-1")
	if _, err := s.kms.Client("us-east-1").ScheduleKeyDeletion(context.Background(), &kms.ScheduleKeyDeletionInput{KeyId: aws.String(key), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	event := createKeyEvent("11111111-aaaa-4bbb-8ccc-000000000004", key, nil)
	ctx := lambdacontextWithRequestID(lambdaContext(t, 10*time.Second), "req-123")
	res, err := s.handler.Handle(ctx, event)
	if err != nil {
		t.Fatalf("Handle: %v, want success after dead-lettering", err)
	}
	if res.Outcome != tagger.OutcomeDeadLettered || res.ErrorCode != "KMSInvalidStateException" {
		t.Errorf("got %s %s, want dead-lettered KMSInvalidStateException", res.Outcome, res.ErrorCode)
	}
	msgs := s.deadLetters(t)
	if len(msgs) != 1 {
		t.Fatalf("dead letters: got %d, want 1", len(msgs))
	}
	d := msgs[0].record
	if d.Version != 1 || d.Kind != tagger.DeadLetterKind || d.KeyARN != key || d.Region != "us-east-1" || d.EventID != "11111111-aaaa-4bbb-8ccc-000000000004" ||
		d.Error.Code != "KMSInvalidStateException" || d.Error.Class != "permanent" || d.Attempts != 1 || d.RequestID != "req-123" || len(d.Tags) != 4 {
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
	if got := msgs[0].attrs["ErrorCode"]; got != "KMSInvalidStateException" {
		t.Errorf("ErrorCode attribute: got %q, want KMSInvalidStateException", got)
	}
}

func TestInternalErrorsRetriedThenTagged(t *testing.T) {
	s := startStack(t, nil)
	key := s.createKey(t, "us-east-1")
	s.kms.Router().SetIntercept(localaws.FailFirst("us-east-1", localaws.KMSTarget("TagResource"), 2, localaws.InternalFault))
	res, err := s.handler.Handle(lambdaContext(t, 10*time.Second), createKeyEvent("11111111-aaaa-4bbb-8ccc-000000000005", key, nil))
	if err != nil || res.Outcome != tagger.OutcomeTagged {
		t.Fatalf("got %s, %v; want tagged", res.Outcome, err)
	}
	if res.Attempts != 3 {
		t.Errorf("attempts: got %d, want 3", res.Attempts)
	}
	if got := s.tags(t, "us-east-1", key)["CreatedBy"]; got != userARN {
		t.Errorf("CreatedBy: got %q, want %q", got, userARN)
	}
}

func TestInternalErrorsForeverReturnErrorInsideDeadline(t *testing.T) {
	s := startStack(t, map[string]string{"MAX_ATTEMPTS": "1000", "MAX_BACKOFF": "200ms", "DEAD_LETTER_RESERVE": "1s"})
	key := s.createKey(t, "us-east-1")
	s.kms.Router().SetIntercept(localaws.FailFirst("us-east-1", localaws.KMSTarget("TagResource"), -1, localaws.InternalFault))
	const timeout = 4 * time.Second
	ctx := lambdaContext(t, timeout)
	deadline, _ := ctx.Deadline()
	res, err := s.handler.Handle(ctx, createKeyEvent("11111111-aaaa-4bbb-8ccc-000000000006", key, nil))
	if err == nil {
		t.Fatalf("got outcome %s and no error, want an error for Lambda to retry", res.Outcome)
	}
	if time.Now().After(deadline) {
		t.Errorf("handler returned %v after the invocation deadline", time.Since(deadline))
	}
	if res.Outcome != tagger.OutcomeError || res.Attempts < 2 {
		t.Errorf("got outcome %s after %d attempts, want error after several", res.Outcome, res.Attempts)
	}
	if msgs := s.deadLetters(t); len(msgs) != 0 {
		t.Errorf("dead letters: got %d, want 0 (transient failures are Lambda's to retry)", len(msgs))
	}
}

func TestDeadLetterQueueDownReturnsError(t *testing.T) {
	s := startStack(t, nil)
	key := s.createKey(t, "us-east-1")
	s.kms.Router().SetIntercept(localaws.FailFirst(localaws.AnyRegion, localaws.AnyTarget, -1, localaws.AccessDeniedFault))
	if err := s.sqs.Stop(); err != nil {
		t.Fatal(err)
	}
	res, err := s.handler.Handle(lambdaContext(t, 10*time.Second), createKeyEvent("11111111-aaaa-4bbb-8ccc-000000000007", key, nil))
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
	if n := s.kms.Router().Count(localaws.AnyRegion, localaws.AnyTarget); n != 0 {
		t.Errorf("KMS calls: got %d, want 0", n)
	}
	msgs := s.deadLetters(t)
	if len(msgs) != 2 {
		t.Fatalf("dead letters: got %d, want 2", len(msgs))
	}
	for _, m := range msgs {
		if m.record.Error.Code != "MalformedEvent" {
			t.Errorf("code: got %s, want MalformedEvent", m.record.Error.Code)
		}
		if m.record.EventText == "" && m.record.Event == nil {
			t.Errorf("record keeps neither the event nor its text")
		}
	}
}
