package localawstest

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/kms-autotagger/kms-autotagger/internal/events"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// DefaultRegions are the regions local-kms serves when Options.Regions is
// empty.
var DefaultRegions = []string{"us-east-1", "eu-west-1"}

// QueueName is the name of the dead-letter queue Start creates.
const QueueName = "autotagger-dlq"

// Base values of the environment Start sets.
const (
	// Region is AWS_REGION, the region of the SDK's default configuration.
	Region = "us-east-1"
	// AccessKeyID and SecretAccessKey are the dummy static credentials
	// (the stand-ins check no signatures).
	AccessKeyID     = "AKIDEXAMPLE"
	SecretAccessKey = "secret"
)

// Options configures Start.
type Options struct {
	// Regions local-kms serves, one process each; DefaultRegions when
	// empty.
	Regions []string
	// Seeds are the keys local-kms creates at startup, by region (see
	// localaws.KMSOptions.Seeds).
	Seeds map[string][]localaws.SeedKey
	// NoSQS starts no SQS stand-in and creates no queue, and leaves
	// AWS_ENDPOINT_URL_SQS and DEAD_LETTER_QUEUE_URL unset, for tests of
	// code that sends no dead letters.
	NoSQS bool
	// CloudTrail, when set, starts the CloudTrail stand-in with these
	// options and sets AWS_ENDPOINT_URL_CLOUDTRAIL to it.
	CloudTrail *localaws.CloudTrailOptions
	// Env holds more variables, set after the base ones, so it can also
	// override them; an empty value is set as empty, not unset.
	Env map[string]string
}

// Stack is the running stand-ins of one test.
type Stack struct {
	// KMS is local-kms in every region of Options.Regions behind the
	// region router.
	KMS *localaws.KMS
	// SQS is the SQS stand-in; nil with Options.NoSQS.
	SQS *localaws.SQS
	// QueueURL is the URL of the dead-letter queue QueueName in SQS, the
	// value of DEAD_LETTER_QUEUE_URL; empty with Options.NoSQS.
	QueueURL string
	// CloudTrail is the CloudTrail stand-in; nil unless Options.CloudTrail
	// is set.
	CloudTrail *localaws.CloudTrail
}

// Start starts the stand-ins opts asks for, registers their Close with
// tb.Cleanup, and sets the environment that points the SDK at them (see the
// package documentation) with tb.Setenv. It fails tb with the stand-in's
// error when one does not start.
func Start(tb testing.TB, opts Options) *Stack {
	tb.Helper()
	ctx := context.Background()
	regions := opts.Regions
	if len(regions) == 0 {
		regions = slices.Clone(DefaultRegions)
	}
	s := &Stack{}
	k, err := localaws.StartKMS(ctx, localaws.KMSOptions{Regions: regions, Seeds: opts.Seeds})
	if err != nil {
		tb.Fatalf("localawstest: starting local-kms in %v: %v", regions, err)
	}
	tb.Cleanup(func() { _ = k.Close() })
	s.KMS = k
	env := map[string]string{
		"AWS_ENDPOINT_URL_KMS":        k.URL(),
		"AWS_REGION":                  Region,
		"AWS_ACCESS_KEY_ID":           AccessKeyID,
		"AWS_SECRET_ACCESS_KEY":       SecretAccessKey,
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
	}
	if !opts.NoSQS {
		q, err := localaws.StartSQS(ctx, localaws.SQSOptions{})
		if err != nil {
			tb.Fatalf("localawstest: starting the SQS stand-in: %v", err)
		}
		tb.Cleanup(func() { _ = q.Close() })
		queueURL, err := q.CreateQueue(ctx, QueueName)
		if err != nil {
			tb.Fatalf("localawstest: %v", err)
		}
		s.SQS, s.QueueURL = q, queueURL
		env["AWS_ENDPOINT_URL_SQS"] = q.URL()
		env["DEAD_LETTER_QUEUE_URL"] = queueURL
	}
	if opts.CloudTrail != nil {
		ct, err := localaws.StartCloudTrail(*opts.CloudTrail)
		if err != nil {
			tb.Fatalf("localawstest: starting the CloudTrail stand-in: %v", err)
		}
		tb.Cleanup(func() { _ = ct.Close() })
		s.CloudTrail = ct
		env["AWS_ENDPOINT_URL_CLOUDTRAIL"] = ct.URL()
	}
	maps.Copy(env, opts.Env)
	for name, v := range env {
		tb.Setenv(name, v)
	}
	return s
}

// CreateKey creates a symmetric key with no tags in region and returns its
// ARN.
func (s *Stack) CreateKey(tb testing.TB, region string) string {
	tb.Helper()
	out, err := s.KMS.Client(region).CreateKey(context.Background(), &kms.CreateKeyInput{})
	if err != nil {
		tb.Fatalf("CreateKey in %s: %v", region, err)
	}
	return aws.ToString(out.KeyMetadata.Arn)
}

// Tags returns the tags on keyARN (see KeyTags).
func (s *Stack) Tags(tb testing.TB, keyARN string) map[string]string {
	tb.Helper()
	return KeyTags(tb, s.KMS, keyARN)
}

// TagKey puts tags on keyARN with TagResource in the key's region.
func (s *Stack) TagKey(tb testing.TB, keyARN string, tags map[string]string) {
	tb.Helper()
	in := &kms.TagResourceInput{KeyId: aws.String(keyARN)}
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		in.Tags = append(in.Tags, kmstypes.Tag{TagKey: aws.String(k), TagValue: aws.String(tags[k])})
	}
	if _, err := s.KMS.Client(RegionOf(keyARN)).TagResource(context.Background(), in); err != nil {
		tb.Fatalf("TagResource %s: %v", keyARN, err)
	}
}

// Recorded makes the stand-ins hold the calls the sample events record, as
// AWS would after them: the key of each creation event described as created
// at its time (localaws.KMS.AsCreatedBy) and, with the CloudTrail stand-in,
// the record in its event history. Samples whose key cannot be read are
// passed over.
func (s *Stack) Recorded(tb testing.TB, samples ...[]byte) {
	tb.Helper()
	for _, raw := range samples {
		dec, err := events.Decode(raw)
		if err != nil || dec.Key == nil {
			continue
		}
		s.KMS.AsCreatedBy(dec.Key)
		if s.CloudTrail == nil {
			continue
		}
		var env struct{ Detail json.RawMessage }
		if err := json.Unmarshal(raw, &env); err != nil {
			tb.Fatal(err)
		}
		if err := s.CloudTrail.AddEvent(dec.Key.EventRegion, env.Detail); err != nil {
			tb.Fatalf("recording %s in the CloudTrail stand-in: %v", dec.EventID, err)
		}
	}
}

// DeadLetters drains the dead-letter queue (see DrainDeadLetters).
func (s *Stack) DeadLetters(tb testing.TB) []DeadLetter {
	tb.Helper()
	if s.SQS == nil {
		tb.Fatal("localawstest: DeadLetters on a stack started with NoSQS")
	}
	return DrainDeadLetters(tb, s.SQS, s.QueueURL)
}

// KeyTags returns the tags on keyARN, read with ListResourceTags from k in
// the key's region, as a map from tag key to value.
func KeyTags(tb testing.TB, k *localaws.KMS, keyARN string) map[string]string {
	tb.Helper()
	out, err := k.Client(RegionOf(keyARN)).ListResourceTags(context.Background(), &kms.ListResourceTagsInput{KeyId: aws.String(keyARN)})
	if err != nil {
		tb.Fatalf("ListResourceTags %s: %v", keyARN, err)
	}
	m := make(map[string]string, len(out.Tags))
	for _, tag := range out.Tags {
		m[aws.ToString(tag.TagKey)] = aws.ToString(tag.TagValue)
	}
	return m
}

// DeadLetter is one message taken from a dead-letter queue.
type DeadLetter struct {
	// Record is the message body.
	Record tagger.DeadLetter
	// Attributes are the message's string attributes, by name.
	Attributes map[string]string
}

// DrainDeadLetters receives and deletes every message in queueURL until a
// receive returns none, and returns them in the order received. It fails
// tb when a body is not a tagger.DeadLetter record.
func DrainDeadLetters(tb testing.TB, q *localaws.SQS, queueURL string) []DeadLetter {
	tb.Helper()
	ctx := context.Background()
	client := q.Client()
	var msgs []DeadLetter
	for {
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			tb.Fatalf("ReceiveMessage: %v", err)
		}
		if len(out.Messages) == 0 {
			return msgs
		}
		for _, m := range out.Messages {
			var d tagger.DeadLetter
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &d); err != nil {
				tb.Fatalf("dead letter is not a record: %v: %s", err, aws.ToString(m.Body))
			}
			attrs := make(map[string]string, len(m.MessageAttributes))
			for name, v := range m.MessageAttributes {
				attrs[name] = aws.ToString(v.StringValue)
			}
			msgs = append(msgs, DeadLetter{Record: d, Attributes: attrs})
			if _, err := client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				tb.Fatalf("DeleteMessage: %v", err)
			}
		}
	}
}

// RegionOf returns the region field of an ARN such as
// arn:aws:kms:eu-west-1:111122223333:key/ID, or "" when arn has no region
// field.
func RegionOf(arn string) string {
	parts := strings.SplitN(arn, ":", 5)
	if len(parts) < 4 {
		return ""
	}
	return parts[3]
}

// FunctionConfig returns the AWS configuration the function makes in Lambda
// (config.LoadDefaultConfig) from the process environment, such as the one
// Start sets.
func FunctionConfig(tb testing.TB) aws.Config {
	tb.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		tb.Fatalf("loading the function's AWS configuration: %v", err)
	}
	return cfg
}
