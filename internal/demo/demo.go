package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/kms-autotagger/kms-autotagger/internal/events"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// Regions the demo serves: the sample events' region and the replica's.
var Regions = []string{"us-east-1", "eu-west-1"}

// SampleTaggerRoleARN is the tagger role of the sample events, as a stack
// named kms-autotagger would create it.
const SampleTaggerRoleARN = "arn:aws:iam::111122223333:role/kms-autotagger-AutoTaggerFunctionRole-1QW2E3R4T5Y6"

// DeadLetterQueueName is the name of the demo's dead-letter queue.
const DeadLetterQueueName = "kms-autotagger-dlq"

// Options configures Run.
type Options struct {
	// Bootstrap is the function binary built for this machine.
	Bootstrap string
	// EventsDir holds the sample events (*.json, not recursive).
	EventsDir string
	// PendingDeletion names the sample files whose key is scheduled for
	// deletion before the events are posted, so they end dead-lettered.
	PendingDeletion []string
	// Env holds extra settings for the function (KEY=VALUE), such as
	// STATIC_TAGS.
	Env []string
	// Logs, when set, receives the function's and the stand-ins' output.
	Logs io.Writer
}

// DefaultPendingDeletion is the sample whose key the demo schedules for
// deletion.
const DefaultPendingDeletion = "createkey_pending_deletion.json"

// Row is what became of one sample event.
type Row struct {
	// Event is the sample's file name.
	Event string `json:"event"`
	// KeyARN is the key the event names, if any.
	KeyARN string `json:"keyArn,omitempty"`
	// Outcome is the function's outcome, or "error" when it returned one.
	Outcome string `json:"outcome"`
	// Reason explains a skip, a dead letter or an error.
	Reason string `json:"reason,omitempty"`
	// Tags are the tags on the key after the event, read back from KMS.
	Tags map[string]string `json:"tags,omitempty"`
	// Status is the emulator's HTTP status for the invocation.
	Status int `json:"status"`
	// Body is the function's response as the emulator returned it.
	Body json.RawMessage `json:"body,omitempty"`
}

// Report is what Run saw.
type Report struct {
	Rows        []Row               `json:"rows"`
	DeadLetters []tagger.DeadLetter `json:"deadLetters"`
}

type sample struct {
	name string
	raw  []byte
	dec  events.Decoded
	err  error
}

// Run starts the stand-ins and the emulator, posts every sample and
// returns the report. Everything it started is stopped before it returns,
// also when ctx is cancelled.
func Run(ctx context.Context, opts Options) (*Report, error) {
	samples, err := loadSamples(opts.EventsDir)
	if err != nil {
		return nil, err
	}
	pending := opts.PendingDeletion
	if pending == nil {
		pending = []string{DefaultPendingDeletion}
	}

	k, err := localaws.StartKMS(ctx, localaws.KMSOptions{Regions: Regions, Seeds: seeds(samples), Output: opts.Logs})
	if err != nil {
		return nil, err
	}
	defer k.Close()
	q, err := localaws.StartSQS(ctx, localaws.SQSOptions{Region: Regions[0], Output: opts.Logs})
	if err != nil {
		return nil, err
	}
	defer q.Close()
	queueURL, err := q.CreateQueue(ctx, DeadLetterQueueName)
	if err != nil {
		return nil, err
	}
	if err := prepareKeys(ctx, k, samples, pending); err != nil {
		return nil, err
	}
	// CloudFormation and CloudTrail's event history as AWS would hold them
	// for the samples: the stacks that made keys, and who ran them.
	now := newestSample(samples)
	ct, err := localaws.StartCloudTrail(localaws.CloudTrailOptions{Now: func() time.Time { return now }})
	if err != nil {
		return nil, err
	}
	defer ct.Close()
	cf, err := localaws.StartCloudFormation(localaws.CloudFormationOptions{})
	if err != nil {
		return nil, err
	}
	defer cf.Close()
	if err := stackHistory(samples, cf, ct); err != nil {
		return nil, err
	}

	env := append([]string{
		"AWS_ENDPOINT_URL_KMS=" + k.URL(),
		"AWS_ENDPOINT_URL_SQS=" + q.URL(),
		"AWS_ENDPOINT_URL_CLOUDTRAIL=" + ct.URL(),
		"AWS_ENDPOINT_URL_CLOUDFORMATION=" + cf.URL(),
		"DEAD_LETTER_QUEUE_URL=" + queueURL,
		"AWS_LAMBDA_FUNCTION_TIMEOUT=30",
		// The role the samples' own TagResource was made with, as the stack
		// sets it: the tamper repair skips the tagger's own changes.
		"TAGGER_ROLE_ARN=" + SampleTaggerRoleARN,
	}, opts.Env...)
	rie, err := localaws.StartRIE(ctx, localaws.RIEOptions{Bootstrap: opts.Bootstrap, Env: env, Stdout: opts.Logs})
	if err != nil {
		return nil, err
	}
	defer rie.Close()

	report := &Report{}
	for _, s := range samples {
		row := Row{Event: s.name}
		switch {
		case s.dec.Key != nil:
			row.KeyARN = s.dec.Key.KeyARN
		case s.dec.Change != nil:
			row.KeyARN = s.dec.Change.KeyARN
		}
		status, body, err := rie.Invoke(ctx, s.raw)
		if err != nil {
			return nil, fmt.Errorf("invoking %s: %w", s.name, err)
		}
		row.Status, row.Body = status, body
		row.Outcome, row.Reason = outcome(status, body)
		if s.dec.Key != nil {
			if row.Tags, err = keyTags(ctx, k.Client(s.dec.Key.Region), s.dec.Key.KeyARN); err != nil {
				return nil, fmt.Errorf("reading tags after %s: %w", s.name, err)
			}
		}
		report.Rows = append(report.Rows, row)
	}
	if report.DeadLetters, err = drain(ctx, q.Client(), queueURL); err != nil {
		return nil, err
	}
	return report, nil
}

func loadSamples(dir string) ([]sample, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("listing samples in %s: %w", dir, err)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no sample events (*.json) in %s", dir)
	}
	sort.Strings(paths)
	samples := make([]sample, 0, len(paths))
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("reading sample: %w", err)
		}
		dec, derr := events.Decode(raw)
		samples = append(samples, sample{name: filepath.Base(p), raw: raw, dec: dec, err: derr})
	}
	return samples, nil
}

// seeds are the keys the samples name, and the primary keys of replicas,
// each in its own region.
func seeds(samples []sample) map[string][]localaws.SeedKey {
	out := make(map[string][]localaws.SeedKey)
	add := func(region, keyID, desc string) {
		if !slices.Contains(Regions, region) {
			return
		}
		for _, s := range out[region] {
			if s.KeyID == keyID {
				return
			}
		}
		out[region] = append(out[region], localaws.SeedKey{KeyID: keyID, Description: desc})
	}
	for _, s := range samples {
		if s.dec.Key == nil {
			continue
		}
		add(s.dec.Key.Region, s.dec.Key.KeyID, "key of "+s.name)
		if p := s.dec.Key.PrimaryKeyARN; p != "" {
			parts := strings.SplitN(p, ":", 6)
			if len(parts) == 6 {
				add(parts[3], strings.TrimPrefix(parts[5], "key/"), "primary key of "+s.name)
			}
		}
	}
	return out
}

// prepareKeys makes the keys look as they would right after the calls the
// samples record: created when the sample says, the creator's request tags
// on the key, and the keys of the pending-deletion samples scheduled for
// deletion.
func prepareKeys(ctx context.Context, k *localaws.KMS, samples []sample, pending []string) error {
	for _, s := range samples {
		key := s.dec.Key
		if key == nil {
			continue
		}
		client := k.Client(key.Region)
		// local-kms dates every key now and has no multi-Region keys: the
		// stand-in says what KMS would of the key the sample names.
		k.AsCreatedBy(key)
		if len(key.RequestTags) > 0 {
			in := &kms.TagResourceInput{KeyId: aws.String(key.KeyARN)}
			for _, t := range key.RequestTags {
				in.Tags = append(in.Tags, kmstypes.Tag{TagKey: aws.String(t.Key), TagValue: aws.String(t.Value)})
			}
			if _, err := client.TagResource(ctx, in); err != nil {
				return fmt.Errorf("putting the creator's tags of %s on %s: %w", s.name, key.KeyARN, err)
			}
		}
		if slices.Contains(pending, s.name) {
			if _, err := client.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(key.KeyARN), PendingWindowInDays: aws.Int32(7)}); err != nil {
				return fmt.Errorf("scheduling deletion of %s: %w", key.KeyARN, err)
			}
		}
	}
	k.Router().ResetCounts()
	return nil
}

// outcome reads the function's response: a tagger.Result, or the
// emulator's report of a returned error.
func outcome(status int, body []byte) (string, string) {
	var resp struct {
		Outcome      string `json:"outcome"`
		Reason       string `json:"reason"`
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}
	if status != 200 || json.Unmarshal(body, &resp) != nil {
		return "error", fmt.Sprintf("HTTP %d: %s", status, strings.TrimSpace(string(body)))
	}
	if resp.ErrorMessage != "" {
		return string(tagger.OutcomeError), resp.ErrorMessage
	}
	return resp.Outcome, resp.Reason
}

func keyTags(ctx context.Context, client *kms.Client, keyARN string) (map[string]string, error) {
	out, err := client.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(keyARN)})
	if err != nil {
		return nil, err
	}
	tags := make(map[string]string, len(out.Tags))
	for _, t := range out.Tags {
		tags[aws.ToString(t.TagKey)] = aws.ToString(t.TagValue)
	}
	return tags, nil
}

// drain receives and deletes every message in the queue.
func drain(ctx context.Context, client *sqs.Client, queueURL string) ([]tagger.DeadLetter, error) {
	var out []tagger.DeadLetter
	for {
		resp, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 0})
		if err != nil {
			return nil, fmt.Errorf("reading dead letters: %w", err)
		}
		if len(resp.Messages) == 0 {
			return out, nil
		}
		for _, m := range resp.Messages {
			var d tagger.DeadLetter
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &d); err != nil {
				return nil, fmt.Errorf("dead letter %s is not a record: %w", aws.ToString(m.MessageId), err)
			}
			out = append(out, d)
			if _, err := client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				return nil, fmt.Errorf("deleting dead letter: %w", err)
			}
		}
	}
}

// ErrFailed is returned by Check when an event ended in an error.
var ErrFailed = errors.New("an event ended in an error")

// Check reports an error when any row's outcome is error: the demo's
// samples all end tagged, skipped or dead-lettered.
func (r *Report) Check() error {
	var bad []string
	for _, row := range r.Rows {
		if row.Outcome == string(tagger.OutcomeError) {
			bad = append(bad, row.Event+": "+row.Reason)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s", ErrFailed, strings.Join(bad, "; "))
	}
	return nil
}
