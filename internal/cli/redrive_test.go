package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/kms-autotagger/kms-autotagger/internal/cli"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws/localawstest"
	"github.com/kms-autotagger/kms-autotagger/internal/redrive"
)

const (
	redrivePendingKey = "arn:aws:kms:us-east-1:111122223333:key/8c4babd3-5fba-4e9f-811e-43d105f9a340"
	redriveReplicaKey = "arn:aws:kms:eu-west-1:111122223333:key/mrk-9db9f3010c164289b78e44d2c67c2b81"
	redrivePendingID  = "ef31b771-4331-40dc-9a5c-9bc1c97bc691" // eventID of events/createkey_iamuser.json
	redriveReplicaID  = "9fd26594-0292-4ba6-8713-78c1708d0c49" // eventID of events/replicatekey.json
)

func runRedriveCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = cli.Run(context.Background(), append([]string{"redrive"}, args...), cli.IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut, Getenv: os.Getenv})
	return code, out.String(), errOut.String()
}

// redriveQueueCounts returns the visible and in-flight messages once they
// are want, or what they are after a few seconds.
func redriveQueueCounts(t *testing.T, q *localaws.SQS, queueURL string, want [2]int) [2]int {
	t.Helper()
	var got [2]int
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out, err := q.Client().GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(queueURL),
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
		if err != nil {
			t.Fatalf("GetQueueAttributes: %v", err)
		}
		got[0], _ = strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)])
		got[1], _ = strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
		if got == want || time.Now().After(deadline) {
			return got
		}
	}
}

// TestRedriveCommand runs `autotagger redrive` wired only by the environment
// (AWS_ENDPOINT_URL_KMS, AWS_ENDPOINT_URL_SQS) against the stand-ins, with
// DEAD_LETTER_QUEUE_URL naming the very queue it reads: a failure must stay
// the one message it was, not come back as a second.
func TestRedriveCommand(t *testing.T) {
	ctx := context.Background()
	s := localawstest.Start(t, localawstest.Options{
		Seeds: map[string][]localaws.SeedKey{
			"us-east-1": {{KeyID: "8c4babd3-5fba-4e9f-811e-43d105f9a340"}},
			"eu-west-1": {{KeyID: "mrk-9db9f3010c164289b78e44d2c67c2b81"}},
		},
		// The redrive confirms each creation event in CloudTrail's history.
		CloudTrail: &localaws.CloudTrailOptions{},
		Env:        map[string]string{"MAX_BACKOFF": "10ms", "TAG_RATE_LIMIT": "0"},
	})
	k, q, queueURL := s.KMS, s.SQS, s.QueueURL
	if _, err := k.Client("us-east-1").ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(redrivePendingKey), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	// Two events EventBridge could not deliver, and a stray message.
	attrs := map[string]sqstypes.MessageAttributeValue{
		redrive.AttrEventBridgeErrorCode: {DataType: aws.String("String"), StringValue: aws.String("NO_PERMISSIONS")},
		redrive.AttrEventBridgeErrorMsg:  {DataType: aws.String("String"), StringValue: aws.String("not authorized to invoke the function")},
		redrive.AttrEventBridgeRuleARN:   {DataType: aws.String("String"), StringValue: aws.String("arn:aws:events:us-east-1:111122223333:rule/kms-autotagger")},
	}
	for _, name := range []string{"createkey_iamuser.json", "replicatekey.json"} {
		body, err := os.ReadFile(filepath.Join("..", "..", "events", name))
		if err != nil {
			t.Fatal(err)
		}
		body = localawstest.Fresh(t, body)
		if _, err := q.Client().SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(string(body)), MessageAttributes: attrs}); err != nil {
			t.Fatal(err)
		}
		s.Recorded(t, body) // real calls: the keys and CloudTrail's history hold them
	}
	if _, err := q.Client().SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(`{"hello":"world"}`)}); err != nil {
		t.Fatal(err)
	}
	if got := redriveQueueCounts(t, q, queueURL, [2]int{3, 0}); got != [2]int{3, 0} {
		t.Fatalf("queue before: got %v visible/in flight, want 3/0", got)
	}

	t.Run("dry run prints the table and changes nothing", func(t *testing.T) {
		// No --queue-url: DEAD_LETTER_QUEUE_URL names the queue.
		calls := k.Router().Count(localaws.AnyRegion, localaws.AnyTarget)
		code, stdout, stderr := runRedriveCLI(t, "--dry-run")
		if code != cli.ExitOK {
			t.Fatalf("exit code: got %d, want 0\nstderr: %s", code, stderr)
		}
		for _, want := range []string{"MESSAGE", "SHAPE", "ORIGINAL ERROR", "eventbridge-dlq", "would-redrive", redrivePendingID, redriveReplicaKey,
			"NO_PERMISSIONS: not authorized", "unrecognized", "Dry run, 3 messages: 2 would be redriven, 1 unrecognized. Nothing was changed."} {
			if !strings.Contains(stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, stdout)
			}
		}
		if n := k.Router().Count(localaws.AnyRegion, localaws.AnyTarget) - calls; n != 0 {
			t.Errorf("KMS calls in a dry run: got %d, want 0", n)
		}
		if got := redriveQueueCounts(t, q, queueURL, [2]int{3, 0}); got != [2]int{3, 0} {
			t.Errorf("queue after a dry run: got %v visible/in flight, want 3/0", got)
		}
	})

	t.Run("redrive tags what it can and keeps the rest", func(t *testing.T) {
		code, stdout, stderr := runRedriveCLI(t, "--queue-url", queueURL, "--output", "json")
		if code != cli.ExitFailure {
			t.Errorf("exit code: got %d, want 1 (messages stay)\nstderr: %s", code, stderr)
		}
		var rep redrive.Report
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatalf("stdout is not the JSON report: %v\n%s", err, stdout)
		}
		want := redrive.Summary{Messages: 3, Tagged: 1, StillFailing: 1, Unrecognized: 1, Deleted: 1, Remaining: 2}
		if rep.Summary != want || rep.QueueURL != queueURL || rep.DryRun {
			t.Errorf("report: got %+v (queue %s, dry %v), want %+v", rep.Summary, rep.QueueURL, rep.DryRun, want)
		}
		for _, row := range rep.Rows {
			switch row.EventID {
			case redriveReplicaID:
				if row.Outcome != redrive.OutcomeTagged || !row.Deleted || row.KeyARN != redriveReplicaKey {
					t.Errorf("replica row: got %+v, want tagged and deleted", row)
				}
			case redrivePendingID:
				if row.Outcome != redrive.OutcomeStillFailing || row.Deleted || row.ErrorCode != "KMSInvalidStateException" || !strings.Contains(row.Reason, "pending deletion") {
					t.Errorf("pending row: got %+v, want still-failing KMSInvalidStateException", row)
				}
			}
		}
		tags := s.Tags(t, redriveReplicaKey)
		if tags["CreationEventId"] != redriveReplicaID || tags["ReplicaOf"] == "" {
			t.Errorf("replica tags: got %v, want CreationEventId %s and ReplicaOf", tags, redriveReplicaID)
		}
		// Two messages left, visible: the handler wrote no dead letter of
		// its own for the key still pending deletion.
		if got := redriveQueueCounts(t, q, queueURL, [2]int{2, 0}); got != [2]int{2, 0} {
			t.Errorf("queue after the redrive: got %v visible/in flight, want 2/0", got)
		}
		if !strings.Contains(stderr, `"outcome":"error"`) {
			t.Errorf("stderr lacks the handler's JSON log of the failure:\n%s", stderr)
		}
	})

	t.Run("usage errors", func(t *testing.T) {
		for _, tt := range []struct {
			args    []string
			env     string
			wantErr string
		}{
			{[]string{"--output", "xml"}, queueURL, "--output"},
			{[]string{"--max", "-1"}, queueURL, "--max"},
			{[]string{"extra"}, queueURL, "unexpected argument"},
			{nil, "", "no queue"},
		} {
			t.Setenv("DEAD_LETTER_QUEUE_URL", tt.env)
			code, _, stderr := runRedriveCLI(t, tt.args...)
			if code != cli.ExitUsage || !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("redrive %v: got exit %d and %q, want 2 and %q", tt.args, code, stderr, tt.wantErr)
			}
		}
	})
}
