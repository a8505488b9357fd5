package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	lambdaevents "github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/kms-autotagger/kms-autotagger/internal/app"
	"github.com/kms-autotagger/kms-autotagger/internal/audit/audittest"
	"github.com/kms-autotagger/kms-autotagger/internal/config"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws/localawstest"
	"github.com/kms-autotagger/kms-autotagger/internal/metrics"
	"github.com/kms-autotagger/kms-autotagger/internal/sweep"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// scheduledEvent is the EventBridge event of a schedule rule, as Lambda
// receives it.
func scheduledEvent(id string) []byte {
	return []byte(`{"version":"0","id":"` + id + `","detail-type":"Scheduled Event","source":"aws.events","account":"` + localaws.DefaultAccount +
		`","time":"2026-01-05T03:00:00Z","region":"us-east-1","resources":["arn:aws:events:us-east-1:` + localaws.DefaultAccount +
		`:rule/kms-autotagger-sweep"],"detail":{}}`)
}

// TestDispatch: the function's one entry point routes the schedule's event
// to the sweep's plan and the sweep queue's SQS events to its partitions,
// and everything else to the tagger's handler, which answers exactly as it
// does alone; without SWEEP_QUEUE_URL everything goes to the handler.
func TestDispatch(t *testing.T) {
	st := localawstest.Start(t, localawstest.Options{CloudTrail: &localaws.CloudTrailOptions{}, Env: map[string]string{
		"MAX_BACKOFF": "20ms", "TAG_RATE_LIMIT": "0", "HOME_ACCOUNT_ID": localaws.DefaultAccount,
	}})
	ctx := context.Background()
	out, err := st.SQS.Client().CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("kms-autotagger-sweep.fifo"), Attributes: map[string]string{"FifoQueue": "true"}})
	if err != nil {
		t.Fatal(err)
	}
	queueURL := aws.ToString(out.QueueUrl)
	queueARN := "arn:aws:sqs:us-east-1:" + st.SQS.Account() + ":kms-autotagger-sweep.fifo"
	t.Setenv("SWEEP_QUEUE_URL", queueURL)
	t.Setenv("SWEEP_REGIONS", "us-east-1")

	// A key that misses its tags, with its CreateKey in the history.
	key := st.CreateKey(t, "us-east-1")
	if err := st.CloudTrail.AddEvent("us-east-1", audittest.CreateKeyRecord("d0000000-0000-4000-8000-000000000001", key, audittest.User(localaws.DefaultAccount, "alice"), time.Now())); err != nil {
		t.Fatal(err)
	}

	cfg, err := config.FromEnv(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	newDispatcher := func(t *testing.T, getenv func(string) string) (*app.Dispatcher, *tagger.Handler, *bytes.Buffer) {
		t.Helper()
		h, err := app.NewHandler(cfg, localawstest.FunctionConfig(t), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		var lines bytes.Buffer
		if h.Metrics, err = metrics.New(&lines, metrics.DefaultNamespace); err != nil {
			t.Fatal(err)
		}
		d, err := app.NewDispatcher(h, cfg, localawstest.FunctionConfig(t), slog.New(slog.DiscardHandler), getenv)
		if err != nil {
			t.Fatal(err)
		}
		return d, h, &lines
	}
	d, h, lines := newDispatcher(t, os.Getenv)
	invoke := func(t *testing.T, payload []byte) any {
		t.Helper()
		ictx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		res, err := d.Handle(ictx, payload)
		if err != nil {
			t.Fatalf("Handle: %v", err)
		}
		return res
	}

	t.Run("the schedule plans the sweep", func(t *testing.T) {
		res, ok := invoke(t, scheduledEvent("5e1f0c3a-0000-4000-8000-000000000001")).(sweep.PlanResult)
		if !ok || res.Run != "5e1f0c3a-0000-4000-8000-000000000001" || res.Partitions != 1 || res.Sent != 1 {
			t.Fatalf("got %#v, want the plan of run 5e1f0c3a-... with its one partition sent", res)
		}
	})

	t.Run("the sweep queue's event sweeps", func(t *testing.T) {
		got, err := st.SQS.Client().ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), WaitTimeSeconds: 1})
		if err != nil || len(got.Messages) != 1 {
			t.Fatalf("got %v, %v; want the planned message", got, err)
		}
		ev := lambdaevents.SQSEvent{Records: []lambdaevents.SQSMessage{{MessageId: aws.ToString(got.Messages[0].MessageId), Body: aws.ToString(got.Messages[0].Body),
			EventSource: "aws:sqs", EventSourceARN: queueARN, AWSRegion: "us-east-1"}}}
		payload, _ := json.Marshal(ev)
		resp, ok := invoke(t, payload).(lambdaevents.SQSEventResponse)
		if !ok || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("got %#v, want an SQSEventResponse without failures", resp)
		}
		if tags := st.Tags(t, key); tags["CreationEventId"] != "d0000000-0000-4000-8000-000000000001" || tags["CreatedByEvidence"] != tagger.EvidenceHistory {
			t.Errorf("got tags %v, want the key repaired from its CreateKey", tags)
		}
		if !strings.Contains(lines.String(), `"CoveragePercent":100`) || !strings.Contains(lines.String(), `"CoverageRepaired":1`) {
			t.Errorf("got metrics %s, want the partition's coverage line: 100%% after 1 repaired", lines)
		}
	})

	t.Run("a KMS event is the handler's, answered as the handler alone answers", func(t *testing.T) {
		other := st.CreateKey(t, "us-east-1")
		event := localawstest.CreateKeyEvent("11111111-aaaa-4bbb-8ccc-00000000d001", other, nil)
		res, ok := invoke(t, event).(tagger.Result)
		if !ok || res.Outcome != tagger.OutcomeTagged || res.KeyARN != other {
			t.Fatalf("got %#v, want the key tagged", res)
		}
		alone, err := h.Handle(ctx, event) // the same event again: the handler alone
		if err != nil {
			t.Fatal(err)
		}
		again, _ := invoke(t, event).(tagger.Result)
		if again.Outcome != alone.Outcome || again.Reason != alone.Reason || again.KeyARN != alone.KeyARN || !reflect.DeepEqual(again.Tags, alone.Tags) || again.TagsWritten != alone.TagsWritten {
			t.Errorf("through the dispatcher got %+v, alone %+v: want the same", again, alone)
		}
	})

	for _, tc := range []struct {
		name    string
		payload []byte
	}{
		{"an SQS event of another queue", mustJSON(t, lambdaevents.SQSEvent{Records: []lambdaevents.SQSMessage{{MessageId: "x", Body: `{}`,
			EventSource: "aws:sqs", EventSourceARN: "arn:aws:sqs:us-east-1:" + st.SQS.Account() + ":autotagger-dlq"}}})},
		{"an SQS event of the queue's name in another account", mustJSON(t, lambdaevents.SQSEvent{Records: []lambdaevents.SQSMessage{{MessageId: "x", Body: `{}`,
			EventSource: "aws:sqs", EventSourceARN: "arn:aws:sqs:us-east-1:999988887777:kms-autotagger-sweep.fifo"}}})},
		{"another EventBridge event", []byte(`{"version":"0","id":"e1","detail-type":"Object Created","source":"aws.s3","detail":{}}`)},
		{"not JSON", []byte(`{`)},
	} {
		t.Run(tc.name+" is the handler's", func(t *testing.T) {
			ictx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			got, gotErr := d.Handle(ictx, tc.payload)
			want, wantErr := h.Handle(ictx, tc.payload)
			res, ok := got.(tagger.Result)
			if !ok || res.Outcome != want.Outcome || res.Reason != want.Reason || (gotErr == nil) != (wantErr == nil) {
				t.Errorf("got %#v, %v; want the handler's %#v, %v", got, gotErr, want, wantErr)
			}
		})
	}

	t.Run("without SWEEP_QUEUE_URL the schedule's event is the handler's", func(t *testing.T) {
		off, _, _ := newDispatcher(t, func(k string) string {
			if k == config.EnvSweepQueueURL {
				return ""
			}
			return os.Getenv(k)
		})
		if off.Sweep != nil {
			t.Fatal("got a sweeper without SWEEP_QUEUE_URL")
		}
		got, err := off.Handle(ctx, scheduledEvent("e2"))
		res, ok := got.(tagger.Result)
		if err != nil || !ok || res.Outcome != tagger.OutcomeSkipped {
			t.Errorf("got %#v, %v; want the handler's skip", got, err)
		}
	})

	t.Run("invalid sweep settings stop the start", func(t *testing.T) {
		h, err := app.NewHandler(cfg, localawstest.FunctionConfig(t), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		_, err = app.NewDispatcher(h, cfg, localawstest.FunctionConfig(t), slog.New(slog.DiscardHandler), func(k string) string {
			if k == config.EnvSweepLookupRate {
				return "5"
			}
			return os.Getenv(k)
		})
		if err == nil || !strings.Contains(err.Error(), config.EnvSweepLookupRate) {
			t.Errorf("got %v, want an error naming %s", err, config.EnvSweepLookupRate)
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
