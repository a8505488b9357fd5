package cfn_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// router is an event bus of moto's EventBridge with one rule, whose pattern
// is a deployed rule's, and an SQS queue as the rule's target: which events
// put on the bus reach the queue is decided by moto's pattern matching.
//
// Each router has its own bus, so that the events reach no rule of the
// stacks (whose targets are functions moto would try to run). moto routes
// an event to the targets while answering PutEvents, so the queue holds
// every delivered event once PutEvents has returned. It also takes events
// of the aws.* sources, which EventBridge keeps for AWS services. The
// target's input transformer makes the message the event's id only: moto
// spends a tenth of a second on every path of a transformer, and its
// default one has eight.
type router struct {
	cfg      aws.Config
	bus      string
	queueURL string
}

// newRouter makes a bus whose one rule has pattern, in the central account
// and home region.
func newRouter(t testing.TB, pattern string) *router {
	t.Helper()
	return newRouterIn(t, centralAccount, pattern)
}

// newRouterIn makes a bus whose one rule has pattern in account and the
// home region. moto's EventBridge gives an event the account (and region)
// of the PutEvents call, as EventBridge does, so the events a router of
// account delivers are events of that account: the way to route an event of
// another account through a pattern that names accounts.
func newRouterIn(t testing.TB, account, pattern string) *router {
	t.Helper()
	ctx := context.Background()
	shared.mu.Lock()
	shared.buses++
	n := shared.buses
	shared.mu.Unlock()
	r := &router{cfg: awsConfig(t, account, homeRegion), bus: fmt.Sprintf("pattern-check-%d", n)}
	events, queues := eventbridge.NewFromConfig(r.cfg), sqs.NewFromConfig(r.cfg)
	if _, err := events.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String(r.bus)}); err != nil {
		t.Fatalf("CreateEventBus: %v", err)
	}
	q, err := queues.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(r.bus)})
	if err != nil {
		t.Fatalf("CreateQueue: %v", err)
	}
	r.queueURL = aws.ToString(q.QueueUrl)
	attrs, err := queues.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		t.Fatalf("GetQueueAttributes: %v", err)
	}
	if _, err := events.PutRule(ctx, &eventbridge.PutRuleInput{
		Name: aws.String(r.bus), EventBusName: aws.String(r.bus), EventPattern: aws.String(pattern), State: ebtypes.RuleStateEnabled,
	}); err != nil {
		t.Fatalf("PutRule with the pattern %s: %v", pattern, err)
	}
	if _, err := events.PutTargets(ctx, &eventbridge.PutTargetsInput{
		Rule: aws.String(r.bus), EventBusName: aws.String(r.bus),
		Targets: []ebtypes.Target{{
			Id:  aws.String("queue"),
			Arn: aws.String(attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]),
			InputTransformer: &ebtypes.InputTransformer{
				InputPathsMap: map[string]string{"id": "$.id"},
				InputTemplate: aws.String(`{"id": "<id>"}`),
			},
		}},
	}); err != nil {
		t.Fatalf("PutTargets: %v", err)
	}
	return r
}

// deliver puts each event (an EventBridge event as events/ holds them) on
// the bus and reports, for each, whether the rule delivered it.
func (r *router) deliver(t testing.TB, evs []map[string]any) []bool {
	t.Helper()
	ctx := context.Background()
	events, queues := eventbridge.NewFromConfig(r.cfg), sqs.NewFromConfig(r.cfg)
	index := map[string]int{}
	for start := 0; start < len(evs); start += 10 {
		batch := evs[start:min(start+10, len(evs))]
		var entries []ebtypes.PutEventsRequestEntry
		for _, e := range batch {
			detail, err := json.Marshal(e["detail"])
			if err != nil {
				t.Fatal(err)
			}
			entry := ebtypes.PutEventsRequestEntry{
				EventBusName: aws.String(r.bus),
				Source:       aws.String(fmt.Sprint(e["source"])),
				DetailType:   aws.String(fmt.Sprint(e["detail-type"])),
				Detail:       aws.String(string(detail)),
			}
			if res, ok := e["resources"].([]any); ok {
				for _, el := range res {
					entry.Resources = append(entry.Resources, fmt.Sprint(el))
				}
			}
			entries = append(entries, entry)
		}
		out, err := events.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries})
		if err != nil {
			t.Fatalf("PutEvents: %v", err)
		}
		if out.FailedEntryCount != 0 || len(out.Entries) != len(batch) {
			t.Fatalf("PutEvents: %d of %d entries failed: %+v", out.FailedEntryCount, len(batch), out.Entries)
		}
		for i, e := range out.Entries {
			index[aws.ToString(e.EventId)] = start + i
		}
	}
	delivered := make([]bool, len(evs))
	for {
		msgs, err := queues.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(r.queueURL), MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatalf("ReceiveMessage: %v", err)
		}
		if len(msgs.Messages) == 0 {
			return delivered
		}
		for _, m := range msgs.Messages {
			var got struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &got); err != nil {
				t.Fatalf("delivered message %.200q: %v", aws.ToString(m.Body), err)
			}
			i, ok := index[got.ID]
			if !ok {
				t.Fatalf("delivered an event that was not put: %.200q", aws.ToString(m.Body))
			}
			delivered[i] = true
			if _, err := queues.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(r.queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatalf("DeleteMessage: %v", err)
			}
		}
	}
}

// eventSamples lists every file in events/ and whether each rule of
// template.yaml must deliver it to the function: creation for
// KeyCreatedRule (and the forward rules of deploy/), tagChange for
// TagChangeRule.
var eventSamples = []struct {
	file      string
	creation  bool
	tagChange bool
}{
	{"createkey_iamuser.json", true, false},
	{"createkey_assumedrole.json", true, false},
	{"createkey_identitycenter.json", true, false},
	{"createkey_cloudformation.json", true, false},
	{"createkey_with_tags.json", true, false},
	{"createkey_external.json", true, false},
	{"createkey_pending_deletion.json", true, false},
	{"replicatekey.json", true, false},
	{"aws_managed_key.json", true, false},
	{"failed_call.json", false, false},
	// The tagger's own TagResource: delivering it would make every tagging
	// trigger another.
	{"unrelated_kms_event.json", false, false},
}

// ownTagEvent is the sample of the tagger's own TagResource.
const ownTagEvent = "unrelated_kms_event.json"

func readEvent(t testing.TB, file string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(eventsDir, file))
	if err != nil {
		t.Fatalf("reading sample: %v", err)
	}
	var event map[string]any
	if err := decodeJSON(data, &event); err != nil {
		t.Fatalf("decoding %s: %v", file, err)
	}
	return event
}

// TestEventSamplesAreListed checks that eventSamples names exactly the
// files in events/.
func TestEventSamplesAreListed(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(eventsDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var onDisk, listed []string
	for _, f := range files {
		onDisk = append(onDisk, filepath.Base(f))
	}
	for _, s := range eventSamples {
		listed = append(listed, s.file)
	}
	slices.Sort(onDisk)
	slices.Sort(listed)
	if !slices.Equal(onDisk, listed) {
		t.Errorf("events/*.json = %q, eventSamples = %q: list every sample with whether each rule must deliver it", onDisk, listed)
	}
}

// patternCase is a sample event, changed by mutate, and whether a rule
// should deliver it.
type patternCase struct {
	name   string
	base   string // the events/ sample
	mutate func(e map[string]any)
	want   bool
}

// checkPatternCases routes every case through a bus whose rule has pattern,
// the deployed pattern of rule, after prepare (which may be nil) has
// changed each event; prepare runs before the case's own mutate.
func checkPatternCases(t *testing.T, rule, pattern string, prepare func(map[string]any), tests []patternCase) {
	t.Helper()
	evs := make([]map[string]any, len(tests))
	for i, tt := range tests {
		evs[i] = readEvent(t, tt.base)
		if prepare != nil {
			prepare(evs[i])
		}
		if tt.mutate != nil {
			tt.mutate(evs[i])
		}
	}
	got := newRouter(t, pattern).deliver(t, evs)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got[i] != tt.want {
				t.Errorf("%s delivers %s: got %v, want %v", rule, tt.name, got[i], tt.want)
			}
		})
	}
}

// eventDetail is the detail of an EventBridge event decoded as a map.
func eventDetail(e map[string]any) map[string]any { return e["detail"].(map[string]any) }

// lookup returns the value at path in nested maps.
func lookup(v any, path ...string) (any, bool) {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

// iamUserIdentity is the userIdentity of a CloudTrail record of the IAM user
// mallory in the samples' account.
func iamUserIdentity() map[string]any {
	return map[string]any{
		"type":        "IAMUser",
		"principalId": "AIDAYW3KQ5EXAMPLEMAL0",
		"arn":         "arn:aws:iam::111122223333:user/mallory",
		"accountId":   "111122223333",
		"accessKeyId": "AKIAYW3KQ5EXAMPLEML3",
		"userName":    "mallory",
	}
}

// assumedRoleIdentity is the userIdentity of a CloudTrail record of a
// session of role in account.
func assumedRoleIdentity(account, role, session string) map[string]any {
	return map[string]any{
		"type":        "AssumedRole",
		"principalId": "AROAYW3KQ5EXAMPLEOTH1:" + session,
		"arn":         "arn:aws:sts::" + account + ":assumed-role/" + role + "/" + session,
		"accountId":   account,
		"accessKeyId": "ASIAYW3KQ5EXAMPLEOT2",
		"sessionContext": map[string]any{
			"sessionIssuer": map[string]any{
				"type":        "Role",
				"principalId": "AROAYW3KQ5EXAMPLEOTH1",
				"arn":         "arn:aws:iam::" + account + ":role/" + role,
				"accountId":   account,
				"userName":    role,
			},
		},
	}
}

// jsonEqual reports whether two JSON documents decode to the same value.
func jsonEqual(t testing.TB, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := decodeJSON(a, &x); err != nil {
		t.Fatalf("decoding %s: %v", a, err)
	}
	if err := decodeJSON(b, &y); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	xs, _ := json.Marshal(x)
	ys, _ := json.Marshal(y)
	return string(xs) == string(ys)
}
