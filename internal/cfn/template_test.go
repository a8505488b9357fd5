package cfn_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"gopkg.in/yaml.v3"

	"github.com/kms-autotagger/kms-autotagger/internal/config"
	"github.com/kms-autotagger/kms-autotagger/internal/events"
	"github.com/kms-autotagger/kms-autotagger/internal/metrics"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// Logical ids of template.yaml.
const (
	functionID     = "AutoTaggerFunction"
	roleID         = "AutoTaggerFunctionRole"
	logsPolicyID   = "AutoTaggerLogsPolicy"
	logGroupID     = "AutoTaggerLogGroup"
	invokeConfigID = "AutoTaggerEventInvokeConfig"
	queueID        = "DeadLetterQueue"
	queuePolicyID  = "DeadLetterQueuePolicy"
	ruleID         = "KeyCreatedRule"
	tagRuleID      = "TagChangeRule"
	busPolicyID    = "OrganizationEventBusPolicy"
	topicID        = "AlarmTopic"
	subscriptionID = "AlarmTopicSubscription"
	dashboardID    = "OperationsDashboard"
	forgedAlarmID  = "ForgedTagsAlarm"
)

// ruleIDs are the stack's EventBridge rules, each with its own permission to
// invoke the function.
var ruleIDs = []string{ruleID, tagRuleID}

// wantResources are the resources of template.yaml's translation, by
// logical id: the template's own, the function as an AWS::Lambda::Function,
// and nothing the SAM translator would add of its own (a role, permissions,
// an event invoke config for SAM properties such as Events, Policies or
// EventInvokeConfig).
var wantResources = map[string]string{
	functionID:               "AWS::Lambda::Function",
	roleID:                   "AWS::IAM::Role",
	logsPolicyID:             "AWS::IAM::Policy",
	logGroupID:               "AWS::Logs::LogGroup",
	invokeConfigID:           "AWS::Lambda::EventInvokeConfig",
	ruleID:                   "AWS::Events::Rule",
	ruleID + "Permission":    "AWS::Lambda::Permission",
	tagRuleID:                "AWS::Events::Rule",
	tagRuleID + "Permission": "AWS::Lambda::Permission",
	busPolicyID:              "AWS::Events::EventBusPolicy",
	queueID:                  "AWS::SQS::Queue",
	queuePolicyID:            "AWS::SQS::QueuePolicy",
	topicID:                  "AWS::SNS::Topic",
	subscriptionID:           "AWS::SNS::Subscription",
	"DeadLetterQueueAlarm":   "AWS::CloudWatch::Alarm",
	"FunctionErrorsAlarm":    "AWS::CloudWatch::Alarm",
	forgedAlarmID:            "AWS::CloudWatch::Alarm",
	dashboardID:              "AWS::CloudWatch::Dashboard",
	// The sweep.
	"SweepQueue":                "AWS::SQS::Queue",
	"SweepDeadLetterQueue":      "AWS::SQS::Queue",
	"SweepQueuePolicy":          "AWS::SQS::QueuePolicy",
	"SweepEventSourceMapping":   "AWS::Lambda::EventSourceMapping",
	"SweepScheduleRule":         "AWS::Events::Rule",
	"SweepSchedulePermission":   "AWS::Lambda::Permission",
	"CoverageAlarm":             "AWS::CloudWatch::Alarm",
	"SweepDeadLetterQueueAlarm": "AWS::CloudWatch::Alarm",
}

// taggerStack returns the stack of template.yaml with params in the central
// account and home region.
func taggerStack(t testing.TB, params map[string]string) *stack {
	t.Helper()
	return deploy(t, stackSpec{template: templatePath, params: params})
}

// param returns the value of parameter name in stack s: the one given, or
// the template's Default.
func (s *stack) param(t testing.TB, name string) string {
	t.Helper()
	if v, ok := s.spec.params[name]; ok {
		return v
	}
	p, ok := s.template.Parameters[name]
	if !ok || !p.HasDefault() {
		t.Fatalf("no parameter %s with a Default", name)
	}
	return p.DefaultString()
}

// sourceScalar returns the scalar at keys in the YAML of the template at
// path as written, before any translation, and whether there is one.
func sourceScalar(t testing.TB, path string, keys ...string) (string, bool) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(doc.Content) != 1 {
		t.Fatalf("%s is not one YAML document", path)
	}
	n := doc.Content[0]
	for _, k := range keys {
		if n.Kind != yaml.MappingNode {
			return "", false
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return "", false
		}
		n = next
	}
	return n.Value, n.Kind == yaml.ScalarNode
}

func TestTranslation(t *testing.T) {
	if got, ok := sourceScalar(t, templatePath, "Transform"); !ok || got != "AWS::Serverless-2016-10-31" {
		t.Errorf("Transform = %q, want AWS::Serverless-2016-10-31", got)
	}
	// sam build runs `make build-AutoTaggerFunction` in CodeUri.
	if got, _ := sourceScalar(t, templatePath, "Resources", functionID, "Properties", "CodeUri"); got != "." {
		t.Errorf("CodeUri = %q, want \".\" (the repository, where the Makefile is)", got)
	}
	tpl := translated(t, templatePath, nil)
	if tpl.FormatVersion != "2010-09-09" {
		t.Errorf("AWSTemplateFormatVersion = %q, want 2010-09-09", tpl.FormatVersion)
	}
	if tpl.Transform != nil {
		t.Errorf("translated Transform = %v, want none", tpl.Transform)
	}
	got := map[string]string{}
	for id, r := range tpl.Resources {
		got[id] = r.Type
	}
	if !maps.Equal(got, wantResources) {
		t.Errorf("translated resources = %v, want %v", got, wantResources)
	}
	if got := tpl.Resources[functionID].Metadata["BuildMethod"]; got != "makefile" {
		t.Errorf("%s Metadata.BuildMethod = %v, want makefile", functionID, got)
	}
}

// TestMotoCreatesWhatItCan checks the premise of the other tests: moto
// creates every resource of a type it supports that CloudFormation would
// create, and none of the types in motoCannotCreate, whose properties the
// tests read from the probes instead.
func TestMotoCreatesWhatItCan(t *testing.T) {
	stacks := map[string]*stack{
		"defaults":      taggerStack(t, nil),
		"everything on": taggerStack(t, everythingOn),
	}
	for name, s := range stacks {
		t.Run(name, func(t *testing.T) {
			for _, id := range slices.Sorted(maps.Keys(s.template.Resources)) {
				typ := s.template.Resources[id].Type
				_, made := s.physical[id]
				switch {
				case !s.created(id) && made:
					t.Errorf("moto created %s (%s), whose condition is false", id, typ)
				case s.created(id) && motoCannotCreate[typ] && made:
					t.Errorf("moto now creates %s (%s): drop it from motoCannotCreate and read it through its API", id, typ)
				case s.created(id) && !motoCannotCreate[typ] && !made:
					t.Errorf("moto did not create %s (%s)", id, typ)
				}
			}
		})
	}
	if s := stacks["everything on"]; len(s.probes) != len(wantResources) {
		t.Errorf("everything on: %d resources created, want all %d", len(s.probes), len(wantResources))
	}
}

// everythingOn is a stack with every optional part switched on.
var everythingOn = map[string]string{
	"TaggerRolePath":           "/governance/kms-autotagger/",
	"MemberRoleName":           "tagger",
	"MemberRolePath":           "/governance/kms-autotagger/",
	"MemberRoleExternalId":     "o-a1b2c3d4e5-kms",
	"OrganizationId":           "o-a1b2c3d4e5",
	"AlarmEmail":               "ops@example.com",
	"LogLevel":                 "DEBUG",
	"LogRetentionInDays":       "7",
	"MetricsNamespace":         "Governance/KMS",
	"ReservedConcurrency":      "25",
	"DeadLetterQueueKmsKeyArn": dlqKeyARN,
}

// dlqKeyARN is a customer managed key for the dead-letter queue.
const dlqKeyARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

func TestFunction(t *testing.T) {
	s := taggerStack(t, nil)
	fn := s.function(t)
	tests := []struct {
		name, got, want string
	}{
		{"Runtime", string(fn.Runtime), "provided.al2023"},
		{"Handler", aws.ToString(fn.Handler), "bootstrap"},
		{"Timeout", fmt.Sprint(aws.ToInt32(fn.Timeout)), "30"},
		{"MemorySize", fmt.Sprint(aws.ToInt32(fn.MemorySize)), "128"},
		{"Role", aws.ToString(fn.Role), s.roleARN(t, roleID)},
		{"code is the package's", aws.ToString(fn.CodeSha256), s.codeSHA},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	// moto's Lambda model keeps neither Architectures nor LoggingConfig:
	// they are read from the probe. Lambda's application log filter is at
	// its most detailed level whatever LogLevel is: the handler's slog
	// filters (LOG_LEVEL), and the metric lines pass at every level
	// (TestMetricLinesSurviveEveryLogLevel).
	for _, tt := range []struct {
		name   string
		params map[string]string
		level  string
	}{{"defaults", nil, "INFO"}, {"LogLevel DEBUG", everythingOn, "DEBUG"}} {
		t.Run(tt.name, func(t *testing.T) {
			s := taggerStack(t, tt.params)
			probe := s.probe(t, functionID)
			if got, want := probe["Architectures"], []any{"arm64"}; !reflect.DeepEqual(got, want) {
				t.Errorf("Architectures: got %v, want %v", got, want)
			}
			want := map[string]any{"LogFormat": "JSON", "ApplicationLogLevel": "TRACE"}
			if got := probe["LoggingConfig"]; !reflect.DeepEqual(got, want) {
				t.Errorf("LoggingConfig: got %v, want %v", got, want)
			}
			if got := s.environment(t)[config.EnvLogLevel]; got != tt.level {
				t.Errorf("%s: got %q, want %q", config.EnvLogLevel, got, tt.level)
			}
		})
	}
}

func TestRules(t *testing.T) {
	tests := []struct {
		tamperRepair string
		tagRule      bool
	}{{"true", true}, {"false", false}}
	for _, tt := range tests {
		t.Run("TamperRepair "+tt.tamperRepair, func(t *testing.T) {
			s := taggerStack(t, map[string]string{"TamperRepair": tt.tamperRepair})
			for _, c := range []struct {
				id   string
				want bool
			}{{ruleID, true}, {ruleID + "Permission", true}, {tagRuleID, tt.tagRule}, {tagRuleID + "Permission", tt.tagRule}} {
				if got := s.created(c.id); got != c.want {
					t.Errorf("%s created: got %v, want %v", c.id, got, c.want)
				}
			}
			if _, got := s.outputs["TagChangeRuleArn"]; got != tt.tagRule {
				t.Errorf("output TagChangeRuleArn: got %v, want %v", got, tt.tagRule)
			}
			if tt.tagRule {
				s.rule(t, tagRuleID) // exists in EventBridge
			}
		})
	}
	p := translated(t, templatePath, nil).Parameters["TamperRepair"]
	if p.DefaultString() != "true" || !slices.Equal(p.Allowed(), []string{"true", "false"}) {
		t.Errorf("TamperRepair Default %q AllowedValues %q, want \"true\" of [true false]", p.DefaultString(), p.Allowed())
	}
}

// creationPattern is the pattern KeyCreatedRule and the forward rules of
// deploy/ are meant to have: the successful calls that create a key, by
// the events package's list of them.
func creationPattern() map[string]any {
	return map[string]any{
		"source":      []any{events.SourceKMS},
		"detail-type": []any{events.DetailTypeAPICall},
		"detail": map[string]any{
			"eventSource": []any{events.EventSourceKMS},
			"eventName":   anys(events.CreationEventNames()),
			"errorCode":   []any{map[string]any{"exists": false}},
		},
	}
}

// tagChangePattern is the pattern TagChangeRule is meant to have in a stack
// of account whose function role is role: the successful tag changes of
// that account's keys (the only ones the tamper repair can find the
// creation of) by anyone but the sessions of that role.
func tagChangePattern(account, role string) map[string]any {
	return map[string]any{
		"source":      []any{events.SourceKMS},
		"detail-type": []any{events.DetailTypeAPICall},
		"account":     []any{account},
		"detail": map[string]any{
			"eventSource": []any{events.EventSourceKMS},
			"eventName":   anys(events.TagChangeEventNames()),
			"errorCode":   []any{map[string]any{"exists": false}},
			"userIdentity": map[string]any{
				"arn": []any{map[string]any{"anything-but": map[string]any{"prefix": "arn:aws:sts::" + account + ":assumed-role/" + role + "/"}}},
			},
		},
	}
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestRulePatternsAreExactlyTheIntendedOnes(t *testing.T) {
	stacks := []struct {
		name string
		s    *stack
	}{
		{"central account", taggerStack(t, nil)},
		// The excluded principal follows the stack's own role and account.
		{"another account", deploy(t, stackSpec{template: templatePath, account: memberAccount})},
	}
	for _, st := range stacks {
		t.Run(st.name, func(t *testing.T) {
			s := st.s
			tests := []struct {
				id   string
				want map[string]any
			}{
				{ruleID, creationPattern()},
				{tagRuleID, tagChangePattern(s.spec.account, s.physicalID(t, roleID))},
			}
			for _, tt := range tests {
				got := s.rule(t, tt.id).pattern
				if want := mustJSON(t, tt.want); !jsonEqual(t, []byte(got), want) {
					t.Errorf("%s EventPattern: got %s, want %s", tt.id, got, want)
				}
			}
		})
	}
}

// cfnRoleName matches the name CloudFormation gives a stack's function role,
// STACK-AutoTaggerFunctionRole-SUFFIX, as moto does too.
var cfnRoleName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*-` + roleID + `-[A-Za-z0-9]+$`)

// asTaggerOf returns a change of events that makes the ones of the function
// role of the stack that recorded ownTagEvent the events of s's function
// role instead: the role's name ends in a random suffix, which moto picks
// differently.
func asTaggerOf(t testing.TB, s *stack) func(map[string]any) {
	t.Helper()
	sample := readEvent(t, ownTagEvent)
	recorded, _ := lookup(sample, "detail", "userIdentity", "sessionContext", "sessionIssuer", "userName")
	from, _ := recorded.(string)
	to := s.physicalID(t, roleID)
	if !cfnRoleName.MatchString(from) || !cfnRoleName.MatchString(to) {
		t.Fatalf("%s is the tagger's TagResource of role %q; the stack's role is %q: want both named as CloudFormation names a stack's role", ownTagEvent, from, to)
	}
	return func(e map[string]any) {
		data := bytes.ReplaceAll(mustJSON(t, e), []byte(from), []byte(to))
		clear(e)
		if err := decodeJSON(data, &e); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRulePatternMatchesSamples(t *testing.T) {
	s := taggerStack(t, nil)
	own := asTaggerOf(t, s)
	evs := make([]map[string]any, len(eventSamples))
	for i, sample := range eventSamples {
		evs[i] = readEvent(t, sample.file)
		own(evs[i])
	}
	delivered := map[string][]bool{}
	for _, id := range ruleIDs {
		delivered[id] = newRouter(t, s.rule(t, id).pattern).deliver(t, evs)
	}
	for i, sample := range eventSamples {
		t.Run(sample.file, func(t *testing.T) {
			want := map[string]bool{ruleID: sample.creation, tagRuleID: sample.tagChange}
			for _, id := range ruleIDs {
				if got := delivered[id][i]; got != want[id] {
					t.Errorf("%s delivers %s: got %v, want %v", id, sample.file, got, want[id])
				}
			}
		})
	}
}

func TestRulePatternRejectsOtherCalls(t *testing.T) {
	s := taggerStack(t, nil)
	detail := eventDetail
	tests := []patternCase{
		{"CreateKey as recorded", "createkey_iamuser.json", nil, true},
		{"ReplicateKey as recorded", "replicatekey.json", nil, true},
		{"TagResource", "createkey_iamuser.json", func(e map[string]any) { detail(e)["eventName"] = "TagResource" }, false},
		{"UntagResource", "createkey_iamuser.json", func(e map[string]any) { detail(e)["eventName"] = "UntagResource" }, false},
		{"TagResource by the tagger", ownTagEvent, nil, false},
		{"TagResource by another principal", ownTagEvent, func(e map[string]any) { detail(e)["userIdentity"] = iamUserIdentity() }, false},
		{"UntagResource by another principal", ownTagEvent, func(e map[string]any) {
			detail(e)["eventName"] = "UntagResource"
			detail(e)["userIdentity"] = assumedRoleIdentity(centralAccount, "Admin", "mallory")
		}, false},
		{"ScheduleKeyDeletion", "createkey_iamuser.json", func(e map[string]any) { detail(e)["eventName"] = "ScheduleKeyDeletion" }, false},
		{"CreateAlias", "createkey_iamuser.json", func(e map[string]any) { detail(e)["eventName"] = "CreateAlias" }, false},
		{"CreateKey with an errorCode", "createkey_iamuser.json", func(e map[string]any) { detail(e)["errorCode"] = "LimitExceededException" }, false},
		{"ReplicateKey with an errorCode", "replicatekey.json", func(e map[string]any) { detail(e)["errorCode"] = "AlreadyExistsException" }, false},
		{"CreateKey with a null errorCode", "createkey_iamuser.json", func(e map[string]any) { detail(e)["errorCode"] = nil }, false},
		{"another event source", "createkey_iamuser.json", func(e map[string]any) { detail(e)["eventSource"] = "cloudhsm.amazonaws.com" }, false},
		{"another EventBridge source", "createkey_iamuser.json", func(e map[string]any) { e["source"] = "aws.cloudhsm" }, false},
		{"a service event, not an API call", "createkey_iamuser.json", func(e map[string]any) { e["detail-type"] = "AWS Service Event via CloudTrail" }, false},
		{"a lower-case eventName", "createkey_iamuser.json", func(e map[string]any) { detail(e)["eventName"] = "createkey" }, false},
	}
	checkPatternCases(t, ruleID, s.rule(t, ruleID).pattern, asTaggerOf(t, s), tests)
}

func TestTagChangeRulePattern(t *testing.T) {
	s := taggerStack(t, nil)
	taggerRole := s.physicalID(t, roleID)
	detail := eventDetail
	untag := func(e map[string]any) {
		detail(e)["eventName"] = "UntagResource"
		params := detail(e)["requestParameters"].(map[string]any)
		delete(params, "tags")
		params["tagKeys"] = []any{"CreatedBy"}
	}
	tests := []patternCase{
		{"TagResource by the tagger, as recorded", ownTagEvent, nil, false},
		{"UntagResource by the tagger", ownTagEvent, untag, false},
		{"TagResource by an IAM user", ownTagEvent, func(e map[string]any) { detail(e)["userIdentity"] = iamUserIdentity() }, true},
		{"UntagResource by an IAM user", ownTagEvent, func(e map[string]any) {
			untag(e)
			detail(e)["userIdentity"] = iamUserIdentity()
		}, true},
		{"TagResource by another assumed role", ownTagEvent, func(e map[string]any) {
			detail(e)["userIdentity"] = assumedRoleIdentity(centralAccount, "Admin", "mallory")
		}, true},
		{"UntagResource by another assumed role", ownTagEvent, func(e map[string]any) {
			untag(e)
			detail(e)["userIdentity"] = assumedRoleIdentity(centralAccount, "Admin", "mallory")
		}, true},
		{"TagResource by a role whose name extends the tagger's", ownTagEvent, func(e map[string]any) {
			detail(e)["userIdentity"] = assumedRoleIdentity(centralAccount, taggerRole+"-copy", "mallory")
		}, true},
		{"TagResource by a role of the tagger's name in another account", ownTagEvent, func(e map[string]any) {
			detail(e)["userIdentity"] = assumedRoleIdentity(memberAccount, taggerRole, "mallory")
		}, true},
		{"TagResource by the account's root user", ownTagEvent, func(e map[string]any) {
			detail(e)["userIdentity"] = map[string]any{"type": "Root", "principalId": centralAccount, "arn": "arn:aws:iam::" + centralAccount + ":root", "accountId": centralAccount}
		}, true},
		{"TagResource by another principal that failed", ownTagEvent, func(e map[string]any) {
			detail(e)["userIdentity"] = iamUserIdentity()
			detail(e)["errorCode"] = "AccessDeniedException"
		}, false},
		{"UntagResource by another principal that failed", ownTagEvent, func(e map[string]any) {
			untag(e)
			detail(e)["userIdentity"] = iamUserIdentity()
			detail(e)["errorCode"] = "KMSInvalidStateException"
		}, false},
		{"CreateKey by another principal", "createkey_iamuser.json", nil, false},
		{"ReplicateKey by another principal", "replicatekey.json", nil, false},
		{"ScheduleKeyDeletion by another principal", ownTagEvent, func(e map[string]any) {
			detail(e)["userIdentity"] = iamUserIdentity()
			detail(e)["eventName"] = "ScheduleKeyDeletion"
		}, false},
		{"TagResource of another service", ownTagEvent, func(e map[string]any) {
			detail(e)["userIdentity"] = iamUserIdentity()
			detail(e)["eventSource"] = "secretsmanager.amazonaws.com"
			e["source"] = "aws.secretsmanager"
		}, false},
		{"a service event, not an API call", ownTagEvent, func(e map[string]any) {
			detail(e)["userIdentity"] = iamUserIdentity()
			e["detail-type"] = "AWS Service Event via CloudTrail"
		}, false},
		// Forwarded from another region of this account
		// (deploy/region-forwarder.yaml): repaired like the home region's.
		{"TagResource in another region of this account", ownTagEvent, func(e map[string]any) {
			inRegion(e, "eu-west-1")
			detail(e)["userIdentity"] = iamUserIdentity()
		}, true},
	}
	pattern := s.rule(t, tagRuleID).pattern
	checkPatternCases(t, tagRuleID, pattern, asTaggerOf(t, s), tests)

	// A member account's tag change, which a rule of that account could put
	// on this bus (the organization may put aws.kms events there): the
	// repair could not find its creation event, so it never reaches the
	// function (the service control policy denies such changes instead).
	// moto gives a put event the account of the call, so the events are put
	// by the member account on a bus of its own with the rule's pattern.
	t.Run("in a member account", func(t *testing.T) {
		var evs []map[string]any
		for _, untagged := range []bool{false, true} {
			e := readEvent(t, ownTagEvent)
			if untagged {
				untag(e)
			}
			inAccount(e, memberAccount)
			detail(e)["userIdentity"] = assumedRoleIdentity(memberAccount, "Admin", "mallory")
			evs = append(evs, e)
		}
		for i, got := range newRouterIn(t, memberAccount, pattern).deliver(t, evs) {
			if got {
				t.Errorf("%s delivers the member account's %s: want not", tagRuleID, detail(evs[i])["eventName"])
			}
		}
		// The same events as this account's are delivered: only the
		// account keeps them out.
		for i, e := range evs {
			inAccount(e, centralAccount)
			detail(e)["userIdentity"] = assumedRoleIdentity(centralAccount, "Admin", "mallory")
			evs[i] = e
		}
		for i, got := range newRouter(t, pattern).deliver(t, evs) {
			if !got {
				t.Errorf("%s does not deliver this account's %s: want it delivered", tagRuleID, detail(evs[i])["eventName"])
			}
		}
	})
}

// inAccount makes the event one of account: the envelope's account, the
// record's recipient account and the account in its resources' ARNs.
func inAccount(e map[string]any, account string) {
	from, _ := e["account"].(string)
	e["account"] = account
	eventDetail(e)["recipientAccountId"] = account
	if res, ok := e["resources"].([]any); ok {
		for i, r := range res {
			if s, ok := r.(string); ok {
				res[i] = strings.Replace(s, ":"+from+":", ":"+account+":", 1)
			}
		}
	}
}

// inRegion makes the event one of region: the envelope's region, the
// record's awsRegion and the region in its resources' ARNs.
func inRegion(e map[string]any, region string) {
	from, _ := e["region"].(string)
	e["region"] = region
	eventDetail(e)["awsRegion"] = region
	if res, ok := e["resources"].([]any); ok {
		for i, r := range res {
			if s, ok := r.(string); ok {
				res[i] = strings.Replace(s, ":"+from+":", ":"+region+":", 1)
			}
		}
	}
}

// conditionValue returns the value of key under the condition operator op
// of stmt.
func conditionValue(stmt statement, op, key string) (any, bool) {
	return lookup(map[string]any(stmt), "Condition", op, key)
}

// stringList returns v, a string or a list of strings, as a list.
func stringList(v any) ([]string, bool) {
	switch x := v.(type) {
	case string:
		return []string{x}, true
	case []any:
		out := make([]string, 0, len(x))
		for _, el := range x {
			s, ok := el.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

func sortStrings(s []string) []string {
	slices.Sort(s)
	return s
}

// checkRetryPolicy checks a target's retry policy against EventBridge's
// limits.
func checkRetryPolicy(t testing.TB, attempts, age *int32) {
	t.Helper()
	if attempts == nil || *attempts < 0 || *attempts > 185 {
		t.Errorf("RetryPolicy.MaximumRetryAttempts = %v, want 0 to 185", aws.ToInt32(attempts))
	}
	if age == nil || *age < 60 || *age > 86400 {
		t.Errorf("RetryPolicy.MaximumEventAgeInSeconds = %v, want 60 to 86400", aws.ToInt32(age))
	}
}

func TestRuleTargetAndPermission(t *testing.T) {
	for _, tamperRepair := range []string{"true", "false"} {
		t.Run("TamperRepair "+tamperRepair, func(t *testing.T) {
			s := taggerStack(t, map[string]string{"TamperRepair": tamperRepair})
			fnARN, queueARN := s.output(t, "FunctionArn"), s.queue(t, queueID)["QueueArn"]
			perms := s.functionPolicy(t)
			var rules []string
			for _, id := range ruleIDs {
				if !s.created(id) {
					continue
				}
				r := s.rule(t, id)
				rules = append(rules, r.arn)
				if r.state != "ENABLED" {
					t.Errorf("%s State: got %s, want ENABLED", id, r.state)
				}
				if len(r.targets) != 1 {
					t.Fatalf("%s targets: got %d, want one", id, len(r.targets))
				}
				target := r.targets[0]
				if got := aws.ToString(target.Arn); got != fnARN {
					t.Errorf("%s target: got %s, want the function %s", id, got, fnARN)
				}
				if target.DeadLetterConfig == nil || aws.ToString(target.DeadLetterConfig.Arn) != queueARN {
					t.Errorf("%s target dead-letter config: got %+v, want the queue %s", id, target.DeadLetterConfig, queueARN)
				}
				if target.RetryPolicy == nil {
					t.Errorf("%s target has no RetryPolicy", id)
				} else {
					checkRetryPolicy(t, target.RetryPolicy.MaximumRetryAttempts, target.RetryPolicy.MaximumEventAgeInSeconds)
				}
				var granted []statement
				for _, p := range perms {
					if arn, _ := conditionValue(p, "ArnLike", "AWS:SourceArn"); arn == r.arn {
						granted = append(granted, p)
					}
				}
				if len(granted) != 1 {
					t.Fatalf("%s: function policy statements for the rule: got %d, want one (%v)", id, len(granted), perms)
				}
				p := granted[0]
				for _, c := range []struct {
					name string
					got  any
					want any
				}{
					{"Effect", p["Effect"], "Allow"},
					{"Action", p["Action"], "lambda:InvokeFunction"},
					{"Principal", p["Principal"], map[string]any{"Service": "events.amazonaws.com"}},
					{"Resource", p["Resource"], fnARN},
				} {
					if !reflect.DeepEqual(c.got, c.want) {
						t.Errorf("%s permission %s: got %v, want %v", id, c.name, c.got, c.want)
					}
				}
			}
			// The sweep's schedule invokes the function too (TestSweep).
			if s.created("SweepScheduleRule") {
				rules = append(rules, s.rule(t, "SweepScheduleRule").arn)
			}
			if len(perms) != len(rules) {
				t.Errorf("function policy: got %d statements, want one per rule %q: %v", len(perms), rules, perms)
			}
		})
	}
}

// specialSettings are the handler settings that no parameter feeds, with
// the value each must have in stack s.
func specialSettings(t testing.TB, s *stack) map[string]string {
	t.Helper()
	return map[string]string{
		config.EnvDeadLetterQueueURL: s.physicalID(t, queueID),
		config.EnvHomeAccountID:      s.spec.account,
		config.EnvTaggerRoleARN:      s.roleARN(t, roleID),
		config.EnvSweepQueueURL:      sweepQueueURL(t, s),
	}
}

// sweepQueueURL is the URL of the sweep's queue in s, "" when the sweep is
// off.
func sweepQueueURL(t testing.TB, s *stack) string {
	t.Helper()
	if !s.created("SweepQueue") {
		return ""
	}
	return s.physicalID(t, "SweepQueue")
}

// deployedDefaults are the settings whose default in a stack differs, by
// design, from the handler's own default, with the stack's. None does now:
// the member role's path is /kms-autotagger/ in both.
var deployedDefaults = map[string]string{}

// endpointPlaceholders are the AWS_ENDPOINT_URL_* variables declared empty
// for sam local invoke --env-vars, one per service the function calls.
var endpointPlaceholders = []string{
	"AWS_ENDPOINT_URL_ACCOUNT",
	"AWS_ENDPOINT_URL_CLOUDFORMATION",
	"AWS_ENDPOINT_URL_CLOUDTRAIL",
	"AWS_ENDPOINT_URL_KMS",
	"AWS_ENDPOINT_URL_ORGANIZATIONS",
	"AWS_ENDPOINT_URL_S3",
	"AWS_ENDPOINT_URL_SQS",
	"AWS_ENDPOINT_URL_STS",
}

func TestEnvironment(t *testing.T) {
	s := taggerStack(t, nil)
	env := s.environment(t)
	special := specialSettings(t, s)
	written, _ := lookup(s.template.Resources[functionID].Properties, "Environment", "Variables")
	declared, _ := written.(map[string]any)

	settings := map[string]bool{}
	for _, setting := range config.Settings {
		settings[setting.Env] = true
		t.Run(setting.Env, func(t *testing.T) {
			got, ok := env[setting.Env]
			if !ok {
				t.Fatalf("the function's environment has no %s", setting.Env)
			}
			if want, isSpecial := special[setting.Env]; isSpecial {
				if got != want {
					t.Errorf("%s: got %q, want %q", setting.Env, got, want)
				}
				return
			}
			// A parameter feeds the setting, and a stack deployed with the
			// defaults behaves as the handler does by default.
			ref, _ := lookup(declared[setting.Env], "Ref")
			name, _ := ref.(string)
			if p, ok := s.template.Parameters[name]; !ok || !p.HasDefault() {
				t.Errorf("%s = %v in the template, want a Ref to a parameter with a Default", setting.Env, declared[setting.Env])
			}
			want, differs := deployedDefaults[setting.Env]
			switch {
			case differs && want == setting.Default:
				t.Errorf("%s: the handler's default is the stack's %q now: drop it from deployedDefaults", setting.Env, want)
			case !differs:
				want = setting.Default
			}
			if got != want {
				t.Errorf("%s in a stack with defaults: got %q, want %q", setting.Env, got, want)
			}
		})
	}
	for name := range special {
		if !settings[name] {
			t.Errorf("%s is not in config.Settings: drop it from specialSettings", name)
		}
	}
	for _, name := range endpointPlaceholders {
		if v, ok := env[name]; !ok || v != "" {
			t.Errorf("%s = %q (declared %v), want \"\": a placeholder for sam local --env-vars", name, v, ok)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(env)) {
		if !settings[name] && !slices.Contains(endpointPlaceholders, name) {
			t.Errorf("unexpected environment variable %s = %q: want only config.Settings and %q", name, env[name], endpointPlaceholders)
		}
	}
}

func TestEnvironmentIsAValidConfiguration(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]string
		check  func(t *testing.T, c config.Config)
	}{
		{"defaults", nil, func(t *testing.T, c config.Config) {
			if !c.TamperRepair || c.MemberRoleName != "" || c.MemberRolePath != "/kms-autotagger/" || c.MemberExternalID != "" || c.MetricsNamespace != metrics.DefaultNamespace {
				t.Errorf("config = %+v, want tamper repair on, no member role, namespace %s", c, metrics.DefaultNamespace)
			}
			if c.TaggerRolePath != "/kms-autotagger/" || !strings.Contains(c.TaggerRoleARN, ":role/kms-autotagger/") {
				t.Errorf("TaggerRolePath %q, TaggerRoleARN %q, want the role on /kms-autotagger/", c.TaggerRolePath, c.TaggerRoleARN)
			}
		}},
		{"tagger role path", map[string]string{"TaggerRolePath": "/governance/kms-autotagger/"}, func(t *testing.T, c config.Config) {
			if c.TaggerRolePath != "/governance/kms-autotagger/" || !strings.Contains(c.TaggerRoleARN, ":role/governance/kms-autotagger/") {
				t.Errorf("TaggerRolePath %q, TaggerRoleARN %q, want the role on /governance/kms-autotagger/", c.TaggerRolePath, c.TaggerRoleARN)
			}
		}},
		{"cross-account", map[string]string{
			"MemberRoleName": "kms-autotagger-member", "MemberRolePath": "/governance/",
			"MemberRoleExternalId": "o-a1b2c3d4e5-kms", "OrganizationId": "o-a1b2c3d4e5",
		}, func(t *testing.T, c config.Config) {
			if c.MemberRoleName != "kms-autotagger-member" || c.MemberRolePath != "/governance/" || c.MemberExternalID != "o-a1b2c3d4e5-kms" {
				t.Errorf("member role = %q %q %q, want the parameters", c.MemberRoleName, c.MemberRolePath, c.MemberExternalID)
			}
		}},
		{"tamper repair and metrics off", map[string]string{"TamperRepair": "false", "MetricsNamespace": "-"}, func(t *testing.T, c config.Config) {
			if c.TamperRepair || c.MetricsNamespace != "" {
				t.Errorf("TamperRepair, MetricsNamespace = %v, %q, want false, \"\"", c.TamperRepair, c.MetricsNamespace)
			}
		}},
		{"tags", map[string]string{
			"TagKeyPrefix": "governance:", "CreatedViaTagName": "-", "StaticTags": "Team=core,CostCenter=42",
			"StaticTagKeys": "Team,CostCenter", "MetricsNamespace": "Governance/KMS",
		}, func(t *testing.T, c config.Config) {
			if c.TagKeyPrefix != "governance:" || c.Names.CreatedVia != "" || len(c.StaticTags) != 2 || c.MetricsNamespace != "Governance/KMS" {
				t.Errorf("config = %+v, want the parameters", c)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := taggerStack(t, tt.params)
			env := s.environment(t)
			c, err := config.FromEnv(func(name string) string { return env[name] })
			if err != nil {
				t.Fatalf("config.FromEnv of the stack's environment: %v", err)
			}
			if want := s.physicalID(t, queueID); c.DeadLetterQueueURL != want {
				t.Errorf("DeadLetterQueueURL: got %q, want the queue %q", c.DeadLetterQueueURL, want)
			}
			if c.HomeAccountID != s.spec.account {
				t.Errorf("HomeAccountID: got %q, want the stack's account %q", c.HomeAccountID, s.spec.account)
			}
			if want := s.roleARN(t, roleID); c.TaggerRoleARN != want {
				t.Errorf("TaggerRoleARN: got %q, want the function's role %q", c.TaggerRoleARN, want)
			}
			tt.check(t, c)
		})
	}
}

// TestParameters checks what sam deploy --guided and the console show. That
// every parameter is used and every Default is within its constraints is
// cfn-lint's (W2001, E2015) in make lint.
func TestParameters(t *testing.T) {
	tpl := translated(t, templatePath, nil)
	for _, name := range slices.Sorted(maps.Keys(tpl.Parameters)) {
		if !tpl.Parameters[name].HasDefault() {
			t.Errorf("parameter %s has no Default; sam deploy --guided must need only a stack name", name)
		}
	}
	for _, name := range []string{"LogRetentionInDays", "ReservedConcurrency", "AlarmEmail", "StaticTagKeys",
		"TamperRepair", "TaggerRolePath", "MemberRoleName", "MemberRolePath", "MemberRoleExternalId", "OrganizationId",
		"MetricsNamespace", "DeadLetterQueueKmsKeyArn"} {
		if _, ok := tpl.Parameters[name]; !ok {
			t.Errorf("no parameter %s", name)
		}
	}
	if !tpl.Parameters["MemberRoleExternalId"].NoEcho {
		t.Error("MemberRoleExternalId NoEcho = false, want true")
	}
}

// TestParameterPatterns checks that the parameters of the cross-account
// settings accept what the handler accepts and refuse what it refuses, so
// that a stack CloudFormation creates is never one whose function refuses
// its configuration. CloudFormation checks the constraints (neither moto
// nor cfn-lint does for given values); their AllowedPatterns use only
// syntax Java's and Go's regular expressions share.
func TestParameterPatterns(t *testing.T) {
	tpl := translated(t, templatePath, nil)
	tests := []struct {
		param, env string
		// with are other settings the value needs to be valid.
		with      map[string]string
		good, bad []string
	}{
		{"MemberRoleName", config.EnvMemberRoleName, nil,
			[]string{"", "kms-autotagger-member", "a+b=c,d.e@f_g-h", strings.Repeat("r", 64)},
			[]string{"a/b", "has space", strings.Repeat("r", 65)}},
		{"MemberRolePath", config.EnvMemberRolePath, nil,
			[]string{"/", "/governance/", "/a/b/", "/kms-autotagger/", "/" + strings.Repeat("p", 510) + "/"},
			[]string{"governance", "/governance", "governance/", "/a b/", "/a*/", "/a?/", "/*/", "/a//b/", "/" + strings.Repeat("p", 511) + "/"}},
		{"TaggerRolePath", config.EnvTaggerRolePath, nil,
			[]string{"/kms-autotagger/", "/governance/kms-autotagger/", "/a+b=c,d.e@f_g-h/", "/" + strings.Repeat("p", 510) + "/"},
			[]string{"/", "kms-autotagger", "/kms-autotagger", "/kms autotagger/", "/kms-autotagger*/", "/kms-autotagger/*", "/k?/", "//", "/a//b/", "/" + strings.Repeat("p", 511) + "/"}},
		{"MemberRoleExternalId", config.EnvMemberExternalID, map[string]string{config.EnvMemberRoleName: "kms-autotagger-member"},
			[]string{"", "ab", "o-a1b2c3d4e5-kms", "x:y/z@w", strings.Repeat("e", 1224)},
			[]string{"a", "has space", "semi;colon", strings.Repeat("e", 1225)}},
	}
	for _, tt := range tests {
		t.Run(tt.param, func(t *testing.T) {
			p, ok := tpl.Parameters[tt.param]
			if !ok {
				t.Fatalf("no parameter %s", tt.param)
			}
			accepts := parameterAccepts(t, p)
			for _, v := range tt.good {
				if !accepts(v) {
					t.Errorf("parameter %s refuses %q, want accepted", tt.param, v)
				}
				if err := configWith(tt.env, v, tt.with); err != nil {
					t.Errorf("config.FromEnv refuses %s=%q: %v; the test's good value is wrong", tt.env, v, err)
				}
			}
			for _, v := range tt.bad {
				if accepts(v) {
					t.Errorf("parameter %s accepts %q, want refused (the handler refuses it)", tt.param, v)
				}
				if configWith(tt.env, v, tt.with) == nil {
					t.Errorf("config.FromEnv accepts %s=%q; the test's bad value is wrong", tt.env, v)
				}
			}
		})
	}
	// "-" recognises no other tagger in the handler; the template refuses
	// it, since the function's role is always on the path and the policies
	// of deploy/ exempt the roles by it.
	if parameterAccepts(t, tpl.Parameters["TaggerRolePath"])("-") {
		t.Error(`TaggerRolePath accepts "-", want refused: the role is always on a path of its own`)
	}
	accepts := parameterAccepts(t, tpl.Parameters["OrganizationId"])
	for _, v := range []string{"", "o-a1b2c3d4e5", "o-abcdefghij0123456789"} {
		if !accepts(v) {
			t.Errorf("OrganizationId refuses %q, want accepted", v)
		}
	}
	for _, v := range []string{"r-ab12", "o-short", "123456789012", "o-A1B2C3D4E5"} {
		if accepts(v) {
			t.Errorf("OrganizationId accepts %q, want refused", v)
		}
	}
}

// parameterAccepts returns whether CloudFormation takes a value for p, by
// its AllowedPattern (which CloudFormation matches against the whole
// value), AllowedValues, MinLength and MaxLength.
func parameterAccepts(t testing.TB, p parameter) func(string) bool {
	t.Helper()
	var re *regexp.Regexp
	if p.AllowedPattern != "" {
		var err error
		if re, err = regexp.Compile("^(?:" + p.AllowedPattern + ")$"); err != nil {
			t.Fatalf("AllowedPattern %q: %v", p.AllowedPattern, err)
		}
	}
	length := func(n json.Number, def int64) int64 {
		if n == "" {
			return def
		}
		v, err := n.Int64()
		if err != nil {
			t.Fatalf("length %q: %v", n, err)
		}
		return v
	}
	minLen, maxLen := length(p.MinLength, 0), length(p.MaxLength, 4096)
	allowed := p.Allowed()
	return func(v string) bool {
		n := int64(len(v))
		return n >= minLen && n <= maxLen &&
			(re == nil || re.MatchString(v)) &&
			(allowed == nil || slices.Contains(allowed, v))
	}
}

// configWith runs config.FromEnv with env set to v, the settings of with,
// and every other setting at its default.
func configWith(env, v string, with map[string]string) error {
	_, err := config.FromEnv(func(name string) string {
		if name == env {
			return v
		}
		return with[name]
	})
	return err
}

func TestDurationsFitTheTimeout(t *testing.T) {
	s := taggerStack(t, nil)
	timeout := time.Duration(aws.ToInt32(s.function(t).Timeout)) * time.Second
	env := s.environment(t)
	for _, name := range []string{config.EnvMaxBackoff, config.EnvDeadLetterReserve} {
		d, err := time.ParseDuration(env[name])
		if err != nil {
			t.Errorf("%s in a stack with defaults: %v", name, err)
			continue
		}
		if d <= 0 || d >= timeout/2 {
			t.Errorf("%s in a stack with defaults: got %v, want above 0 and under half the %v timeout", name, d, timeout)
		}
	}
}

func TestFunctionRole(t *testing.T) {
	tpl := translated(t, templatePath, nil)
	if ids := tpl.resourcesOfType("AWS::IAM::ManagedPolicy"); len(ids) != 0 {
		t.Errorf("AWS::IAM::ManagedPolicy resources = %v, want none: the function's permissions are inline policies of its role", ids)
	}
	// AWS::IAM::Policy is an inline policy too, one the role's own Policies
	// cannot hold: its resource, the log group, follows the function, which
	// follows the role.
	if ids := tpl.resourcesOfType("AWS::IAM::Policy"); !slices.Equal(ids, []string{logsPolicyID}) {
		t.Errorf("AWS::IAM::Policy resources = %v, want only %s", ids, logsPolicyID)
	}
	// IAM is global: a fixed name would collide between the stacks of two
	// regions.
	for _, p := range []string{"RoleName", "PermissionsBoundary"} {
		if v, ok := tpl.Resources[roleID].Properties[p]; ok {
			t.Errorf("role %s = %v, want none", p, v)
		}
	}
	for _, tt := range []struct {
		name   string
		params map[string]string
	}{{"defaults", nil}, {"TaggerRolePath given", everythingOn}} {
		t.Run(tt.name, func(t *testing.T) {
			s := taggerStack(t, tt.params)
			want := []statement{{"Effect": "Allow", "Principal": map[string]any{"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}}
			if got := s.trust(t, roleID); !reflect.DeepEqual(got, want) {
				t.Errorf("trust policy: got %v, want %v", got, want)
			}
			// On the taggers' path, as IAM has the role.
			path := s.param(t, "TaggerRolePath")
			out, err := iam.NewFromConfig(s.cfg).GetRole(context.Background(), &iam.GetRoleInput{RoleName: aws.String(s.physicalID(t, roleID))})
			if err != nil {
				t.Fatal(err)
			}
			if got := aws.ToString(out.Role.Path); got != path {
				t.Errorf("Path: got %q, want TaggerRolePath %q", got, path)
			}
			if got, want := aws.ToString(out.Role.Arn), "arn:aws:iam::"+s.spec.account+":role"+path+s.physicalID(t, roleID); got != want {
				t.Errorf("ARN: got %s, want %s", got, want)
			}
			if got := s.environment(t)[config.EnvTaggerRolePath]; got != path {
				t.Errorf("%s: got %q, want the role's path %q", config.EnvTaggerRolePath, got, path)
			}
			if got := slices.Sorted(maps.Keys(s.inlinePolicies(t, roleID))); !slices.Equal(got, []string{"tag-kms-keys", "write-own-logs"}) {
				t.Errorf("inline policies: got %q, want [tag-kms-keys write-own-logs]", got)
			}
			// No managed policy (AWSLambdaBasicExecutionRole allowed the
			// logs of every group): moto attaches no ManagedPolicyArns, so
			// from the probe too.
			checkNoManagedPolicies(t, s, roleID)
			if got := s.probe(t, logsPolicyID)["Roles"]; !reflect.DeepEqual(got, []any{s.physicalID(t, roleID)}) {
				t.Errorf("%s Roles: got %v, want only the function's role", logsPolicyID, got)
			}
		})
	}
}

// wantGrant is one action the function's role may take: on which
// resources, and under which condition (nil for none).
type wantGrant struct {
	resources []string
	condition map[string]any
}

func TestFunctionPolicyIsLeastPrivilege(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]string
	}{
		{"defaults", nil},
		{"tamper repair off", map[string]string{"TamperRepair": "false"}},
		{"member role in the organization", map[string]string{"MemberRoleName": "kms-autotagger-member", "OrganizationId": orgID}},
		{"member role in the organization, tamper repair off", map[string]string{
			"MemberRoleName": "kms-autotagger-member", "MemberRolePath": "/governance/", "OrganizationId": orgID, "TamperRepair": "false",
		}},
		{"tamper repair and the stack tags off: no CloudTrail, no CloudFormation", map[string]string{
			"TamperRepair": "false", "CreatedByUserTagName": "-", "CreatedByStackTagName": "-",
		}},
		{"dead-letter queue key", map[string]string{"DeadLetterQueueKmsKeyArn": dlqKeyARN}},
		{"everything on", everythingOn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := taggerStack(t, tt.params)
			keys := []string{"arn:aws:kms:*:" + s.spec.account + ":key/*"}
			logs := []string{"arn:aws:logs:" + s.spec.region + ":" + s.spec.account + ":log-group:" + s.physicalID(t, logGroupID) + ":*"}
			// The queues the role may send to besides the dead-letter queue.
			sweepSends := map[string]bool{}
			tagKeysCond := func(op string) map[string]any {
				return map[string]any{"Null": map[string]any{"aws:TagKeys": "false"}, op: map[string]any{"aws:TagKeys": anys(configuredTagKeys(t, s))}}
			}
			want := map[string]wantGrant{
				"kms:DescribeKey":      {keys, nil},
				"kms:ListResourceTags": {keys, nil},
				"kms:TagResource":      {keys, tagKeysCond("ForAllValues:StringEquals")},
				// Case variants of the owned keys too (the exact-set rule).
				"kms:UntagResource":    {keys, tagKeysCond("ForAllValues:StringEqualsIgnoreCase")},
				"sqs:SendMessage":      {[]string{s.queue(t, queueID)["QueueArn"]}, nil},
				"logs:CreateLogStream": {logs, nil},
				"logs:PutLogEvents":    {logs, nil},
			}
			if key := s.param(t, "DeadLetterQueueKmsKeyArn"); key != "" {
				want["kms:GenerateDataKey"] = wantGrant{[]string{key}, nil}
				want["kms:Decrypt"] = wantGrant{[]string{key}, nil}
			}
			// LookupEvents and DescribeStackResources support no
			// resource-level permission: CloudTrail's record of a key's
			// creation (tamper repair) and of its stack's operator
			// (CreatedByUser); the stack whose resource a key is
			// (CreatedByStack, CreatedByUser).
			userOn, stackOn := s.param(t, "CreatedByUserTagName") != "-", s.param(t, "CreatedByStackTagName") != "-"
			if s.param(t, "TamperRepair") == "true" || userOn {
				want["cloudtrail:LookupEvents"] = wantGrant{[]string{"*"}, nil}
			}
			if userOn || stackOn {
				want["cloudformation:DescribeStackResources"] = wantGrant{[]string{"*"}, nil}
			}
			// The sweep: list keys and regions (no resource-level
			// permission), work through its own queue only.
			if s.created("SweepQueue") {
				want["cloudtrail:LookupEvents"] = wantGrant{[]string{"*"}, nil}
				want["kms:ListKeys"] = wantGrant{[]string{"*"}, nil}
				want["account:ListRegions"] = wantGrant{[]string{"*"}, nil}
				sweepQueue := []string{s.queue(t, "SweepQueue")["QueueArn"]}
				for _, a := range []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"} {
					want[a] = wantGrant{sweepQueue, nil}
				}
				sweepSends[sweepQueue[0]] = true
			}
			if name := s.param(t, "MemberRoleName"); name != "" {
				// Always within the organization (the template's Rules
				// make OrganizationId required with MemberRoleName).
				want["sts:AssumeRole"] = wantGrant{[]string{"arn:aws:iam::*:role" + s.param(t, "MemberRolePath") + name},
					map[string]any{"StringEquals": map[string]any{"aws:ResourceOrgID": s.param(t, "OrganizationId")}}}
			}
			var actions []string
			for _, stmt := range s.allInline(t, roleID) {
				for _, forbidden := range []string{"NotAction", "NotResource", "Principal", "NotPrincipal"} {
					if _, ok := stmt[forbidden]; ok {
						t.Errorf("statement %v has %s", stmt["Sid"], forbidden)
					}
				}
				if stmt["Effect"] != "Allow" {
					t.Errorf("statement %v Effect: got %v, want Allow", stmt["Sid"], stmt["Effect"])
				}
				acts, ok := stringList(stmt["Action"])
				if !ok || len(acts) == 0 {
					t.Errorf("statement %v Action: got %#v, want action names", stmt["Sid"], stmt["Action"])
					continue
				}
				resources, ok := stringList(stmt["Resource"])
				if !ok {
					t.Errorf("statement %v Resource: got %#v, want ARNs", stmt["Sid"], stmt["Resource"])
				}
				cond, _ := stmt["Condition"].(map[string]any)
				for _, a := range acts {
					actions = append(actions, a)
					w, allowed := want[a]
					if !allowed {
						t.Errorf("statement %v allows %s; want only %q here", stmt["Sid"], a, slices.Sorted(maps.Keys(want)))
						continue
					}
					if a == "sqs:SendMessage" && len(resources) == 1 && sweepSends[resources[0]] {
						// the sweep planning its partitions: its own queue
					} else if !slices.Equal(resources, w.resources) {
						t.Errorf("statement %v allows %s on %q, want only %q", stmt["Sid"], a, resources, w.resources)
					}
					if !reflect.DeepEqual(withoutEmptyTagKeys(cond), w.condition) && !(cond == nil && w.condition == nil) {
						t.Errorf("statement %v Condition for %s: got %v, want %v", stmt["Sid"], a, cond, w.condition)
					}
				}
			}
			if w := slices.Sorted(maps.Keys(want)); !slices.Equal(slices.Compact(sortStrings(actions)), w) {
				t.Errorf("actions: got %q, want %q", actions, w)
			}
		})
	}
}

// withoutEmptyTagKeys returns cond with the empty entries of its
// aws:TagKeys lists (tags switched off: no key is empty, so they allow
// nothing) left out and the others sorted, for comparison.
func withoutEmptyTagKeys(cond map[string]any) map[string]any {
	if cond == nil {
		return nil
	}
	out := map[string]any{}
	for op, v := range cond {
		keys, _ := v.(map[string]any)
		m := map[string]any{}
		for k, vals := range keys {
			if list, ok := vals.([]any); ok && strings.EqualFold(k, "aws:TagKeys") {
				var kept []string
				for _, el := range list {
					if el != "" {
						kept = append(kept, scalarString(el))
					}
				}
				vals = anys(sortStrings(kept))
			}
			m[k] = vals
		}
		out[op] = m
	}
	return out
}

// configuredTagKeys returns the tag keys the handler of stack s may write,
// as its environment configures them, sorted.
func configuredTagKeys(t testing.TB, s *stack) []string {
	t.Helper()
	env := s.environment(t)
	c, err := config.FromEnv(func(name string) string { return env[name] })
	if err != nil {
		t.Fatalf("config.FromEnv: %v", err)
	}
	policy, err := c.Policy()
	if err != nil {
		t.Fatalf("Policy: %v", err)
	}
	return sortStrings(policy.Keys())
}

// tagKeys returns the aws:TagKeys the one statement of stmts that allows
// action allows under the condition operator op, without the empty entries
// of tags switched off (no tag key is empty, so they allow nothing),
// failing unless there is exactly one such statement with the expected
// condition shape.
func tagKeys(t testing.TB, stmts []statement, action, op string) []string {
	t.Helper()
	var found []statement
	for _, stmt := range stmts {
		if acts, _ := stringList(stmt["Action"]); slices.Contains(acts, action) {
			found = append(found, stmt)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s statements: got %d, want one", action, len(found))
	}
	if got, _ := conditionValue(found[0], "Null", "aws:TagKeys"); got != "false" {
		t.Errorf(`%s Condition.Null["aws:TagKeys"]: got %#v, want "false"`, action, got)
	}
	v, ok := conditionValue(found[0], op, "aws:TagKeys")
	list, isList := stringList(v)
	if !ok || !isList {
		t.Fatalf(`%s Condition.%q."aws:TagKeys": got %#v, want a list of keys (Condition %v)`, action, op, v, found[0]["Condition"])
	}
	var keys []string
	for _, k := range list {
		if k != "" {
			keys = append(keys, k)
		}
	}
	return sortStrings(keys)
}

func TestTagKeysCondition(t *testing.T) {
	governance := []string{
		config.EnvCreatedBy, config.EnvCreatedByRole, config.EnvCreatedAt,
		config.EnvCreatedVia, config.EnvCreationEventID, config.EnvReplicaOf, config.EnvCreatedByUser,
		config.EnvCreatedByStack, config.EnvEvidence,
	}
	tests := []struct {
		name   string
		params map[string]string
		want   []string
	}{
		{"defaults", nil, []string{"CreatedAt", "CreatedBy", "CreatedByEvidence", "CreatedByRole", "CreatedByStack", "CreatedByUser", "CreatedVia", "CreationEventId", "ReplicaOf"}},
		{
			"prefix",
			map[string]string{"TagKeyPrefix": "governance:"},
			[]string{"governance:CreatedAt", "governance:CreatedBy", "governance:CreatedByEvidence", "governance:CreatedByRole", "governance:CreatedByStack", "governance:CreatedByUser", "governance:CreatedVia", "governance:CreationEventId", "governance:ReplicaOf"},
		},
		{
			"tags switched off",
			map[string]string{"CreatedViaTagName": "-", "ReplicaOfTagName": "-"},
			[]string{"CreatedAt", "CreatedBy", "CreatedByEvidence", "CreatedByRole", "CreatedByStack", "CreatedByUser", "CreationEventId"},
		},
		{
			"renamed tag",
			map[string]string{"CreatedByTagName": "Owner", "TagKeyPrefix": "x-"},
			[]string{"x-CreatedAt", "x-CreatedByEvidence", "x-CreatedByRole", "x-CreatedByStack", "x-CreatedByUser", "x-CreatedVia", "x-CreationEventId", "x-Owner", "x-ReplicaOf"},
		},
		{
			"static tags",
			map[string]string{"StaticTags": "Team=core,CostCenter=42", "StaticTagKeys": "Team,CostCenter"},
			[]string{"CostCenter", "CreatedAt", "CreatedBy", "CreatedByEvidence", "CreatedByRole", "CreatedByStack", "CreatedByUser", "CreatedVia", "CreationEventId", "ReplicaOf", "Team"},
		},
		{
			"everything off but static tags",
			map[string]string{
				"CreatedByTagName": "-", "CreatedByRoleTagName": "-", "CreatedAtTagName": "-",
				"CreatedViaTagName": "-", "CreationEventIdTagName": "-", "ReplicaOfTagName": "-",
				"CreatedByEvidenceTagName": "-", "CreatedByUserTagName": "-", "CreatedByStackTagName": "-",
				"StaticTags": "Team=core", "StaticTagKeys": "Team",
			},
			[]string{"Team"},
		},
		{
			"tamper repair off, member role on",
			map[string]string{"TamperRepair": "false", "MemberRoleName": "kms-autotagger-member", "OrganizationId": orgID},
			[]string{"CreatedAt", "CreatedBy", "CreatedByEvidence", "CreatedByRole", "CreatedByStack", "CreatedByUser", "CreatedVia", "CreationEventId", "ReplicaOf"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := taggerStack(t, tt.params)
			stmts := s.allInline(t, roleID)
			got := tagKeys(t, stmts, "kms:TagResource", "ForAllValues:StringEquals")
			if !slices.Equal(got, tt.want) {
				t.Errorf("aws:TagKeys: got %q, want %q", got, tt.want)
			}
			// The handler removes the same keys, and their case variants.
			if untag := tagKeys(t, stmts, "kms:UntagResource", "ForAllValues:StringEqualsIgnoreCase"); !slices.Equal(untag, tt.want) {
				t.Errorf("kms:UntagResource aws:TagKeys (ignoring case): got %q, want %q", untag, tt.want)
			}

			// The same keys as the function's environment names them.
			env := s.environment(t)
			fromEnv := []string{}
			for _, name := range governance {
				if tag := env[name]; tag != config.Off {
					fromEnv = append(fromEnv, env[config.EnvTagKeyPrefix]+tag)
				}
			}
			for _, k := range strings.Split(s.param(t, "StaticTagKeys"), ",") {
				if k != "" {
					fromEnv = append(fromEnv, k)
				}
			}
			if !slices.Equal(got, sortStrings(fromEnv)) {
				t.Errorf("aws:TagKeys: got %q, want the configured tag keys %q", got, fromEnv)
			}

			// And the keys the handler itself may write with that
			// environment.
			c, err := config.FromEnv(func(name string) string { return env[name] })
			if err != nil {
				t.Fatalf("config.FromEnv: %v", err)
			}
			policy, err := c.Policy()
			if err != nil {
				t.Fatalf("Policy: %v", err)
			}
			if handler := sortStrings(policy.Keys()); !slices.Equal(got, handler) {
				t.Errorf("aws:TagKeys: got %q, want the handler's tag keys %q", got, handler)
			}
		})
	}
}

func TestDeadLetterQueueIsWiredEverywhere(t *testing.T) {
	s := taggerStack(t, nil)
	attrs := s.queue(t, queueID)
	queueARN, queueURL := attrs["QueueArn"], s.physicalID(t, queueID)
	// moto creates no AWS::Lambda::EventInvokeConfig: from the probe.
	invoke := s.probe(t, invokeConfigID)
	onFailure, _ := lookup(invoke, "DestinationConfig", "OnFailure", "Destination")
	var sendResources []string
	for _, stmt := range s.allInline(t, roleID) {
		if acts, _ := stringList(stmt["Action"]); slices.Contains(acts, "sqs:SendMessage") {
			r, _ := stringList(stmt["Resource"])
			sendResources = append(sendResources, r...)
		}
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"queue encrypted", attrs["SqsManagedSseEnabled"], "true"},
		{"queue keeps messages 14 days", attrs["MessageRetentionPeriod"], "1209600"},
		{"on-failure destination", onFailure, queueARN},
		{"on-failure config of the function", invoke["FunctionName"], s.physicalID(t, functionID)},
		{"on-failure config of $LATEST", invoke["Qualifier"], "$LATEST"},
		{"Lambda retries twice", scalarString(invoke["MaximumRetryAttempts"]), "2"},
		{"Lambda keeps an event an hour", scalarString(invoke["MaximumEventAgeInSeconds"]), "3600"},
		{"handler's queue URL", s.environment(t)[config.EnvDeadLetterQueueURL], queueURL},
		{"handler may send to the queue (and the sweep's planner to its own)", sortStrings(sendResources), sortStrings([]string{queueARN, s.queue(t, "SweepQueue")["QueueArn"]})},
	}
	for _, id := range ruleIDs {
		r := s.rule(t, id)
		var dlq any
		if len(r.targets) == 1 && r.targets[0].DeadLetterConfig != nil {
			dlq = aws.ToString(r.targets[0].DeadLetterConfig.Arn)
		}
		tests = append(tests, struct {
			name      string
			got, want any
		}{id + " target dead-letter config", dlq, queueARN})
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s: got %#v, want %#v", tt.name, tt.got, tt.want)
		}
	}
}

// probeStatements returns the statements of the policy document at
// property of resource id, as moto evaluated it.
func probeStatements(t testing.TB, s *stack, id, property string) []statement {
	t.Helper()
	return statements(t, string(mustJSON(t, s.probe(t, id)[property])))
}

// queueActions are the actions on a queue, every one named: the actions a
// TLSOnly statement denies without TLS.
var queueActions = []string{
	"sqs:AddPermission", "sqs:CancelMessageMoveTask", "sqs:ChangeMessageVisibility", "sqs:DeleteMessage",
	"sqs:DeleteQueue", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ListDeadLetterSourceQueues",
	"sqs:ListMessageMoveTasks", "sqs:ListQueueTags", "sqs:PurgeQueue", "sqs:ReceiveMessage",
	"sqs:RemovePermission", "sqs:SendMessage", "sqs:SetQueueAttributes", "sqs:StartMessageMoveTask",
	"sqs:TagQueue", "sqs:UntagQueue",
}

// tlsOnly is the statement that denies every action on queueARN without
// TLS.
func tlsOnly(queueARN string) statement {
	return statement{
		"Sid": "TLSOnly", "Effect": "Deny", "Principal": "*", "Action": anys(queueActions), "Resource": queueARN,
		"Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
	}
}

// sendCase is one request to a queue and whether its policy denies it
// explicitly.
type sendCase struct {
	name   string
	req    request
	denied bool
}

// checkQueueAttacks evaluates the queue policy stmts for each case
// (evalPolicy: the stand-ins enforce no queue policy, so the test reads
// the statements as IAM documents their evaluation). Only the explicit
// deny matters here: a principal of the account needs no grant of the
// queue's policy, its own identity policy may allow it, and an explicit
// deny in the queue's policy wins over that.
func checkQueueAttacks(t *testing.T, stmts []statement, cases []sendCase) {
	t.Helper()
	for _, c := range cases {
		if got := evalPolicy(t, stmts, c.req, true) == explicitDeny; got != c.denied {
			t.Errorf("%s: explicitly denied %v, want %v", c.name, got, c.denied)
		}
	}
}

// tls is the condition keys of a request made over TLS, with more keys.
func tls(keys ...string) map[string][]string {
	m := map[string][]string{"aws:SecureTransport": {"true"}}
	for i := 0; i+1 < len(keys); i += 2 {
		m[keys[i]] = []string{keys[i+1]}
	}
	return m
}

func TestDeadLetterQueuePolicy(t *testing.T) {
	for _, tamperRepair := range []string{"true", "false"} {
		t.Run("TamperRepair "+tamperRepair, func(t *testing.T) {
			s := taggerStack(t, map[string]string{"TamperRepair": tamperRepair})
			queueARN, role := s.queue(t, queueID)["QueueArn"], s.roleARN(t, roleID)
			var rules []string
			for _, id := range ruleIDs {
				if s.created(id) {
					rules = append(rules, s.rule(t, id).arn)
				}
			}
			// moto creates no AWS::SQS::QueuePolicy: from the probe.
			policy := s.probe(t, queuePolicyID)
			if got, want := policy["Queues"], []any{s.physicalID(t, queueID)}; !reflect.DeepEqual(got, want) {
				t.Errorf("Queues: got %v, want %v", got, want)
			}
			stmts := probeStatements(t, s, queuePolicyID, "PolicyDocument")
			want := []statement{
				{
					"Sid": "EventBridgeUndeliverableEvents", "Effect": "Allow", "Principal": map[string]any{"Service": "events.amazonaws.com"},
					"Action": "sqs:SendMessage", "Resource": queueARN,
					"Condition": map[string]any{"ArnEquals": map[string]any{"aws:SourceArn": anys(rules)}},
				},
				{
					"Sid": "OnlyTheTaggerAndItsRulesSend", "Effect": "Deny", "Principal": "*", "Action": "sqs:SendMessage", "Resource": queueARN,
					"Condition": map[string]any{"ArnNotEquals": map[string]any{"aws:PrincipalArn": role, "aws:SourceArn": anys(rules)}},
				},
				tlsOnly(queueARN),
			}
			if !reflect.DeepEqual(stmts, want) {
				t.Errorf("statements:\n got %v\nwant %v", stmts, want)
			}

			send := func(principal string, keys map[string][]string) request {
				return request{action: "sqs:SendMessage", resource: queueARN, principalARN: principal, keys: keys}
			}
			fromRule := func(rule string) request {
				return request{action: "sqs:SendMessage", resource: queueARN, service: "events.amazonaws.com",
					keys: tls("aws:SourceArn", rule, "aws:SourceAccount", s.spec.account)}
			}
			other := "arn:aws:events:" + s.spec.region + ":" + s.spec.account + ":rule/attacker-rule"
			cases := []sendCase{
				// The producers: the handler's dead letters and Lambda's
				// on-failure records (both sent with the function's role),
				// and EventBridge for each of the stack's rules.
				{"the function's role", send(role, tls()), false},
				{"the function's role, without TLS", send(role, map[string][]string{"aws:SecureTransport": {"false"}}), true},
				// Anyone else of the account, whatever its own policy allows.
				{"an administrator of the account", send("arn:aws:iam::"+s.spec.account+":role/Admin", tls()), true},
				{"the account's root user", send("arn:aws:iam::"+s.spec.account+":root", tls()), true},
				{"a role of the function role's name in another account", send(strings.Replace(role, s.spec.account, memberAccount, 1), tls()), true},
				{"a role of the function role's name off the path", send("arn:aws:iam::"+s.spec.account+":role/"+s.physicalID(t, roleID), tls()), true},
				{"EventBridge for another rule of the account", fromRule(other), true},
				{"another service", request{action: "sqs:SendMessage", resource: queueARN, service: "sns.amazonaws.com", keys: tls("aws:SourceArn", "arn:aws:sns:us-east-1:"+s.spec.account+":topic")}, true},
				{"an administrator reading the queue without TLS", request{action: "sqs:ReceiveMessage", resource: queueARN,
					principalARN: "arn:aws:iam::" + s.spec.account + ":role/Admin", keys: map[string][]string{"aws:SecureTransport": {"false"}}}, true},
			}
			for _, r := range rules {
				cases = append(cases, sendCase{"EventBridge for " + queueName(r), fromRule(r), false})
				if got := evalPolicy(t, stmts, fromRule(r), true); got != allowed {
					t.Errorf("EventBridge for %s: got %s, want allowed by the queue's policy (a service has no identity policy)", r, got)
				}
			}
			checkQueueAttacks(t, stmts, cases)
		})
	}
}

func TestDeadLetterQueueEncryption(t *testing.T) {
	for _, tt := range []struct {
		name string
		key  string
	}{{"SQS-managed", ""}, {"customer managed key", dlqKeyARN}} {
		t.Run(tt.name, func(t *testing.T) {
			s := taggerStack(t, map[string]string{"DeadLetterQueueKmsKeyArn": tt.key})
			attrs := s.queue(t, queueID)
			if tt.key == "" {
				if attrs["SqsManagedSseEnabled"] != "true" || attrs["KmsMasterKeyId"] != "" {
					t.Errorf("SqsManagedSseEnabled %q, KmsMasterKeyId %q, want true and none", attrs["SqsManagedSseEnabled"], attrs["KmsMasterKeyId"])
				}
				return
			}
			// moto reports SqsManagedSseEnabled true for every queue, even
			// one with a KMS key (SQS refuses both at once): the property
			// the template gives is read from the probe.
			if attrs["KmsMasterKeyId"] != tt.key {
				t.Errorf("KmsMasterKeyId %q, want %s", attrs["KmsMasterKeyId"], tt.key)
			}
			if v, ok := s.probe(t, queueID)["SqsManagedSseEnabled"]; ok && v != false {
				t.Errorf("SqsManagedSseEnabled = %v with a KMS key, want it unset", v)
			}
			// The function's role may use the key to send, on that key only
			// (TestFunctionPolicyIsLeastPrivilege checks there is no more).
			role := s.allInline(t, roleID)
			for _, action := range []string{"kms:GenerateDataKey", "kms:Decrypt"} {
				if got := evalPolicy(t, role, request{action: action, resource: tt.key, principalARN: s.roleARN(t, roleID)}, false); got != allowed {
					t.Errorf("%s on the queue's key: got %s, want allowed", action, got)
				}
				other := strings.Replace(tt.key, "1234abcd", "99999999", 1)
				if got := evalPolicy(t, role, request{action: action, resource: other, principalARN: s.roleARN(t, roleID)}, false); got == allowed {
					t.Errorf("%s on another key: allowed, want not", action)
				}
			}
		})
	}
	p := translated(t, templatePath, nil).Parameters["DeadLetterQueueKmsKeyArn"]
	accepts := parameterAccepts(t, p)
	for _, v := range []string{"", dlqKeyARN, "arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab"} {
		if !accepts(v) {
			t.Errorf("DeadLetterQueueKmsKeyArn refuses %q", v)
		}
	}
	for _, v := range []string{"alias/dlq", "arn:aws:kms:us-east-1:111122223333:alias/dlq", "arn:aws:kms:us-east-1:111122223333:key/*", "1234abcd-12ab-34cd-56ef-1234567890ab"} {
		if accepts(v) {
			t.Errorf("DeadLetterQueueKmsKeyArn accepts %q, want only a key ARN (IAM grants on key ARNs)", v)
		}
	}
}

func TestLogGroup(t *testing.T) {
	tpl := translated(t, templatePath, nil)
	if got := tpl.Parameters["LogRetentionInDays"].DefaultString(); got != "90" {
		t.Errorf("LogRetentionInDays Default: got %q, want 90", got)
	}
	// No event reaches the function before its log group exists; moto
	// shows no order of creation, so this is the translated template's.
	for _, id := range ruleIDs {
		if got := tpl.Resources[id].DependsOnList(); !slices.Contains(got, logGroupID) {
			t.Errorf("%s DependsOn = %q, want it to include %s", id, got, logGroupID)
		}
	}
	for _, tt := range []struct {
		name      string
		params    map[string]string
		retention string
	}{{"defaults", nil, "90"}, {"LogRetentionInDays 7", everythingOn, "7"}} {
		t.Run(tt.name, func(t *testing.T) {
			s := taggerStack(t, tt.params)
			group := s.logGroup(t, logGroupID)
			if got, want := group["logGroupName"], "/aws/lambda/"+s.physicalID(t, functionID); got != want {
				t.Errorf("log group name: got %v, want %q", got, want)
			}
			if got := scalarString(group["retentionInDays"]); got != tt.retention {
				t.Errorf("retention: got %q days, want %s", got, tt.retention)
			}
		})
	}
}

// queueName returns the name of a queue from its ARN.
func queueName(arn string) string { return arn[strings.LastIndex(arn, ":")+1:] }

func TestAlarms(t *testing.T) {
	tpl := translated(t, templatePath, nil)
	alarmIDs := []string{"DeadLetterQueueAlarm", "FunctionErrorsAlarm"}
	sweepAlarms := []string{"CoverageAlarm", "SweepDeadLetterQueueAlarm"} // TestSweep
	if got, want := tpl.resourcesOfType("AWS::CloudWatch::Alarm"), sortStrings(append(append(slices.Clone(alarmIDs), forgedAlarmID), sweepAlarms...)); !slices.Equal(got, want) {
		t.Errorf("alarms = %q, want %q", got, want)
	}
	for _, tt := range []struct {
		name, email string
		namespace   string
	}{{"no e-mail", "", ""}, {"e-mail", "ops@example.com", ""}, {"namespace given", "", "Governance/KMS"}} {
		t.Run(tt.name, func(t *testing.T) {
			params := map[string]string{"AlarmEmail": tt.email}
			if tt.namespace != "" {
				params["MetricsNamespace"] = tt.namespace
			}
			s := taggerStack(t, params)
			notify := tt.email != ""
			for _, id := range []string{topicID, subscriptionID} {
				if got := s.created(id); got != notify {
					t.Errorf("%s created: got %v, want %v", id, got, notify)
				}
			}
			var actions any
			if notify {
				topic := s.output(t, "AlarmTopicArn")
				if got := s.physicalID(t, topicID); got != topic {
					t.Errorf("topic: got %s, want the output's %s", got, topic)
				}
				actions = []any{topic}
				// moto creates no AWS::SNS::Subscription: from the probe.
				sub := s.probe(t, subscriptionID)
				want := map[string]any{"TopicArn": topic, "Protocol": "email", "Endpoint": tt.email}
				if !reflect.DeepEqual(sub, want) {
					t.Errorf("subscription: got %v, want %v", sub, want)
				}
			}
			dimensions := map[string]map[string]any{
				"DeadLetterQueueAlarm": {"Name": "QueueName", "Value": queueName(s.queue(t, queueID)["QueueArn"])},
				"FunctionErrorsAlarm":  {"Name": "FunctionName", "Value": s.physicalID(t, functionID)},
			}
			metric := map[string][2]string{
				"DeadLetterQueueAlarm": {"AWS/SQS", "ApproximateNumberOfMessagesVisible"},
				"FunctionErrorsAlarm":  {"AWS/Lambda", "Errors"},
			}
			for _, id := range alarmIDs {
				// moto creates no AWS::CloudWatch::Alarm: from the probe.
				alarm := s.probe(t, id)
				for _, c := range []struct {
					property  string
					got, want any
				}{
					{"Namespace", alarm["Namespace"], metric[id][0]},
					{"MetricName", alarm["MetricName"], metric[id][1]},
					{"Dimensions", alarm["Dimensions"], []any{dimensions[id]}},
					{"Threshold", scalarString(alarm["Threshold"]), "0"},
					{"ComparisonOperator", alarm["ComparisonOperator"], "GreaterThanThreshold"},
					{"AlarmActions", alarm["AlarmActions"], actions},
					{"OKActions", alarm["OKActions"], actions},
				} {
					if !reflect.DeepEqual(c.got, c.want) {
						t.Errorf("%s %s: got %#v, want %#v", id, c.property, c.got, c.want)
					}
				}
			}
			checkForgedTagsAlarm(t, s, actions)
		})
	}
	// No metrics, no alarm on them.
	if s := taggerStack(t, map[string]string{"MetricsNamespace": "-"}); s.created(forgedAlarmID) {
		t.Errorf("MetricsNamespace \"-\": %s created, want none (no metric to watch)", forgedAlarmID)
	}
}

// checkForgedTagsAlarm checks that ForgedTagsAlarm of s fires when the
// function's ForgedTagsKept metric is above 0, under the stack's namespace,
// for every Outcome the handler counts it with, and notifies actions.
func checkForgedTagsAlarm(t *testing.T, s *stack, actions any) {
	t.Helper()
	alarm := s.probe(t, forgedAlarmID)
	for _, c := range []struct {
		property  string
		got, want any
	}{
		{"Threshold", scalarString(alarm["Threshold"]), "0"},
		{"ComparisonOperator", alarm["ComparisonOperator"], "GreaterThanThreshold"},
		{"EvaluationPeriods", scalarString(alarm["EvaluationPeriods"]), "1"},
		{"TreatMissingData", alarm["TreatMissingData"], "notBreaching"},
		{"AlarmActions", alarm["AlarmActions"], actions},
		{"OKActions", alarm["OKActions"], actions},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s %s: got %#v, want %#v", forgedAlarmID, c.property, c.got, c.want)
		}
	}
	queries, _ := alarm["Metrics"].([]any)
	namespace := s.param(t, "MetricsNamespace")
	var returned []string
	outcomes := map[string]string{} // query id -> Outcome
	var expression string
	for _, q := range queries {
		m, _ := q.(map[string]any)
		id, _ := m["Id"].(string)
		if m["ReturnData"] == true {
			returned = append(returned, id)
			expression, _ = m["Expression"].(string)
			continue
		}
		metric, _ := lookup(m, "MetricStat", "Metric")
		mm, _ := metric.(map[string]any)
		if mm["Namespace"] != namespace || mm["MetricName"] != metrics.MetricForgedTagsKept {
			t.Errorf("%s query %s: metric %v, want %s %s", forgedAlarmID, id, mm, namespace, metrics.MetricForgedTagsKept)
		}
		if stat, _ := lookup(m, "MetricStat", "Stat"); stat != "Sum" {
			t.Errorf("%s query %s: Stat %v, want Sum", forgedAlarmID, id, stat)
		}
		dims, _ := mm["Dimensions"].([]any)
		if len(dims) != 1 {
			t.Errorf("%s query %s: Dimensions %v, want Outcome only", forgedAlarmID, id, dims)
			continue
		}
		d, _ := dims[0].(map[string]any)
		if d["Name"] != metrics.DimensionOutcome {
			t.Errorf("%s query %s: dimension %v, want %s", forgedAlarmID, id, d, metrics.DimensionOutcome)
		}
		outcomes[id], _ = d["Value"].(string)
	}
	// The handler keeps forged tags only on a permanent failure: the event
	// is dead-lettered, or an error when the dead letter could not be
	// written either.
	want := []string{string(tagger.OutcomeDeadLettered), string(tagger.OutcomeError)}
	if got := sortStrings(slices.Collect(maps.Values(outcomes))); !slices.Equal(got, sortStrings(want)) {
		t.Errorf("%s watches the outcomes %q, want %q", forgedAlarmID, got, want)
	}
	if len(returned) != 1 {
		t.Fatalf("%s returns %q, want one expression", forgedAlarmID, returned)
	}
	for id := range outcomes {
		if !strings.Contains(expression, "FILL("+id+", 0)") {
			t.Errorf("%s expression %q does not add %s (missing as 0)", forgedAlarmID, expression, id)
		}
	}
}

func TestReservedConcurrency(t *testing.T) {
	tests := []struct {
		name     string
		value    string
		want     string
		reserved bool
	}{
		{"default", "", "10", true},
		{"set", "25", "25", true},
		{"-1 is unreserved", "-1", "", false},
		{"0 is unreserved, not stopped", "0", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var params map[string]string
			if tt.value != "" {
				params = map[string]string{"ReservedConcurrency": tt.value}
			}
			got, reserved := taggerStack(t, params).reservedConcurrency(t)
			if got != tt.want || reserved != tt.reserved {
				t.Errorf("reserved concurrency: got %q (reserved %v), want %q (reserved %v)", got, reserved, tt.want, tt.reserved)
			}
		})
	}
}

// busStatement returns the bus policy statement of a stack's
// AWS::Events::EventBusPolicy id (which moto does not create) from its
// probe, without its Sid.
func busStatement(t testing.TB, s *stack, id string) map[string]any {
	t.Helper()
	stmt, ok := s.probe(t, id)["Statement"].(map[string]any)
	if !ok {
		t.Fatalf("%s Statement: got %#v, want one statement", id, s.probe(t, id)["Statement"])
	}
	stmt = maps.Clone(stmt)
	delete(stmt, "Sid")
	return stmt
}

// wantBusStatement is the statement that lets the organization's accounts
// put the KMS events the rules take on the default bus of account in
// region.
func wantBusStatement(account, region, org string) map[string]any {
	return map[string]any{
		"Effect":    "Allow",
		"Principal": "*",
		"Action":    "events:PutEvents",
		"Resource":  "arn:aws:events:" + region + ":" + account + ":event-bus/default",
		"Condition": map[string]any{"StringEquals": map[string]any{
			"aws:PrincipalOrgID": org,
			"events:source":      events.SourceKMS,
			"events:detail-type": events.DetailTypeAPICall,
		}},
	}
}

const orgID = "o-a1b2c3d4e5"

func TestOrganizationEventBusPolicy(t *testing.T) {
	for _, tt := range []struct {
		org  string
		want bool
	}{{"", false}, {orgID, true}} {
		if got := taggerStack(t, map[string]string{"OrganizationId": tt.org}).created(busPolicyID); got != tt.want {
			t.Errorf("OrganizationId %q: %s created: got %v, want %v", tt.org, busPolicyID, got, tt.want)
		}
	}
	for _, region := range []string{homeRegion, "eu-west-1"} {
		t.Run(region, func(t *testing.T) {
			s := deploy(t, stackSpec{template: templatePath, region: region, params: map[string]string{"OrganizationId": orgID}})
			if got := s.probe(t, busPolicyID)["EventBusName"]; got != "default" {
				t.Errorf("EventBusName: got %v, want default (the bus the rules are on)", got)
			}
			if got, want := busStatement(t, s, busPolicyID), wantBusStatement(s.spec.account, region, orgID); !reflect.DeepEqual(got, want) {
				t.Errorf("Statement: got %v, want %v", got, want)
			}
			// The events it lets in are the ones the rules take.
			for _, id := range ruleIDs {
				var p map[string]any
				if err := decodeJSON([]byte(s.rule(t, id).pattern), &p); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(p["source"], []any{events.SourceKMS}) || !reflect.DeepEqual(p["detail-type"], []any{events.DetailTypeAPICall}) {
					t.Errorf("%s source %v detail-type %v, want what the bus policy allows", id, p["source"], p["detail-type"])
				}
			}
		})
	}

	// The StatementId names the policy's statement on the account's bus
	// and is the resource's physical id: EventBridge takes 1 to 64 of
	// [A-Za-z0-9_-], and it must be the stack's own, unlike that of any
	// other stack in the account and region: another kms-autotagger stack
	// or deploy/central-bus-policy.yaml, deployed next to this one.
	statementID := regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	central := deploy(t, stackSpec{template: busPolicyPath, params: map[string]string{"OrganizationId": orgID}})
	centralID := central.probe(t, "OrganizationPutEvents")["StatementId"]
	longName := "kms-autotagger-" + strings.Repeat("x", 128-len("kms-autotagger-"))
	seen := map[string]string{}
	for _, name := range []string{"kms-autotagger", "kms-autotagger-staging", longName} {
		s := deploy(t, stackSpec{template: templatePath, name: name, params: map[string]string{"OrganizationId": orgID}})
		id, _ := s.probe(t, busPolicyID)["StatementId"].(string)
		if !statementID.MatchString(id) {
			t.Errorf("stack %.30s...: StatementId = %q, want 1 to 64 of [A-Za-z0-9_-]", name, id)
		}
		if id == centralID {
			t.Errorf("stack %.30s...: StatementId = %q, the same as deploy/central-bus-policy.yaml's: the two stacks would collide", name, id)
		}
		if other, dup := seen[id]; dup {
			t.Errorf("stacks %.30s... and %.30s... have the same StatementId %q", other, name, id)
		}
		seen[id] = name
	}
}

// emitted is what the function's metrics emitter writes: its namespace,
// metric names, dimension sets and the Outcome values of the handler's
// outcomes.
type emitted struct {
	namespace     string
	names         map[string]bool
	dimensionSets [][]string
	outcomes      map[string]bool
}

// emittedMetrics records one event per handler outcome with the real
// emitter under namespace and reads back what it wrote.
func emittedMetrics(t *testing.T, namespace string) emitted {
	t.Helper()
	var buf bytes.Buffer
	em, err := metrics.New(&buf, namespace)
	if err != nil {
		t.Fatalf("metrics.New(%q): %v", namespace, err)
	}
	outcomes := []tagger.Outcome{tagger.OutcomeTagged, tagger.OutcomeSkipped, tagger.OutcomeDeadLettered, tagger.OutcomeError}
	for _, o := range outcomes {
		if err := em.Record(metrics.Event{Outcome: string(o), EventName: events.CreationEventNames()[0], Region: homeRegion}); err != nil {
			t.Fatalf("Record: %v", err)
		}
	}
	out := emitted{names: map[string]bool{}, outcomes: map[string]bool{}}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != len(outcomes) {
		t.Fatalf("emitter wrote %d lines, want %d", len(lines), len(outcomes))
	}
	// The sweep's coverage line, per account and region and overall.
	buf.Reset()
	full := 100.0
	if err := em.RecordCoverage(metrics.Coverage{Account: centralAccount, Region: homeRegion, Keys: 1, Compliant: 1, Percent: &full}); err != nil {
		t.Fatalf("RecordCoverage: %v", err)
	}
	var cov struct {
		AWS struct {
			CloudWatchMetrics []struct {
				Dimensions [][]string
				Metrics    []struct{ Name string }
			}
		} `json:"_aws"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &cov); err != nil || len(cov.AWS.CloudWatchMetrics) != 1 {
		t.Fatalf("coverage line %s: %v", buf.String(), err)
	}

	for _, line := range lines {
		var rec struct {
			AWS struct {
				CloudWatchMetrics []struct {
					Namespace  string
					Dimensions [][]string
					Metrics    []struct{ Name string }
				}
			} `json:"_aws"`
			Outcome string
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("decoding EMF line %s: %v", line, err)
		}
		if len(rec.AWS.CloudWatchMetrics) != 1 {
			t.Fatalf("EMF line %s: want one metric directive", line)
		}
		d := rec.AWS.CloudWatchMetrics[0]
		out.namespace = d.Namespace
		out.dimensionSets = d.Dimensions
		for _, m := range d.Metrics {
			out.names[m.Name] = true
		}
		out.outcomes[rec.Outcome] = true
	}
	for _, o := range outcomes {
		if !out.outcomes[string(o)] {
			t.Fatalf("emitter wrote outcomes %q, want %s among them", slices.Sorted(maps.Keys(out.outcomes)), o)
		}
	}
	out.dimensionSets = append(out.dimensionSets, cov.AWS.CloudWatchMetrics[0].Dimensions...)
	for _, m := range cov.AWS.CloudWatchMetrics[0].Metrics {
		out.names[m.Name] = true
	}
	return out
}

// dashboardMetric is one line of a dashboard metric widget: namespace,
// metric name and dimension name/value pairs.
type dashboardMetric struct {
	widget     string
	namespace  string
	name       string
	dimensions map[string]string
}

// dashboardMetrics returns the metrics of the widgets of a dashboard body,
// failing on anything but valid JSON of metric widgets in region.
func dashboardMetrics(t *testing.T, body, region string) []dashboardMetric {
	t.Helper()
	var doc struct {
		Widgets []struct {
			Type       string
			Properties struct {
				Title   string
				Region  string
				Metrics [][]any
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("DashboardBody is not JSON: %v\n%s", err, body)
	}
	if len(doc.Widgets) == 0 {
		t.Fatal("the dashboard has no widgets")
	}
	var out []dashboardMetric
	for i, w := range doc.Widgets {
		title := fmt.Sprintf("widget %d (%s)", i, w.Properties.Title)
		if w.Type != "metric" {
			continue
		}
		if w.Properties.Region != region {
			t.Errorf("%s region: got %q, want the stack's %q", title, w.Properties.Region, region)
		}
		if len(w.Properties.Metrics) == 0 {
			t.Errorf("%s has no metrics", title)
		}
		var prev []string
		for j, row := range w.Properties.Metrics {
			// [namespace, name, dim, value, ..., {options}]; "." repeats
			// the previous line's item.
			var items []string
			for k, el := range row {
				switch x := el.(type) {
				case string:
					if x == "." && k < len(prev) {
						x = prev[k]
					}
					items = append(items, x)
				case map[string]any:
					if k != len(row)-1 {
						t.Errorf("%s metric %d: options %v before the end", title, j, x)
					}
				default:
					t.Errorf("%s metric %d: item %#v is not a string", title, j, el)
				}
			}
			prev = items
			if len(items) < 2 || len(items)%2 != 0 {
				t.Errorf("%s metric %d = %q, want namespace, name and dimension pairs", title, j, items)
				continue
			}
			m := dashboardMetric{widget: title, namespace: items[0], name: items[1], dimensions: map[string]string{}}
			for k := 2; k < len(items); k += 2 {
				m.dimensions[items[k]] = items[k+1]
			}
			out = append(out, m)
		}
	}
	return out
}

func TestOperationsDashboard(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]string
	}{
		{"default namespace", nil},
		{"namespace given", everythingOn},
	}
	dashboardName := regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := taggerStack(t, tt.params)
			if name := s.physicalID(t, dashboardID); !dashboardName.MatchString(name) {
				t.Errorf("dashboard name %q, want 1 to 255 of [A-Za-z0-9_-]", name)
			}
			namespace := s.param(t, "MetricsNamespace")
			queue, function := queueName(s.queue(t, queueID)["QueueArn"]), s.physicalID(t, functionID)
			want := emittedMetrics(t, namespace)
			if want.namespace != namespace {
				t.Fatalf("emitter namespace: got %q, want %q", want.namespace, namespace)
			}
			sets := map[string]bool{}
			for _, set := range want.dimensionSets {
				sets[strings.Join(slices.Sorted(slices.Values(set)), ",")] = true
			}
			shown := map[string]bool{}
			own := 0
			for _, m := range dashboardMetrics(t, s.dashboard(t, dashboardID), s.spec.region) {
				switch m.namespace {
				case namespace:
					own++
					shown[m.name] = true
					if !want.names[m.name] {
						t.Errorf("%s shows %s, which the function does not emit (it emits %q)", m.widget, m.name, slices.Sorted(maps.Keys(want.names)))
					}
					dims := strings.Join(slices.Sorted(maps.Keys(m.dimensions)), ",")
					if !sets[dims] {
						t.Errorf("%s shows %s by dimensions [%s], which the function does not emit (it emits %q)", m.widget, m.name, dims, want.dimensionSets)
					}
					if o, ok := m.dimensions[metrics.DimensionOutcome]; ok && !want.outcomes[o] {
						t.Errorf("%s shows %s for Outcome %q, which does not exist (outcomes: %q)", m.widget, m.name, o, slices.Sorted(maps.Keys(want.outcomes)))
					}
				case "AWS/SQS":
					if got := m.dimensions["QueueName"]; got != queue || len(m.dimensions) != 1 {
						t.Errorf("%s shows AWS/SQS %s of %v, want the dead-letter queue %s", m.widget, m.name, m.dimensions, queue)
					}
				case "AWS/Lambda":
					if got := m.dimensions["FunctionName"]; got != function || len(m.dimensions) != 1 {
						t.Errorf("%s shows AWS/Lambda %s of %v, want the function %s", m.widget, m.name, m.dimensions, function)
					}
				default:
					t.Errorf("%s shows namespace %q, want the MetricsNamespace parameter's %q, AWS/SQS or AWS/Lambda", m.widget, m.namespace, namespace)
				}
			}
			if own == 0 {
				t.Errorf("the dashboard shows none of the function's metrics")
			}
			for _, n := range slices.Sorted(maps.Keys(want.names)) {
				if !shown[n] {
					t.Errorf("the dashboard does not show the function's metric %s", n)
				}
			}
		})
	}
}

func TestOutputs(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]string
	}{
		{"defaults", nil},
		{"tamper repair off, alarm e-mail", map[string]string{"TamperRepair": "false", "AlarmEmail": "ops@example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := taggerStack(t, tt.params)
			want := map[string]string{
				"FunctionName":       s.physicalID(t, functionID),
				"FunctionArn":        aws.ToString(s.function(t).FunctionArn),
				"FunctionRoleArn":    s.roleARN(t, roleID), // deploy/member-role.yaml's TaggerRoleArn
				"RuleArn":            s.rule(t, ruleID).arn,
				"DashboardName":      s.physicalID(t, dashboardID),
				"DeadLetterQueueUrl": s.physicalID(t, queueID),
				"DeadLetterQueueArn": s.queue(t, queueID)["QueueArn"],
			}
			if s.param(t, "TamperRepair") == "true" {
				want["TagChangeRuleArn"] = s.rule(t, tagRuleID).arn
			}
			if s.param(t, "AlarmEmail") != "" {
				want["AlarmTopicArn"] = s.physicalID(t, topicID)
			}
			if !maps.Equal(s.outputs, want) {
				t.Errorf("outputs: got %v, want %v", s.outputs, want)
			}
		})
	}
}

// TestEveryCombinationDeploys deploys the stack for every combination of
// the parameters the conditions of resources depend on: moto's
// CloudFormation fails a stack whose resources refer to one it does not
// create (cfn-lint's W1001 looks for such references too). A combination
// the template's Rules refuse (a member role without the organization) must
// be refused, and is not looked at further. The conditions on
// ReservedConcurrency and DeadLetterQueueKmsKeyArn guard properties and no
// resource; TestReservedConcurrency and TestDeadLetterQueueEncryption
// deploy their values.
func TestEveryCombinationDeploys(t *testing.T) {
	choices := []struct {
		param  string
		values []string
	}{
		{"TamperRepair", []string{"true", "false"}},
		{"MemberRoleName", []string{"", "kms-autotagger-member"}},
		{"OrganizationId", []string{"", orgID}},
		{"AlarmEmail", []string{"", "ops@example.com"}},
		{"MetricsNamespace", []string{metrics.DefaultNamespace, config.Off}},
	}
	combinations := []map[string]string{{}}
	for _, c := range choices {
		var next []map[string]string
		for _, base := range combinations {
			for _, v := range c.values {
				m := maps.Clone(base)
				m[c.param] = v
				next = append(next, m)
			}
		}
		combinations = next
	}
	for _, params := range combinations {
		t.Run(fmt.Sprint(params), func(t *testing.T) {
			s := deploy(t, stackSpec{template: templatePath, params: params, refusable: true})
			refused := params["MemberRoleName"] != "" && params["OrganizationId"] == ""
			if got := len(s.refusals) > 0; got != refused {
				t.Fatalf("refused by the template's Rules: got %v (%q), want %v", got, s.refusals, refused)
			}
			if refused {
				return
			}
			conditional := map[string]bool{
				tagRuleID:                params["TamperRepair"] == "true",
				tagRuleID + "Permission": params["TamperRepair"] == "true",
				topicID:                  params["AlarmEmail"] != "",
				subscriptionID:           params["AlarmEmail"] != "",
				busPolicyID:              params["OrganizationId"] != "",
				forgedAlarmID:            params["MetricsNamespace"] != config.Off,
				"CoverageAlarm":          params["MetricsNamespace"] != config.Off,
			}
			for _, id := range slices.Sorted(maps.Keys(wantResources)) {
				want, ok := conditional[id]
				if !ok {
					want = true
				}
				if got := s.created(id); got != want {
					t.Errorf("%s created: got %v, want %v", id, got, want)
				}
			}
			for name, want := range map[string]bool{"TagChangeRuleArn": conditional[tagRuleID], "AlarmTopicArn": conditional[topicID]} {
				if _, got := s.outputs[name]; got != want {
					t.Errorf("output %s: got %v, want %v", name, got, want)
				}
			}
		})
	}
}

// TestARNsArePartitionAware checks that no ARN in the translated templates
// names a partition: moto's AWS::Partition is always aws, so no stack of
// another partition can show it. cfn-lint's I3042 checks the same in make
// lint.
func TestARNsArePartitionAware(t *testing.T) {
	for _, path := range append([]string{templatePath}, deployPaths...) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			var walk func(v any, where string)
			walk = func(v any, where string) {
				switch x := v.(type) {
				case map[string]any:
					for k, el := range x {
						walk(el, where+"."+k)
					}
				case []any:
					for _, el := range x {
						walk(el, where+"[]")
					}
				case string:
					if strings.Contains(x, "arn:aws:") || strings.Contains(x, "arn:aws-") {
						t.Errorf("%s = %q names a partition; use ${AWS::Partition}", where, x)
					}
				}
			}
			walk(translated(t, path, nil).raw, "")
		})
	}
}

func TestEnvFileForLocalInvoke(t *testing.T) {
	written, _ := lookup(translated(t, templatePath, nil).Resources[functionID].Properties, "Environment", "Variables")
	env, _ := written.(map[string]any)
	data, err := os.ReadFile(filepath.Join(eventsDir, "env", "local.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]map[string]string
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatalf("decoding events/env/local.json: %v", err)
	}
	vars, ok := file[functionID]
	if !ok || len(file) != 1 {
		t.Fatalf("events/env/local.json keys = %q, want only %s", slices.Sorted(maps.Keys(file)), functionID)
	}
	for _, name := range []string{"AWS_ENDPOINT_URL_KMS", "AWS_ENDPOINT_URL_SQS", config.EnvDeadLetterQueueURL} {
		if !strings.Contains(vars[name], "host.docker.internal") {
			t.Errorf("%s = %q, want a local endpoint on host.docker.internal", name, vars[name])
		}
	}
	for name := range vars {
		// SAM CLI only overrides variables the template declares.
		if _, declared := env[name]; !declared {
			t.Errorf("events/env/local.json sets %s, which the template does not declare", name)
		}
	}
}

// TestSweep checks the sweep's wiring in the translated template: the
// schedule invokes the function, which plans onto its FIFO queue; the
// queue's messages come back to the same function one at a time, at most
// two at once, with partial batch failures; only the function's role may
// send to it, over TLS; and "off" removes all of it.
func TestSweep(t *testing.T) {
	tpl := translated(t, templatePath, nil)
	mapping := tpl.Resources["SweepEventSourceMapping"].Properties
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"mapping's function", mapping["FunctionName"], map[string]any{"Ref": functionID}},
		{"mapping's queue", mapping["EventSourceArn"], map[string]any{"Fn::GetAtt": []any{"SweepQueue", "Arn"}}},
		{"one partition per invocation", scalarString(mapping["BatchSize"]), "1"},
		{"partial batch failures", mapping["FunctionResponseTypes"], []any{"ReportBatchItemFailures"}},
		{"at most two at once", scalarString(lookupOr(mapping, "ScalingConfig", "MaximumConcurrency")), "2"},
		{"FIFO", tpl.Resources["SweepQueue"].Properties["FifoQueue"], true},
		{"schedule's default", scalarString(tpl.Parameters["SweepSchedule"].Default), "rate(1 day)"},
		{"schedule's target", lookupOr(tpl.Resources["SweepScheduleRule"].Properties["Targets"].([]any)[0].(map[string]any), "Arn"), map[string]any{"Fn::GetAtt": []any{functionID, "Arn"}}},
		{"queue URL for the function", lookupOr(tpl.Resources[functionID].Properties, "Environment", "Variables", config.EnvSweepQueueURL), map[string]any{"Fn::If": []any{"SweepOn", map[string]any{"Ref": "SweepQueue"}, ""}}},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %#v, want %#v", c.name, c.got, c.want)
		}
	}
	policy, _ := lookup(tpl.Resources["SweepQueuePolicy"].Properties, "PolicyDocument", "Statement")
	var denies []string
	for _, st := range policy.([]any) {
		if st.(map[string]any)["Effect"] == "Deny" {
			denies = append(denies, st.(map[string]any)["Sid"].(string))
		}
	}
	if want := []string{"OnlyTheFunctionSends", "TLSOnly"}; !slices.Equal(denies, want) {
		t.Errorf("sweep queue's deny statements: got %q, want %q", denies, want)
	}
	// Switched off: no sweep resource is created, and the function is told
	// no queue (moto evaluates the conditions).
	s := taggerStack(t, map[string]string{"SweepSchedule": "off"})
	for id := range tpl.Resources {
		if strings.HasPrefix(id, "Sweep") || id == "CoverageAlarm" {
			if s.created(id) {
				t.Errorf("SweepSchedule off: %s created", id)
			}
		}
	}
	if got := s.environment(t)[config.EnvSweepQueueURL]; got != "" {
		t.Errorf("SweepSchedule off: %s = %q, want empty", config.EnvSweepQueueURL, got)
	}
}

// lookupOr is lookup's value, nil when the path is missing.
func lookupOr(v any, path ...string) any {
	got, _ := lookup(v, path...)
	return got
}
