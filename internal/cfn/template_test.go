package cfn_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kms-autotagger/kms-autotagger/internal/cfn"
	"github.com/kms-autotagger/kms-autotagger/internal/config"
	"github.com/kms-autotagger/kms-autotagger/internal/metrics"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

const (
	templatePath = "../../template.yaml"
	eventsDir    = "../../events"

	functionID  = "AutoTaggerFunction"
	roleID      = "AutoTaggerFunctionRole"
	queueID     = "DeadLetterQueue"
	ruleID      = "KeyCreatedRule"
	tagRuleID   = "TagChangeRule"
	busPolicyID = "OrganizationEventBusPolicy"
	dashboardID = "OperationsDashboard"

	// taggerRoleName is the name CloudFormation gives the function's role
	// in the stack of stackValues: the role of events/unrelated_kms_event.json.
	taggerRoleName = "kms-autotagger-AutoTaggerFunctionRole-1QW2E3R4T5Y6"
)

// ruleIDs are the stack's EventBridge rules, each with its own permission to
// invoke the function.
var ruleIDs = []string{ruleID, tagRuleID}

func loadTemplate(t *testing.T) *cfn.Template {
	t.Helper()
	tpl, err := cfn.Load(templatePath)
	if err != nil {
		t.Fatalf("Load(%q): %v", templatePath, err)
	}
	return tpl
}

// onlyResource returns the one resource of type typ, failing unless there is
// exactly one and it has the logical id want.
func onlyResource(t *testing.T, tpl *cfn.Template, typ, want string) cfn.Resource {
	t.Helper()
	ids := tpl.ResourcesOfType(typ)
	if len(ids) != 1 || ids[0] != want {
		t.Fatalf("resources of type %s = %v, want [%s]", typ, ids, want)
	}
	return tpl.Resources[want]
}

func property(t *testing.T, r cfn.Resource, path ...string) any {
	t.Helper()
	v, ok := r.Property(path...)
	if !ok {
		t.Fatalf("%s has no property %s", r.Type, strings.Join(path, "."))
	}
	return v
}

func ref(name string) any { return map[string]any{"Ref": name} }

func getAtt(res, attr string) any { return map[string]any{"Fn::GetAtt": []any{res, attr}} }

// stackValues are the values a deployed stack would see, with overrides for
// parameters; see Template.Evaluate.
func stackValues(overrides map[string]any) map[string]any {
	v := map[string]any{
		"AWS::Partition":       "aws",
		"AWS::AccountId":       "111122223333",
		"AWS::Region":          "us-east-1",
		"AWS::StackName":       "kms-autotagger",
		"AWS::StackId":         "arn:aws:cloudformation:us-east-1:111122223333:stack/kms-autotagger/6a1f0c40-af3e-11ee-b2f1-0a8f5c6a7e1d",
		functionID:             "kms-autotagger-AutoTaggerFunction-Xk3P9qLm2RtA",
		functionID + ".Arn":    "arn:aws:lambda:us-east-1:111122223333:function:kms-autotagger-AutoTaggerFunction-Xk3P9qLm2RtA",
		roleID:                 taggerRoleName,
		roleID + ".Arn":        taggerRoleARN,
		queueID:                "https://sqs.us-east-1.amazonaws.com/111122223333/kms-autotagger-DeadLetterQueue-9ZtQ",
		queueID + ".Arn":       "arn:aws:sqs:us-east-1:111122223333:kms-autotagger-DeadLetterQueue-9ZtQ",
		queueID + ".QueueName": "kms-autotagger-DeadLetterQueue-9ZtQ",
		ruleID + ".Arn":        "arn:aws:events:us-east-1:111122223333:rule/kms-autotagger-KeyCreatedRule-4Hw2",
		tagRuleID + ".Arn":     "arn:aws:events:us-east-1:111122223333:rule/kms-autotagger-TagChangeRule-8Jk5",
		dashboardID:            "kms-autotagger-us-east-1",
		"AlarmTopic":           "arn:aws:sns:us-east-1:111122223333:kms-autotagger-AlarmTopic-7Qp1",
	}
	maps.Copy(v, overrides)
	return v
}

func evaluate(t *testing.T, tpl *cfn.Template, v any, values map[string]any) (any, bool) {
	t.Helper()
	got, present, err := tpl.Evaluate(v, values)
	if err != nil {
		t.Fatalf("Evaluate(%v): %v", v, err)
	}
	return got, present
}

// created reports whether resource id exists in a stack with values.
func created(t *testing.T, tpl *cfn.Template, id string, values map[string]any) bool {
	t.Helper()
	r, ok := tpl.Resources[id]
	if !ok {
		t.Fatalf("no resource %s", id)
	}
	if r.Condition == "" {
		return true
	}
	on, err := tpl.Condition(r.Condition, values)
	if err != nil {
		t.Fatalf("Condition(%s): %v", r.Condition, err)
	}
	return on
}

func TestTemplateHeader(t *testing.T) {
	tpl := loadTemplate(t)
	if got, want := tpl.FormatVersion, "2010-09-09"; got != want {
		t.Errorf("AWSTemplateFormatVersion = %q, want %q", got, want)
	}
	if got, want := tpl.Transform, []string{"AWS::Serverless-2016-10-31"}; !slices.Equal(got, want) {
		t.Errorf("Transform = %q, want %q", got, want)
	}
}

func TestFunction(t *testing.T) {
	tpl := loadTemplate(t)
	fn := onlyResource(t, tpl, "AWS::Serverless::Function", functionID)
	if ids := tpl.ResourcesOfType("AWS::Lambda::Function"); len(ids) != 0 {
		t.Errorf("AWS::Lambda::Function resources = %v, want none", ids)
	}
	if got, want := fn.Metadata["BuildMethod"], any("makefile"); got != want {
		t.Errorf("Metadata.BuildMethod = %v, want %v", got, want)
	}
	tests := []struct {
		path []string
		want any
	}{
		{[]string{"Runtime"}, "provided.al2023"},
		{[]string{"Architectures"}, []any{"arm64"}},
		{[]string{"Handler"}, "bootstrap"},
		{[]string{"CodeUri"}, "."},
		{[]string{"Timeout"}, 30},
		{[]string{"MemorySize"}, 128},
		{[]string{"LoggingConfig", "LogFormat"}, "JSON"},
		{[]string{"LoggingConfig", "ApplicationLogLevel"}, ref("LogLevel")},
		{[]string{"Role"}, getAtt(roleID, "Arn")},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.path, "."), func(t *testing.T) {
			if got := property(t, fn, tt.path...); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s = %#v, want %#v", strings.Join(tt.path, "."), got, tt.want)
			}
		})
	}
	// The SAM property would make SAM add a policy of its own; the template
	// uses an AWS::Lambda::EventInvokeConfig resource instead.
	if v, ok := fn.Property("EventInvokeConfig"); ok {
		t.Errorf("EventInvokeConfig property = %v, want none (see the AWS::Lambda::EventInvokeConfig resource)", v)
	}
	if v, ok := fn.Property("Events"); ok {
		t.Errorf("Events property = %v, want none (the rules are AWS::Events::Rule resources)", v)
	}
	// With Role set, SAM makes no role: the permissions are the explicit
	// role's, and SAM permission properties would be silently ignored.
	for _, p := range []string{"Policies", "PermissionsBoundary", "RolePath"} {
		if v, ok := fn.Property(p); ok {
			t.Errorf("%s property = %v, want none: the permissions are %s's", p, v, roleID)
		}
	}
}

// eventSamples lists every file in events/ and whether each rule must deliver
// it to the function: match for KeyCreatedRule, tagChange for TagChangeRule.
var eventSamples = []struct {
	file      string
	match     bool
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

func readEvent(t *testing.T, file string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(eventsDir, file))
	if err != nil {
		t.Fatalf("reading sample: %v", err)
	}
	var event map[string]any
	if err := json.Unmarshal(data, &event); err != nil {
		t.Fatalf("decoding %s: %v", file, err)
	}
	return event
}

// patternOf returns the evaluated event pattern of the rule id.
func patternOf(t *testing.T, tpl *cfn.Template, id string, values map[string]any) map[string]any {
	t.Helper()
	rule, ok := tpl.Resources[id]
	if !ok || rule.Type != "AWS::Events::Rule" {
		t.Fatalf("no AWS::Events::Rule %s", id)
	}
	v, _ := evaluate(t, tpl, property(t, rule, "EventPattern"), values)
	pattern, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s EventPattern = %#v, want an object", id, v)
	}
	return pattern
}

// rulePattern returns the evaluated event pattern of KeyCreatedRule.
func rulePattern(t *testing.T, tpl *cfn.Template) map[string]any {
	t.Helper()
	return patternOf(t, tpl, ruleID, stackValues(nil))
}

// tagChangePattern returns the evaluated event pattern of TagChangeRule in the
// stack of stackValues, whose function role is taggerRoleName.
func tagChangePattern(t *testing.T, tpl *cfn.Template) map[string]any {
	t.Helper()
	return patternOf(t, tpl, tagRuleID, stackValues(nil))
}

func TestRules(t *testing.T) {
	tpl := loadTemplate(t)
	if got := tpl.ResourcesOfType("AWS::Events::Rule"); !slices.Equal(got, ruleIDs) {
		t.Fatalf("rules = %q, want %q", got, ruleIDs)
	}
	conditions := map[string]string{ruleID: "", tagRuleID: "TamperRepairOn"}
	for id, want := range conditions {
		if got := tpl.Resources[id].Condition; got != want {
			t.Errorf("%s Condition = %q, want %q", id, got, want)
		}
	}
	tests := []struct {
		tamperRepair string
		want         bool
	}{{"true", true}, {"false", false}}
	for _, tt := range tests {
		if got := created(t, tpl, tagRuleID, stackValues(map[string]any{"TamperRepair": tt.tamperRepair})); got != tt.want {
			t.Errorf("TamperRepair %s: %s created = %v, want %v", tt.tamperRepair, tagRuleID, got, tt.want)
		}
	}
	if p := tpl.Parameters["TamperRepair"]; p.Default != "true" || !slices.Equal(p.AllowedValues, []string{"true", "false"}) {
		t.Errorf("TamperRepair Default %q AllowedValues %q, want \"true\" of [true false]", p.Default, p.AllowedValues)
	}
}

func TestRulePatternMatchesSamples(t *testing.T) {
	tpl := loadTemplate(t)
	patterns := map[string]map[string]any{
		ruleID:    rulePattern(t, tpl),
		tagRuleID: tagChangePattern(t, tpl),
	}

	files, err := filepath.Glob(filepath.Join(eventsDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, s := range eventSamples {
		listed[s.file] = true
	}
	onDisk := map[string]bool{}
	for _, f := range files {
		name := filepath.Base(f)
		onDisk[name] = true
		if !listed[name] {
			t.Errorf("events/%s is not in eventSamples: add it with whether each rule must match it", name)
		}
	}
	for _, s := range eventSamples {
		t.Run(s.file, func(t *testing.T) {
			if !onDisk[s.file] {
				t.Fatalf("events/%s is listed but does not exist", s.file)
			}
			want := map[string]bool{ruleID: s.match, tagRuleID: s.tagChange}
			for _, id := range ruleIDs {
				got, err := cfn.MatchPattern(patterns[id], readEvent(t, s.file))
				if err != nil {
					t.Fatalf("MatchPattern(%s): %v", id, err)
				}
				if got != want[id] {
					t.Errorf("%s matches %s = %v, want %v", id, s.file, got, want[id])
				}
			}
		})
	}
}

func TestRulePatternRejectsOtherCalls(t *testing.T) {
	tpl := loadTemplate(t)
	pattern := rulePattern(t, tpl)
	detail := eventDetail
	tests := []patternCase{
		{"CreateKey as recorded", "createkey_iamuser.json", func(map[string]any) {}, true},
		{"ReplicateKey as recorded", "replicatekey.json", func(map[string]any) {}, true},
		{"TagResource", "createkey_iamuser.json", func(e map[string]any) { detail(e)["eventName"] = "TagResource" }, false},
		{"UntagResource", "createkey_iamuser.json", func(e map[string]any) { detail(e)["eventName"] = "UntagResource" }, false},
		{"TagResource by the tagger", "unrelated_kms_event.json", func(map[string]any) {}, false},
		{"TagResource by another principal", "unrelated_kms_event.json", func(e map[string]any) { detail(e)["userIdentity"] = iamUserIdentity() }, false},
		{"UntagResource by another principal", "unrelated_kms_event.json", func(e map[string]any) {
			detail(e)["eventName"] = "UntagResource"
			detail(e)["userIdentity"] = assumedRoleIdentity("111122223333", "Admin", "mallory")
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
	checkPatternCases(t, ruleID, pattern, tests)
}

// patternCase is a sample event, changed by mutate, and whether a rule's
// pattern should match it.
type patternCase struct {
	name   string
	base   string // the events/ sample
	mutate func(e map[string]any)
	want   bool
}

// checkPatternCases runs each case against pattern, the pattern of rule.
func checkPatternCases(t *testing.T, rule string, pattern map[string]any, tests []patternCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			event := readEvent(t, tt.base)
			tt.mutate(event)
			got, err := cfn.MatchPattern(pattern, event)
			if err != nil {
				t.Fatalf("MatchPattern: %v", err)
			}
			if got != tt.want {
				t.Errorf("%s matches %s = %v, want %v", rule, tt.name, got, tt.want)
			}
		})
	}
}

// eventDetail is the detail of an EventBridge event decoded as a map.
func eventDetail(e map[string]any) map[string]any { return e["detail"].(map[string]any) }

// equalJSON reports whether got and want encode to the same JSON, so that
// numbers and lists compare alike; it returns both encodings for messages.
func equalJSON(t *testing.T, got, want any) (bool, string, string) {
	t.Helper()
	gotJSON, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(gotJSON, wantJSON), string(gotJSON), string(wantJSON)
}

func TestRulePatternIsExactlyTheIntendedOne(t *testing.T) {
	tpl := loadTemplate(t)
	tests := []struct {
		id   string
		got  map[string]any
		want string
	}{
		{ruleID, rulePattern(t, tpl), rulePatternJSON},
		{tagRuleID, tagChangePattern(t, tpl), tagChangePatternJSON},
	}
	for _, tt := range tests {
		if ok, got, want := equalJSON(t, tt.got, decodeObject(t, tt.want)); !ok {
			t.Errorf("%s EventPattern = %s, want %s", tt.id, got, want)
		}
	}
}

// tagChangePatternJSON is the pattern TagChangeRule is meant to have in the
// stack of stackValues: tag changes by anyone but the sessions of the
// function's own role.
const tagChangePatternJSON = `{
	"source": ["aws.kms"],
	"detail-type": ["AWS API Call via CloudTrail"],
	"detail": {
		"eventSource": ["kms.amazonaws.com"],
		"eventName": ["TagResource", "UntagResource"],
		"errorCode": [{"exists": false}],
		"userIdentity": {
			"arn": [{"anything-but": {"prefix": "arn:aws:sts::111122223333:assumed-role/kms-autotagger-AutoTaggerFunctionRole-1QW2E3R4T5Y6/"}}]
		}
	}
}`

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

func TestTagChangeRulePattern(t *testing.T) {
	tpl := loadTemplate(t)
	pattern := tagChangePattern(t, tpl)

	// The sample is the function's own TagResource in the stack of
	// stackValues: its role is the stack's role.
	own := readEvent(t, "unrelated_kms_event.json")
	if got, _ := cfn.Lookup(own, "detail", "userIdentity", "sessionContext", "sessionIssuer", "arn"); got != stackValues(nil)[roleID+".Arn"] {
		t.Fatalf("unrelated_kms_event.json session issuer = %v, want the stack's role %v", got, stackValues(nil)[roleID+".Arn"])
	}

	detail := eventDetail
	untag := func(e map[string]any) {
		detail(e)["eventName"] = "UntagResource"
		params := detail(e)["requestParameters"].(map[string]any)
		delete(params, "tags")
		params["tagKeys"] = []any{"CreatedBy"}
	}
	tests := []patternCase{
		{"TagResource by the tagger, as recorded", "unrelated_kms_event.json", func(map[string]any) {}, false},
		{"UntagResource by the tagger", "unrelated_kms_event.json", untag, false},
		{"TagResource by an IAM user", "unrelated_kms_event.json", func(e map[string]any) { detail(e)["userIdentity"] = iamUserIdentity() }, true},
		{"UntagResource by an IAM user", "unrelated_kms_event.json", func(e map[string]any) {
			untag(e)
			detail(e)["userIdentity"] = iamUserIdentity()
		}, true},
		{"TagResource by another assumed role", "unrelated_kms_event.json", func(e map[string]any) {
			detail(e)["userIdentity"] = assumedRoleIdentity("111122223333", "Admin", "mallory")
		}, true},
		{"UntagResource by another assumed role", "unrelated_kms_event.json", func(e map[string]any) {
			untag(e)
			detail(e)["userIdentity"] = assumedRoleIdentity("111122223333", "Admin", "mallory")
		}, true},
		{"TagResource by a role whose name extends the tagger's", "unrelated_kms_event.json", func(e map[string]any) {
			detail(e)["userIdentity"] = assumedRoleIdentity("111122223333", taggerRoleName+"-copy", "mallory")
		}, true},
		{"TagResource by a role of the tagger's name in another account", "unrelated_kms_event.json", func(e map[string]any) {
			detail(e)["userIdentity"] = assumedRoleIdentity("444455556666", taggerRoleName, "mallory")
		}, true},
		{"TagResource by the account's root user", "unrelated_kms_event.json", func(e map[string]any) {
			detail(e)["userIdentity"] = map[string]any{"type": "Root", "principalId": "111122223333", "arn": "arn:aws:iam::111122223333:root", "accountId": "111122223333"}
		}, true},
		{"TagResource by another principal that failed", "unrelated_kms_event.json", func(e map[string]any) {
			detail(e)["userIdentity"] = iamUserIdentity()
			detail(e)["errorCode"] = "AccessDeniedException"
		}, false},
		{"UntagResource by another principal that failed", "unrelated_kms_event.json", func(e map[string]any) {
			untag(e)
			detail(e)["userIdentity"] = iamUserIdentity()
			detail(e)["errorCode"] = "KMSInvalidStateException"
		}, false},
		{"CreateKey by another principal", "createkey_iamuser.json", func(map[string]any) {}, false},
		{"ReplicateKey by another principal", "replicatekey.json", func(map[string]any) {}, false},
		{"ScheduleKeyDeletion by another principal", "unrelated_kms_event.json", func(e map[string]any) {
			detail(e)["userIdentity"] = iamUserIdentity()
			detail(e)["eventName"] = "ScheduleKeyDeletion"
		}, false},
		{"TagResource of another service", "unrelated_kms_event.json", func(e map[string]any) {
			detail(e)["userIdentity"] = iamUserIdentity()
			detail(e)["eventSource"] = "secretsmanager.amazonaws.com"
			e["source"] = "aws.secretsmanager"
		}, false},
		{"a service event, not an API call", "unrelated_kms_event.json", func(e map[string]any) {
			detail(e)["userIdentity"] = iamUserIdentity()
			e["detail-type"] = "AWS Service Event via CloudTrail"
		}, false},
	}
	checkPatternCases(t, tagRuleID, pattern, tests)

	// The excluded principal follows the stack's own role, partition and
	// account, whatever they are.
	values := stackValues(map[string]any{"AWS::Partition": "aws-cn", "AWS::AccountId": "444455556666", roleID: "other-stack-AutoTaggerFunctionRole-9ZZ"})
	cn := patternOf(t, tpl, tagRuleID, values)
	got, _ := cfn.Lookup(cn, "detail", "userIdentity", "arn")
	want := []any{map[string]any{"anything-but": map[string]any{"prefix": "arn:aws-cn:sts::444455556666:assumed-role/other-stack-AutoTaggerFunctionRole-9ZZ/"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("userIdentity.arn in another stack = %#v, want %#v", got, want)
	}
}

// permissionOf returns the one AWS::Lambda::Permission whose SourceArn is
// the rule id.
func permissionOf(t *testing.T, tpl *cfn.Template, id string) (string, cfn.Resource) {
	t.Helper()
	var found []string
	for _, pid := range tpl.ResourcesOfType("AWS::Lambda::Permission") {
		if v, _ := tpl.Resources[pid].Property("SourceArn"); reflect.DeepEqual(v, getAtt(id, "Arn")) {
			found = append(found, pid)
		}
	}
	if len(found) != 1 {
		t.Fatalf("permissions with SourceArn %s.Arn = %q, want one", id, found)
	}
	return found[0], tpl.Resources[found[0]]
}

func TestRuleTargetAndPermission(t *testing.T) {
	tpl := loadTemplate(t)
	wantPermissions := []string{ruleID + "Permission", tagRuleID + "Permission"}
	if got := tpl.ResourcesOfType("AWS::Lambda::Permission"); !slices.Equal(got, wantPermissions) {
		t.Errorf("AWS::Lambda::Permission resources = %q, want %q (one per rule)", got, wantPermissions)
	}
	for _, id := range ruleIDs {
		t.Run(id, func(t *testing.T) {
			rule := tpl.Resources[id]
			if got, want := property(t, rule, "State"), any("ENABLED"); got != want {
				t.Errorf("State = %v, want %v", got, want)
			}
			targets, ok := property(t, rule, "Targets").([]any)
			if !ok || len(targets) != 1 {
				t.Fatalf("Targets = %v, want one target", targets)
			}
			target := targets[0]
			tests := []struct {
				name string
				path []string
				want any
			}{
				{"target is the function", []string{"Arn"}, getAtt(functionID, "Arn")},
				{"undeliverable events go to the queue", []string{"DeadLetterConfig", "Arn"}, getAtt(queueID, "Arn")},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					got, ok := cfn.Lookup(target, tt.path...)
					if !ok || !reflect.DeepEqual(got, tt.want) {
						t.Errorf("target %s = %#v, want %#v", strings.Join(tt.path, "."), got, tt.want)
					}
				})
			}
			limits := []struct {
				name     string
				min, max int64
			}{
				{"MaximumRetryAttempts", 0, 185},
				{"MaximumEventAgeInSeconds", 60, 86400},
			}
			for _, l := range limits {
				v, ok := cfn.Lookup(target, "RetryPolicy", l.name)
				n, isInt := cfn.Int(v)
				if !ok || !isInt || n < l.min || n > l.max {
					t.Errorf("RetryPolicy.%s = %v, want an integer in [%d, %d]", l.name, v, l.min, l.max)
				}
			}

			pid, perm := permissionOf(t, tpl, id)
			if want := id + "Permission"; pid != want {
				t.Errorf("permission of %s = %s, want %s", id, pid, want)
			}
			if perm.Condition != rule.Condition {
				t.Errorf("permission %s Condition = %q, want the rule's %q", pid, perm.Condition, rule.Condition)
			}
			permTests := []struct {
				property string
				want     any
			}{
				{"Action", "lambda:InvokeFunction"},
				{"Principal", "events.amazonaws.com"},
				{"FunctionName", getAtt(functionID, "Arn")},
				{"SourceArn", getAtt(id, "Arn")},
			}
			for _, tt := range permTests {
				if got := property(t, perm, tt.property); !reflect.DeepEqual(got, tt.want) {
					t.Errorf("permission %s = %#v, want %#v", tt.property, got, tt.want)
				}
			}
		})
	}
}

// specialSettings are the handler settings that no parameter feeds, with
// the value the template must give them.
var specialSettings = map[string]any{
	config.EnvDeadLetterQueueURL: ref(queueID),
	config.EnvHomeAccountID:      ref("AWS::AccountId"),
	config.EnvTaggerRoleARN:      getAtt(roleID, "Arn"),
}

// endpointPlaceholders are the AWS_ENDPOINT_URL_* variables declared empty
// for sam local invoke --env-vars, one per service the function calls.
var endpointPlaceholders = []string{
	"AWS_ENDPOINT_URL_CLOUDTRAIL",
	"AWS_ENDPOINT_URL_KMS",
	"AWS_ENDPOINT_URL_SQS",
	"AWS_ENDPOINT_URL_STS",
}

func environment(t *testing.T, tpl *cfn.Template) map[string]any {
	t.Helper()
	env, ok := property(t, tpl.Resources[functionID], "Environment", "Variables").(map[string]any)
	if !ok {
		t.Fatal("Environment.Variables is not a map")
	}
	return env
}

// stackEnvironment evaluates the function's environment for values.
func stackEnvironment(t *testing.T, tpl *cfn.Template, values map[string]any) map[string]string {
	t.Helper()
	v, _ := evaluate(t, tpl, environment(t, tpl), values)
	out := map[string]string{}
	for name, val := range v.(map[string]any) {
		s, ok := val.(string)
		if !ok {
			t.Fatalf("environment variable %s = %#v, want a string", name, val)
		}
		out[name] = s
	}
	return out
}

// fedFromParameters reports whether v is a Ref to a parameter or a Fn::Sub
// whose variables are all parameters, each of them with a Default.
func fedFromParameters(tpl *cfn.Template, v any) bool {
	fn, arg, ok := cfn.Intrinsic(v)
	if !ok {
		return false
	}
	var names []string
	switch fn {
	case "Ref":
		name, ok := arg.(string)
		if !ok {
			return false
		}
		names = []string{name}
	case "Fn::Sub":
		s, ok := arg.(string)
		if !ok {
			return false
		}
		var err error
		if names, err = cfn.SubVariables(s); err != nil {
			return false
		}
	}
	if len(names) == 0 {
		return false
	}
	for _, n := range names {
		if p, isParam := tpl.Parameters[n]; !isParam || !p.HasDefault {
			return false
		}
	}
	return true
}

func TestEnvironment(t *testing.T) {
	tpl := loadTemplate(t)
	env := environment(t, tpl)
	defaults := stackEnvironment(t, tpl, stackValues(nil))

	settings := map[string]config.Setting{}
	for _, s := range config.Settings {
		settings[s.Env] = s
	}
	for name := range specialSettings {
		if _, ok := settings[name]; !ok {
			t.Errorf("%s is not in config.Settings: drop it from specialSettings", name)
		}
	}
	for _, s := range config.Settings {
		t.Run(s.Env, func(t *testing.T) {
			v, ok := env[s.Env]
			if !ok {
				t.Fatalf("the function's environment has no %s", s.Env)
			}
			if want, special := specialSettings[s.Env]; special {
				if !reflect.DeepEqual(v, want) {
					t.Errorf("%s = %#v, want %#v", s.Env, v, want)
				}
				return
			}
			if !fedFromParameters(tpl, v) {
				t.Fatalf("%s = %#v, want a Ref or Fn::Sub of parameters with a Default", s.Env, v)
			}
			// A stack deployed with its defaults behaves as the handler
			// does by default.
			if got := defaults[s.Env]; got != s.Default {
				t.Errorf("%s in a stack with defaults = %q, want the handler's default %q", s.Env, got, s.Default)
			}
		})
	}
	for _, name := range endpointPlaceholders {
		if v, ok := env[name]; !ok || v != "" {
			t.Errorf("%s = %#v (declared %v), want \"\": a placeholder for sam local --env-vars", name, v, ok)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(env)) {
		if _, ok := settings[name]; ok || slices.Contains(endpointPlaceholders, name) {
			continue
		}
		t.Errorf("unexpected environment variable %s = %#v: want only config.Settings and %q", name, env[name], endpointPlaceholders)
	}
}

func TestEnvironmentIsAValidConfiguration(t *testing.T) {
	tpl := loadTemplate(t)
	base := stackValues(nil)
	tests := []struct {
		name   string
		params map[string]any
		check  func(t *testing.T, c config.Config)
	}{
		{"defaults", nil, func(t *testing.T, c config.Config) {
			if !c.TamperRepair || c.MemberRoleName != "" || c.MemberRolePath != "/" || c.MemberExternalID != "" || c.MetricsNamespace != metrics.DefaultNamespace {
				t.Errorf("config = %+v, want tamper repair on, no member role, namespace %s", c, metrics.DefaultNamespace)
			}
		}},
		{"cross-account", map[string]any{
			"MemberRoleName": "kms-autotagger-member", "MemberRolePath": "/governance/",
			"MemberRoleExternalId": "o-a1b2c3d4e5-kms", "OrganizationId": "o-a1b2c3d4e5",
		}, func(t *testing.T, c config.Config) {
			if c.MemberRoleName != "kms-autotagger-member" || c.MemberRolePath != "/governance/" || c.MemberExternalID != "o-a1b2c3d4e5-kms" {
				t.Errorf("member role = %q %q %q, want the parameters", c.MemberRoleName, c.MemberRolePath, c.MemberExternalID)
			}
		}},
		{"tamper repair and metrics off", map[string]any{"TamperRepair": "false", "MetricsNamespace": "-"}, func(t *testing.T, c config.Config) {
			if c.TamperRepair || c.MetricsNamespace != "" {
				t.Errorf("TamperRepair, MetricsNamespace = %v, %q, want false, \"\"", c.TamperRepair, c.MetricsNamespace)
			}
		}},
		{"tags", map[string]any{
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
			values := stackValues(tt.params)
			env := stackEnvironment(t, tpl, values)
			c, err := config.FromEnv(func(name string) string { return env[name] })
			if err != nil {
				t.Fatalf("config.FromEnv of the stack's environment: %v", err)
			}
			if c.DeadLetterQueueURL != base[queueID] {
				t.Errorf("DeadLetterQueueURL = %q, want the queue %v", c.DeadLetterQueueURL, base[queueID])
			}
			if c.HomeAccountID != base["AWS::AccountId"] {
				t.Errorf("HomeAccountID = %q, want the stack's account %v", c.HomeAccountID, base["AWS::AccountId"])
			}
			if c.TaggerRoleARN != base[roleID+".Arn"] {
				t.Errorf("TaggerRoleARN = %q, want the function's role %v", c.TaggerRoleARN, base[roleID+".Arn"])
			}
			tt.check(t, c)
		})
	}
}

func TestParameters(t *testing.T) {
	tpl := loadTemplate(t)
	refs, err := tpl.References()
	if err != nil {
		t.Fatalf("References: %v", err)
	}
	used := map[string]bool{}
	for _, r := range refs {
		if r.Kind == cfn.ByRef || r.Kind == cfn.BySub {
			used[r.Name] = true
		}
	}
	names := slices.Sorted(maps.Keys(tpl.Parameters))
	for _, name := range names {
		p := tpl.Parameters[name]
		t.Run(name, func(t *testing.T) {
			if !p.HasDefault {
				t.Fatalf("parameter %s has no Default; sam deploy --guided must need only a stack name", name)
			}
			if !used[name] {
				t.Errorf("parameter %s is never used", name)
			}
			if p.AllowedValues != nil && !slices.Contains(p.AllowedValues, p.Default) {
				t.Errorf("Default %q is not in AllowedValues %q", p.Default, p.AllowedValues)
			}
			if p.AllowedPattern != "" {
				// CloudFormation matches the whole value with a Java regular
				// expression; these patterns use only syntax RE2 shares.
				re, err := regexp.Compile("^(?:" + p.AllowedPattern + ")$")
				if err != nil {
					t.Fatalf("AllowedPattern %q: %v", p.AllowedPattern, err)
				}
				if !re.MatchString(p.Default) {
					t.Errorf("Default %q does not match AllowedPattern %q", p.Default, p.AllowedPattern)
				}
			}
		})
	}
	for _, name := range []string{"LogRetentionInDays", "ReservedConcurrency", "AlarmEmail", "StaticTagKeys",
		"TamperRepair", "MemberRoleName", "MemberRolePath", "MemberRoleExternalId", "OrganizationId", "MetricsNamespace"} {
		if _, ok := tpl.Parameters[name]; !ok {
			t.Errorf("no parameter %s", name)
		}
	}
	if v := tpl.Parameters["MemberRoleExternalId"].Properties["NoEcho"]; v != true {
		t.Errorf("MemberRoleExternalId NoEcho = %#v, want true", v)
	}
}

// TestParameterPatterns checks that the parameters of the cross-account
// settings accept what the handler accepts and refuse what it refuses, so
// that a stack CloudFormation creates is never one whose function refuses
// its configuration.
func TestParameterPatterns(t *testing.T) {
	tpl := loadTemplate(t)
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
			[]string{"/", "/governance/", "/a/b/", "/" + strings.Repeat("p", 510) + "/"},
			[]string{"governance", "/governance", "governance/", "/a b/", "/" + strings.Repeat("p", 511) + "/"}},
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
	org := tpl.Parameters["OrganizationId"]
	accepts := parameterAccepts(t, org)
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
// its AllowedPattern, AllowedValues, MinLength and MaxLength.
func parameterAccepts(t *testing.T, p cfn.Parameter) func(string) bool {
	t.Helper()
	var re *regexp.Regexp
	if p.AllowedPattern != "" {
		var err error
		if re, err = regexp.Compile("^(?:" + p.AllowedPattern + ")$"); err != nil {
			t.Fatalf("AllowedPattern %q: %v", p.AllowedPattern, err)
		}
	}
	length := func(name string, def int64) int64 {
		v, ok := p.Properties[name]
		if !ok {
			return def
		}
		n, ok := cfn.Int(v)
		if !ok {
			t.Fatalf("%s = %#v, want an integer", name, v)
		}
		return n
	}
	minLen, maxLen := length("MinLength", 0), length("MaxLength", 4096)
	return func(v string) bool {
		n := int64(len(v))
		return n >= minLen && n <= maxLen &&
			(re == nil || re.MatchString(v)) &&
			(p.AllowedValues == nil || slices.Contains(p.AllowedValues, v))
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
	tpl := loadTemplate(t)
	timeout, ok := cfn.Int(property(t, tpl.Resources[functionID], "Timeout"))
	if !ok {
		t.Fatal("Timeout is not an integer")
	}
	for _, name := range []string{"MaxBackoff", "DeadLetterReserve"} {
		d, err := time.ParseDuration(tpl.Parameters[name].Default)
		if err != nil {
			t.Errorf("parameter %s Default: %v", name, err)
			continue
		}
		if d <= 0 || d >= time.Duration(timeout)*time.Second/2 {
			t.Errorf("parameter %s Default = %v, want above 0 and under half the %ds timeout", name, d, timeout)
		}
	}
}

// functionRole returns the function's role, the template's only IAM role.
func functionRole(t *testing.T, tpl *cfn.Template) cfn.Resource {
	t.Helper()
	return onlyResource(t, tpl, "AWS::IAM::Role", roleID)
}

// guardedStatement is one statement of the function role's inline policy as
// written, with the condition it exists under ("" when always).
type guardedStatement struct {
	guard string
	stmt  map[string]any
}

// writtenStatements returns the statements of the function role's inline
// policies as written. A statement is a map, or !If [Condition, map,
// !Ref AWS::NoValue] for one that exists only under Condition.
func writtenStatements(t *testing.T, tpl *cfn.Template) []guardedStatement {
	t.Helper()
	policies, ok := property(t, functionRole(t, tpl), "Policies").([]any)
	if !ok {
		t.Fatal("Policies is not a list")
	}
	var out []guardedStatement
	for i, p := range policies {
		list, ok := cfn.Lookup(p, "PolicyDocument", "Statement")
		if !ok {
			t.Fatalf("Policies[%d] = %#v, want a PolicyDocument with a Statement", i, p)
		}
		stmts, ok := list.([]any)
		if !ok {
			t.Fatalf("Policies[%d] Statement = %#v, want a list", i, list)
		}
		for _, s := range stmts {
			g := guardedStatement{}
			if fn, arg, ok := cfn.Intrinsic(s); ok {
				args, _ := arg.([]any)
				if fn != "Fn::If" || len(args) != 3 || !reflect.DeepEqual(args[2], ref("AWS::NoValue")) {
					t.Fatalf("statement %#v, want a map or !If [Condition, statement, !Ref AWS::NoValue]", s)
				}
				g.guard, _ = args[0].(string)
				s = args[1]
			}
			if g.stmt, ok = s.(map[string]any); !ok {
				t.Fatalf("statement %#v is not a map", s)
			}
			out = append(out, g)
		}
	}
	return out
}

// functionStatements returns the statements of the function role's inline
// policies in a stack with values: those under a false condition are gone.
func functionStatements(t *testing.T, tpl *cfn.Template, values map[string]any) []map[string]any {
	t.Helper()
	return inlineStatements(t, tpl, functionRole(t, tpl), values)
}

// inlineStatements returns the statements of every inline policy of role in
// a stack with values.
func inlineStatements(t *testing.T, tpl *cfn.Template, role cfn.Resource, values map[string]any) []map[string]any {
	t.Helper()
	policies, ok := property(t, role, "Policies").([]any)
	if !ok {
		t.Fatal("Policies is not a list")
	}
	var out []map[string]any
	for i, p := range policies {
		doc, ok := cfn.Lookup(p, "PolicyDocument")
		if !ok {
			t.Fatalf("Policies[%d] has no PolicyDocument", i)
		}
		out = append(out, statementsOf(t, tpl, doc, values)...)
	}
	return out
}

func asList(v any) []any {
	if list, ok := v.([]any); ok {
		return list
	}
	return []any{v}
}

func TestFunctionRole(t *testing.T) {
	tpl := loadTemplate(t)
	role := functionRole(t, tpl)
	for _, typ := range []string{"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"} {
		if ids := tpl.ResourcesOfType(typ); len(ids) != 0 {
			t.Errorf("%s resources = %v, want none: the function's permissions are its role's inline policy", typ, ids)
		}
	}
	// IAM is global: a fixed name would collide between the stacks of two
	// regions.
	for _, p := range []string{"RoleName", "PermissionsBoundary"} {
		if v, ok := role.Property(p); ok {
			t.Errorf("role %s = %#v, want none", p, v)
		}
	}
	for _, partition := range []string{"aws", "aws-cn", "aws-us-gov"} {
		values := stackValues(map[string]any{"AWS::Partition": partition})
		trust := trustStatements(t, tpl, role, values)
		wantTrust := []map[string]any{{
			"Effect": "Allow", "Principal": map[string]any{"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole",
		}}
		if !reflect.DeepEqual(trust, wantTrust) {
			t.Errorf("trust policy = %#v, want %#v", trust, wantTrust)
		}
		managed, _ := evaluate(t, tpl, property(t, role, "ManagedPolicyArns"), values)
		wantManaged := []any{"arn:" + partition + ":iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"}
		if !reflect.DeepEqual(managed, wantManaged) {
			t.Errorf("ManagedPolicyArns in %s = %#v, want %#v", partition, managed, wantManaged)
		}
	}
	policies, _ := property(t, role, "Policies").([]any)
	var names []string
	for _, p := range policies {
		name, _ := cfn.Lookup(p, "PolicyName")
		s, _ := name.(string)
		names = append(names, s)
	}
	if want := []string{"tag-kms-keys"}; !slices.Equal(names, want) {
		t.Errorf("inline policies = %q, want %q", names, want)
	}
}

// statementGuards are the actions the function may be allowed, each with the
// condition its statement must exist under ("" when always).
var statementGuards = map[string]string{
	"kms:TagResource":         "",
	"sqs:SendMessage":         "",
	"kms:DescribeKey":         "TamperRepairOn",
	"cloudtrail:LookupEvents": "TamperRepairOn",
	"sts:AssumeRole":          "HasMemberRole",
}

func TestFunctionPolicyIsLeastPrivilege(t *testing.T) {
	tpl := loadTemplate(t)

	// As written: every action in a statement of its own condition, and
	// "*" only for cloudtrail:LookupEvents, which has no resource-level
	// permissions.
	for _, g := range writtenStatements(t, tpl) {
		acts, _ := cfn.Strings(g.stmt["Action"])
		for _, a := range acts {
			want, known := statementGuards[a]
			if !known {
				t.Errorf("statement %v allows %s; want only %q", g.stmt["Sid"], a, slices.Sorted(maps.Keys(statementGuards)))
			} else if g.guard != want {
				t.Errorf("statement %v (%s) exists under condition %q, want %q", g.stmt["Sid"], a, g.guard, want)
			}
		}
		for _, r := range asList(g.stmt["Resource"]) {
			if r == "*" && !slices.Equal(acts, []string{"cloudtrail:LookupEvents"}) {
				t.Errorf("statement %v allows %q on \"*\"; only cloudtrail:LookupEvents may be", g.stmt["Sid"], acts)
			}
		}
	}

	// As deployed, for several configurations.
	tests := []struct {
		name   string
		params map[string]any
	}{
		{"defaults", nil},
		{"tamper repair off", map[string]any{"TamperRepair": "false"}},
		{"member role", map[string]any{"MemberRoleName": "kms-autotagger-member"}},
		{"member role in the organization, tamper repair off", map[string]any{
			"MemberRoleName": "kms-autotagger-member", "MemberRolePath": "/governance/", "OrganizationId": "o-a1b2c3d4e5", "TamperRepair": "false",
		}},
		{"everything on in aws-cn", map[string]any{
			"AWS::Partition": "aws-cn", "MemberRoleName": "tagger", "OrganizationId": "o-a1b2c3d4e5",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			values := stackValues(tt.params)
			param := func(name string) string {
				v, _ := evaluate(t, tpl, ref(name), values)
				return v.(string)
			}
			partition := values["AWS::Partition"].(string)
			keys := "arn:" + partition + ":kms:*:" + values["AWS::AccountId"].(string) + ":key/*"
			want := map[string]any{
				"kms:TagResource": keys,
				"sqs:SendMessage": values[queueID+".Arn"],
			}
			if param("TamperRepair") == "true" {
				want["kms:DescribeKey"] = keys
				want["cloudtrail:LookupEvents"] = "*"
			}
			if param("MemberRoleName") != "" {
				want["sts:AssumeRole"] = "arn:" + partition + ":iam::*:role" + param("MemberRolePath") + param("MemberRoleName")
			}

			var actions []string
			for _, stmt := range functionStatements(t, tpl, values) {
				for _, forbidden := range []string{"NotAction", "NotResource", "Principal", "NotPrincipal"} {
					if _, ok := stmt[forbidden]; ok {
						t.Errorf("statement %v has %s", stmt["Sid"], forbidden)
					}
				}
				if stmt["Effect"] != "Allow" {
					t.Errorf("statement %v Effect = %v, want Allow", stmt["Sid"], stmt["Effect"])
				}
				acts, ok := cfn.Strings(stmt["Action"])
				if !ok || len(acts) == 0 {
					t.Errorf("statement %v Action = %#v, want action names", stmt["Sid"], stmt["Action"])
					continue
				}
				resources, ok := stmt["Resource"]
				if !ok {
					t.Errorf("statement %v has no Resource", stmt["Sid"])
				}
				for _, a := range acts {
					actions = append(actions, a)
					if strings.Contains(a, "*") {
						t.Errorf("statement %v allows the wildcard action %q", stmt["Sid"], a)
					}
					w, allowed := want[a]
					if !allowed {
						t.Errorf("statement %v allows %s; want only %q here", stmt["Sid"], a, slices.Sorted(maps.Keys(want)))
						continue
					}
					for _, r := range asList(resources) {
						if r != w {
							t.Errorf("statement %v allows %s on %#v, want only %#v", stmt["Sid"], a, r, w)
						}
					}
				}
				cond, hasCond := stmt["Condition"]
				switch {
				case slices.Contains(acts, "kms:TagResource"):
					// Checked by TestTagKeysCondition.
				case slices.Contains(acts, "sts:AssumeRole"):
					org := param("OrganizationId")
					wantCond := map[string]any{"StringEquals": map[string]any{"aws:ResourceOrgID": org}}
					if org == "" && hasCond {
						t.Errorf("sts:AssumeRole Condition = %#v, want none without an OrganizationId", cond)
					}
					if org != "" && !reflect.DeepEqual(cond, wantCond) {
						t.Errorf("sts:AssumeRole Condition = %#v, want %#v", cond, wantCond)
					}
				case hasCond:
					t.Errorf("statement %v Condition = %#v, want none", stmt["Sid"], cond)
				}
			}
			sort.Strings(actions)
			if w := slices.Sorted(maps.Keys(want)); !slices.Equal(actions, w) {
				t.Errorf("actions = %q, want %q", actions, w)
			}
		})
	}
}

// tagKeysCondition returns the aws:TagKeys condition value of the function
// role's kms:TagResource statement in a stack with values, failing unless
// the statement has the expected condition shape.
func tagKeysCondition(t *testing.T, tpl *cfn.Template, values map[string]any) any {
	t.Helper()
	var found []map[string]any
	for _, stmt := range functionStatements(t, tpl, values) {
		if acts, _ := cfn.Strings(stmt["Action"]); slices.Contains(acts, "kms:TagResource") {
			found = append(found, stmt)
		}
	}
	if len(found) != 1 {
		t.Fatalf("kms:TagResource statements = %d, want one", len(found))
	}
	stmt := found[0]
	if got, ok := cfn.Lookup(stmt, "Condition", "Null", "aws:TagKeys"); !ok || got != "false" {
		t.Errorf(`Condition.Null["aws:TagKeys"] = %#v, want "false"`, got)
	}
	v, ok := cfn.Lookup(stmt, "Condition", "ForAllValues:StringEquals", "aws:TagKeys")
	if !ok {
		t.Fatal(`the kms:TagResource statement has no Condition."ForAllValues:StringEquals"."aws:TagKeys"`)
	}
	return v
}

func TestTagKeysCondition(t *testing.T) {
	tpl := loadTemplate(t)
	env := environment(t, tpl)
	governance := []string{
		"TAG_NAME_CREATED_BY", "TAG_NAME_CREATED_BY_ROLE", "TAG_NAME_CREATED_AT",
		"TAG_NAME_CREATED_VIA", "TAG_NAME_CREATION_EVENT_ID", "TAG_NAME_REPLICA_OF",
	}
	tests := []struct {
		name   string
		params map[string]any
		want   []string
	}{
		{"defaults", nil, []string{"CreatedAt", "CreatedBy", "CreatedByRole", "CreatedVia", "CreationEventId", "ReplicaOf"}},
		{
			"prefix",
			map[string]any{"TagKeyPrefix": "governance:"},
			[]string{"governance:CreatedAt", "governance:CreatedBy", "governance:CreatedByRole", "governance:CreatedVia", "governance:CreationEventId", "governance:ReplicaOf"},
		},
		{
			"tags switched off",
			map[string]any{"CreatedViaTagName": "-", "ReplicaOfTagName": "-"},
			[]string{"CreatedAt", "CreatedBy", "CreatedByRole", "CreationEventId"},
		},
		{
			"renamed tag",
			map[string]any{"CreatedByTagName": "Owner", "TagKeyPrefix": "x-"},
			[]string{"x-CreatedAt", "x-CreatedByRole", "x-CreatedVia", "x-CreationEventId", "x-Owner", "x-ReplicaOf"},
		},
		{
			"static tags",
			map[string]any{"StaticTags": "Team=core,CostCenter=42", "StaticTagKeys": "Team,CostCenter"},
			[]string{"CostCenter", "CreatedAt", "CreatedBy", "CreatedByRole", "CreatedVia", "CreationEventId", "ReplicaOf", "Team"},
		},
		{
			"everything off but static tags",
			map[string]any{
				"CreatedByTagName": "-", "CreatedByRoleTagName": "-", "CreatedAtTagName": "-",
				"CreatedViaTagName": "-", "CreationEventIdTagName": "-", "ReplicaOfTagName": "-",
				"StaticTags": "Team=core", "StaticTagKeys": []string{"Team"},
			},
			[]string{"Team"},
		},
		{
			"tamper repair off, member role on",
			map[string]any{"TamperRepair": "false", "MemberRoleName": "kms-autotagger-member"},
			[]string{"CreatedAt", "CreatedBy", "CreatedByRole", "CreatedVia", "CreationEventId", "ReplicaOf"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			values := stackValues(tt.params)
			v := tagKeysCondition(t, tpl, values)
			list, ok := v.([]any)
			if !ok {
				t.Fatalf("aws:TagKeys = %#v, want a list", v)
			}
			var got []string
			for _, el := range list {
				s, ok := el.(string)
				if !ok {
					t.Fatalf("aws:TagKeys element %#v is not a string", el)
				}
				// An empty entry stands for a tag switched off; no tag
				// key is empty, so it allows nothing.
				if s != "" {
					got = append(got, s)
				}
			}
			sort.Strings(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("aws:TagKeys = %q, want %q", got, tt.want)
			}

			// The same keys as derived from the function's environment.
			prefix, _ := evaluate(t, tpl, env["TAG_KEY_PREFIX"], values)
			fromEnv := []string{}
			for _, name := range governance {
				tag, _ := evaluate(t, tpl, env[name], values)
				if tag != "-" {
					fromEnv = append(fromEnv, prefix.(string)+tag.(string))
				}
			}
			staticKeys, _ := evaluate(t, tpl, ref("StaticTagKeys"), values)
			for _, k := range staticKeys.([]any) {
				if k != "" {
					fromEnv = append(fromEnv, k.(string))
				}
			}
			sort.Strings(fromEnv)
			if !slices.Equal(got, fromEnv) {
				t.Errorf("aws:TagKeys = %q, want the configured tag keys %q", got, fromEnv)
			}

			// And the keys the handler itself may write with that
			// environment.
			stackEnv := stackEnvironment(t, tpl, values)
			c, err := config.FromEnv(func(name string) string { return stackEnv[name] })
			if err != nil {
				t.Fatalf("config.FromEnv: %v", err)
			}
			policy, err := c.Policy()
			if err != nil {
				t.Fatalf("Policy: %v", err)
			}
			handler := policy.Keys()
			sort.Strings(handler)
			if !slices.Equal(got, handler) {
				t.Errorf("aws:TagKeys = %q, want the handler's tag keys %q", got, handler)
			}
		})
	}
}

func TestDeadLetterQueueIsWiredEverywhere(t *testing.T) {
	tpl := loadTemplate(t)
	queue := onlyResource(t, tpl, "AWS::SQS::Queue", queueID)
	invoke := onlyResource(t, tpl, "AWS::Lambda::EventInvokeConfig", "AutoTaggerEventInvokeConfig")
	fn := tpl.Resources[functionID]
	var sendResources []any
	for _, g := range writtenStatements(t, tpl) {
		if acts, _ := cfn.Strings(g.stmt["Action"]); slices.Contains(acts, "sqs:SendMessage") {
			sendResources = append(sendResources, asList(g.stmt["Resource"])...)
		}
	}
	tests := []struct {
		name string
		got  func() (any, bool)
		want any
	}{
		{"queue encrypted", func() (any, bool) { return queue.Property("SqsManagedSseEnabled") }, true},
		{"queue keeps messages 14 days", func() (any, bool) { return queue.Property("MessageRetentionPeriod") }, 1209600},
		{"on-failure destination", func() (any, bool) { return invoke.Property("DestinationConfig", "OnFailure", "Destination") }, getAtt(queueID, "Arn")},
		{"on-failure config of the function", func() (any, bool) { return invoke.Property("FunctionName") }, ref(functionID)},
		{"on-failure config of $LATEST", func() (any, bool) { return invoke.Property("Qualifier") }, "$LATEST"},
		{"Lambda retries twice", func() (any, bool) { return invoke.Property("MaximumRetryAttempts") }, 2},
		{"Lambda keeps an event an hour", func() (any, bool) { return invoke.Property("MaximumEventAgeInSeconds") }, 3600},
		{"handler's queue URL", func() (any, bool) { return fn.Property("Environment", "Variables", "DEAD_LETTER_QUEUE_URL") }, ref(queueID)},
		{"handler may send to the queue", func() (any, bool) { return sendResources, len(sendResources) > 0 }, []any{getAtt(queueID, "Arn")}},
	}
	for _, id := range ruleIDs {
		rule := tpl.Resources[id]
		tests = append(tests, struct {
			name string
			got  func() (any, bool)
			want any
		}{id + " target dead-letter config", func() (any, bool) { return rule.Property("Targets", "0", "DeadLetterConfig", "Arn") }, getAtt(queueID, "Arn")})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.got()
			if !ok || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestQueuePolicyAllowsOnlyTheRules(t *testing.T) {
	tpl := loadTemplate(t)
	policy := onlyResource(t, tpl, "AWS::SQS::QueuePolicy", "DeadLetterQueuePolicy")
	if got, want := property(t, policy, "Queues"), []any{ref(queueID)}; !reflect.DeepEqual(got, want) {
		t.Errorf("Queues = %#v, want %#v", got, want)
	}
	stmts, ok := property(t, policy, "PolicyDocument", "Statement").([]any)
	if !ok || len(stmts) == 0 {
		t.Fatal("PolicyDocument.Statement is not a non-empty list")
	}
	for i, s := range stmts {
		stmt, ok := s.(map[string]any)
		if !ok {
			t.Fatalf("statement %d is not a map", i)
		}
		tests := []struct {
			path []string
			want any
		}{
			{[]string{"Effect"}, "Allow"},
			{[]string{"Principal"}, map[string]any{"Service": "events.amazonaws.com"}},
			{[]string{"Action"}, "sqs:SendMessage"},
			{[]string{"Resource"}, getAtt(queueID, "Arn")},
		}
		for _, tt := range tests {
			got, ok := cfn.Lookup(stmt, tt.path...)
			if !ok || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("statement %d %s = %#v, want %#v", i, strings.Join(tt.path, "."), got, tt.want)
			}
		}
		// The source ARNs are exactly the rules the stack has.
		for _, tamperRepair := range []string{"true", "false"} {
			values := stackValues(map[string]any{"TamperRepair": tamperRepair})
			var rules []string
			for _, id := range ruleIDs {
				if created(t, tpl, id, values) {
					rules = append(rules, values[id+".Arn"].(string))
				}
			}
			cond, _ := evaluate(t, tpl, stmt["Condition"], values)
			arns, ok := cfn.Lookup(cond, "ArnEquals", "aws:SourceArn")
			got, isStrings := cfn.Strings(arns)
			if m, isMap := cond.(map[string]any); !ok || !isStrings || !isMap || len(m) != 1 || len(m["ArnEquals"].(map[string]any)) != 1 {
				t.Errorf("TamperRepair %s: statement %d Condition = %#v, want only ArnEquals aws:SourceArn", tamperRepair, i, cond)
				continue
			}
			sort.Strings(got)
			sort.Strings(rules)
			if !slices.Equal(got, rules) {
				t.Errorf("TamperRepair %s: statement %d aws:SourceArn = %q, want the stack's rules %q", tamperRepair, i, got, rules)
			}
		}
	}
}

func TestLogGroup(t *testing.T) {
	tpl := loadTemplate(t)
	group := onlyResource(t, tpl, "AWS::Logs::LogGroup", "AutoTaggerLogGroup")
	values := stackValues(nil)
	name, _ := evaluate(t, tpl, property(t, group, "LogGroupName"), values)
	if want := "/aws/lambda/" + values[functionID].(string); name != want {
		t.Errorf("LogGroupName = %v, want %q", name, want)
	}
	if got, want := property(t, group, "RetentionInDays"), ref("LogRetentionInDays"); !reflect.DeepEqual(got, want) {
		t.Errorf("RetentionInDays = %#v, want %#v", got, want)
	}
	if got, want := tpl.Parameters["LogRetentionInDays"].Default, "90"; got != want {
		t.Errorf("LogRetentionInDays Default = %q, want %q", got, want)
	}
	for _, id := range ruleIDs {
		if got := tpl.Resources[id].DependsOn; !slices.Contains(got, "AutoTaggerLogGroup") {
			t.Errorf("%s DependsOn = %q, want it to include AutoTaggerLogGroup", id, got)
		}
	}
}

func TestAlarms(t *testing.T) {
	tpl := loadTemplate(t)
	alarms := map[string]struct {
		namespace, metric string
		dimension         map[string]any
	}{
		"DeadLetterQueueAlarm": {"AWS/SQS", "ApproximateNumberOfMessagesVisible", map[string]any{"Name": "QueueName", "Value": getAtt(queueID, "QueueName")}},
		"FunctionErrorsAlarm":  {"AWS/Lambda", "Errors", map[string]any{"Name": "FunctionName", "Value": ref(functionID)}},
	}
	if got, want := tpl.ResourcesOfType("AWS::CloudWatch::Alarm"), slices.Sorted(maps.Keys(alarms)); !slices.Equal(got, want) {
		t.Errorf("alarms = %q, want %q", got, want)
	}
	for id, want := range alarms {
		alarm := tpl.Resources[id]
		checks := []struct {
			property string
			want     any
		}{
			{"Namespace", want.namespace},
			{"MetricName", want.metric},
			{"Dimensions", []any{want.dimension}},
			{"Threshold", 0},
			{"ComparisonOperator", "GreaterThanThreshold"},
		}
		for _, c := range checks {
			if got := property(t, alarm, c.property); !reflect.DeepEqual(got, c.want) {
				t.Errorf("%s %s = %#v, want %#v", id, c.property, got, c.want)
			}
		}
	}
	for _, typ := range []string{"AWS::SNS::Topic", "AWS::SNS::Subscription"} {
		for _, id := range tpl.ResourcesOfType(typ) {
			if got := tpl.Resources[id].Condition; got != "HasAlarmEmail" {
				t.Errorf("%s Condition = %q, want HasAlarmEmail", id, got)
			}
		}
	}
	sub := onlyResource(t, tpl, "AWS::SNS::Subscription", "AlarmTopicSubscription")
	if got, want := property(t, sub, "Endpoint"), ref("AlarmEmail"); !reflect.DeepEqual(got, want) {
		t.Errorf("subscription Endpoint = %#v, want %#v", got, want)
	}
	if got, want := property(t, sub, "Protocol"), any("email"); got != want {
		t.Errorf("subscription Protocol = %v, want %v", got, want)
	}

	tests := []struct {
		name    string
		email   string
		topic   bool
		actions []any
	}{
		{"no e-mail", "", false, nil},
		{"e-mail", "ops@example.com", true, []any{"arn:aws:sns:us-east-1:111122223333:kms-autotagger-AlarmTopic-7Qp1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			values := stackValues(map[string]any{"AlarmEmail": tt.email})
			got, err := tpl.Condition("HasAlarmEmail", values)
			if err != nil {
				t.Fatalf("Condition: %v", err)
			}
			if got != tt.topic {
				t.Errorf("HasAlarmEmail = %v, want %v", got, tt.topic)
			}
			for id := range alarms {
				for _, prop := range []string{"AlarmActions", "OKActions"} {
					actions, present := evaluate(t, tpl, property(t, tpl.Resources[id], prop), values)
					if tt.actions == nil {
						if present {
							t.Errorf("%s %s = %#v, want none", id, prop, actions)
						}
					} else if !reflect.DeepEqual(actions, tt.actions) {
						t.Errorf("%s %s = %#v, want %#v", id, prop, actions, tt.actions)
					}
				}
			}
		})
	}
}

func TestReservedConcurrency(t *testing.T) {
	tpl := loadTemplate(t)
	setting := property(t, tpl.Resources[functionID], "ReservedConcurrentExecutions")
	tests := []struct {
		name    string
		params  map[string]any
		want    string
		present bool
	}{
		{"default", nil, "10", true},
		{"set", map[string]any{"ReservedConcurrency": "25"}, "25", true},
		{"-1 is unreserved", map[string]any{"ReservedConcurrency": "-1"}, "", false},
		{"0 is unreserved, not stopped", map[string]any{"ReservedConcurrency": "0"}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, present := evaluate(t, tpl, setting, stackValues(tt.params))
			if present != tt.present || (present && got != tt.want) {
				t.Errorf("ReservedConcurrentExecutions = %#v (present %v), want %q (present %v)", got, present, tt.want, tt.present)
			}
		})
	}
}

func TestOrganizationEventBusPolicy(t *testing.T) {
	tpl := loadTemplate(t)
	policy := onlyResource(t, tpl, "AWS::Events::EventBusPolicy", busPolicyID)
	if policy.Condition != "HasOrganizationId" {
		t.Errorf("Condition = %q, want HasOrganizationId", policy.Condition)
	}
	for _, tt := range []struct {
		org  string
		want bool
	}{{"", false}, {"o-a1b2c3d4e5", true}} {
		if got := created(t, tpl, busPolicyID, stackValues(map[string]any{"OrganizationId": tt.org})); got != tt.want {
			t.Errorf("OrganizationId %q: %s created = %v, want %v", tt.org, busPolicyID, got, tt.want)
		}
	}
	if got := property(t, policy, "EventBusName"); got != "default" {
		t.Errorf("EventBusName = %v, want default (the bus the rules are on)", got)
	}
	if got, _ := policy.Property("Statement", "Condition", "StringEquals", "aws:PrincipalOrgID"); !reflect.DeepEqual(got, ref("OrganizationId")) {
		t.Errorf("aws:PrincipalOrgID = %#v, want %#v", got, ref("OrganizationId"))
	}

	for _, region := range []string{"us-east-1", "eu-west-1"} {
		values := stackValues(map[string]any{"OrganizationId": "o-a1b2c3d4e5", "AWS::Region": region})
		v, _ := evaluate(t, tpl, property(t, policy, "Statement"), values)
		stmt, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("Statement = %#v, want one statement", v)
		}
		stmt = maps.Clone(stmt)
		delete(stmt, "Sid")
		want := map[string]any{
			"Effect":    "Allow",
			"Principal": "*",
			"Action":    "events:PutEvents",
			"Resource":  "arn:aws:events:" + region + ":111122223333:event-bus/default",
			"Condition": map[string]any{"StringEquals": map[string]any{
				"aws:PrincipalOrgID": "o-a1b2c3d4e5",
				"events:source":      "aws.kms",
				"events:detail-type": "AWS API Call via CloudTrail",
			}},
		}
		if !reflect.DeepEqual(stmt, want) {
			t.Errorf("Statement in %s = %#v, want %#v", region, stmt, want)
		}
	}
	// The events it lets in are the ones the rules take.
	for _, id := range ruleIDs {
		p := patternOf(t, tpl, id, stackValues(nil))
		if !reflect.DeepEqual(p["source"], []any{"aws.kms"}) || !reflect.DeepEqual(p["detail-type"], []any{"AWS API Call via CloudTrail"}) {
			t.Errorf("%s source %v detail-type %v, want what the bus policy allows", id, p["source"], p["detail-type"])
		}
	}

	// The StatementId names the policy's statement on the account's bus
	// and is the resource's physical id: EventBridge takes 1 to 64 of
	// [A-Za-z0-9_-], and it must be the stack's own, unlike that of any
	// other stack in the account and region: another kms-autotagger stack
	// or deploy/central-bus-policy.yaml, deployed next to this one.
	statementID := regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	central := loadDeploy(t, busPolicyPath)
	centralID, _ := evaluate(t, central, property(t, central.Resources["OrganizationPutEvents"], "StatementId"),
		deployValues(centralAccount, "us-east-1", map[string]any{"OrganizationId": "o-a1b2c3d4e5"}))
	longName := "kms-autotagger-" + strings.Repeat("x", 128-len("kms-autotagger-"))
	stacks := []struct{ name, id string }{
		{"kms-autotagger", "6a1f0c40-af3e-11ee-b2f1-0a8f5c6a7e1d"},
		{"kms-autotagger-staging", "0c2b7e10-b0a1-11ee-9d3c-12c4a5b6c7d8"},
		{longName, "f47ac10b-58cc-4372-a567-0e02b2c3d479"},
	}
	seen := map[string]string{}
	for _, s := range stacks {
		values := stackValues(map[string]any{
			"OrganizationId": "o-a1b2c3d4e5",
			"AWS::StackName": s.name,
			"AWS::StackId":   "arn:aws:cloudformation:us-east-1:111122223333:stack/" + s.name + "/" + s.id,
		})
		v, _ := evaluate(t, tpl, property(t, policy, "StatementId"), values)
		id, _ := v.(string)
		if !statementID.MatchString(id) {
			t.Errorf("stack %.30s...: StatementId = %q, want 1 to 64 of [A-Za-z0-9_-]", s.name, id)
		}
		if id == centralID {
			t.Errorf("stack %.30s...: StatementId = %q, the same as deploy/central-bus-policy.yaml's: the two stacks would collide", s.name, id)
		}
		if other, dup := seen[id]; dup {
			t.Errorf("stacks %.30s... and %.30s... have the same StatementId %q", other, s.name, id)
		}
		seen[id] = s.name
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
		if err := em.Record(metrics.Event{Outcome: string(o), EventName: "CreateKey", Region: "us-east-1", Attempts: 1}); err != nil {
			t.Fatalf("Record: %v", err)
		}
	}
	out := emitted{names: map[string]bool{}, outcomes: map[string]bool{}}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != len(outcomes) {
		t.Fatalf("emitter wrote %d lines, want %d", len(lines), len(outcomes))
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

// dashboardMetrics evaluates the dashboard body for values and returns the
// widgets' metrics, failing on anything but valid JSON of metric widgets.
func dashboardMetrics(t *testing.T, tpl *cfn.Template, values map[string]any) []dashboardMetric {
	t.Helper()
	dash := onlyResource(t, tpl, "AWS::CloudWatch::Dashboard", dashboardID)
	v, _ := evaluate(t, tpl, property(t, dash, "DashboardBody"), values)
	body, ok := v.(string)
	if !ok {
		t.Fatalf("DashboardBody = %#v, want a string", v)
	}
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
		if w.Properties.Region != values["AWS::Region"] {
			t.Errorf("%s region = %q, want the stack's %v", title, w.Properties.Region, values["AWS::Region"])
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
	tpl := loadTemplate(t)
	dash := onlyResource(t, tpl, "AWS::CloudWatch::Dashboard", dashboardID)
	dashboardName := regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)
	name, _ := evaluate(t, tpl, property(t, dash, "DashboardName"), stackValues(nil))
	if s, _ := name.(string); !dashboardName.MatchString(s) {
		t.Errorf("DashboardName = %#v, want 1 to 255 of [A-Za-z0-9_-]", name)
	}

	tests := []struct {
		name      string
		namespace string
	}{
		{"default namespace", tpl.Parameters["MetricsNamespace"].Default},
		{"namespace given", "Governance/KMS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			values := stackValues(map[string]any{"MetricsNamespace": tt.namespace})
			want := emittedMetrics(t, tt.namespace)
			if want.namespace != tt.namespace {
				t.Fatalf("emitter namespace = %q, want %q", want.namespace, tt.namespace)
			}
			sets := map[string]bool{}
			for _, s := range want.dimensionSets {
				sets[strings.Join(slices.Sorted(slices.Values(s)), ",")] = true
			}
			shown := map[string]bool{}
			own := 0
			for _, m := range dashboardMetrics(t, tpl, values) {
				switch {
				case m.namespace == tt.namespace:
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
				case m.namespace == "AWS/SQS":
					if got := m.dimensions["QueueName"]; got != values[queueID+".QueueName"] || len(m.dimensions) != 1 {
						t.Errorf("%s shows AWS/SQS %s of %v, want the dead-letter queue %v", m.widget, m.name, m.dimensions, values[queueID+".QueueName"])
					}
				case m.namespace == "AWS/Lambda":
					if got := m.dimensions["FunctionName"]; got != values[functionID] || len(m.dimensions) != 1 {
						t.Errorf("%s shows AWS/Lambda %s of %v, want the function %v", m.widget, m.name, m.dimensions, values[functionID])
					}
				default:
					t.Errorf("%s shows namespace %q, want the MetricsNamespace parameter's %q, AWS/SQS or AWS/Lambda", m.widget, m.namespace, tt.namespace)
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
	tpl := loadTemplate(t)
	tests := []struct {
		name      string
		want      any
		condition string
	}{
		{"FunctionName", ref(functionID), ""},
		{"FunctionArn", getAtt(functionID, "Arn"), ""},
		{"FunctionRoleArn", getAtt(roleID, "Arn"), ""},
		{"RuleArn", getAtt(ruleID, "Arn"), ""},
		{"TagChangeRuleArn", getAtt(tagRuleID, "Arn"), tpl.Resources[tagRuleID].Condition},
		{"DashboardName", ref(dashboardID), ""},
		{"DeadLetterQueueUrl", ref(queueID), ""},
		{"DeadLetterQueueArn", getAtt(queueID, "Arn"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, ok := tpl.Outputs[tt.name]
			if !ok {
				t.Fatalf("no output %s", tt.name)
			}
			if !reflect.DeepEqual(out.Value, tt.want) {
				t.Errorf("output %s = %#v, want %#v", tt.name, out.Value, tt.want)
			}
			if out.Condition != tt.condition {
				t.Errorf("output %s Condition = %q, want %q", tt.name, out.Condition, tt.condition)
			}
		})
	}
	// deploy/member-role.yaml's TaggerRoleArn is the role's ARN.
	if got, _ := evaluate(t, tpl, tpl.Outputs["FunctionRoleArn"].Value, stackValues(nil)); got != taggerRoleARN {
		t.Errorf("FunctionRoleArn = %v, want %s", got, taggerRoleARN)
	}
}

func TestReferencesAreDefined(t *testing.T) {
	tpl := loadTemplate(t)
	refs, err := tpl.References()
	if err != nil {
		t.Fatalf("References: %v", err)
	}
	if len(refs) == 0 {
		t.Fatal("References found none")
	}
	undefined, err := tpl.Undefined()
	if err != nil {
		t.Fatalf("Undefined: %v", err)
	}
	for _, r := range undefined {
		t.Errorf("undefined: %s", r)
	}
}

// TestReferencesToConditionalResources evaluates every resource and output
// that a stack creates, for every combination of the parameters that
// conditions depend on, with values for the created resources only: a
// reference to a resource the stack does not create fails the evaluation,
// as it fails the stack.
func TestReferencesToConditionalResources(t *testing.T) {
	tpl := loadTemplate(t)
	refs, err := tpl.References()
	if err != nil {
		t.Fatalf("References: %v", err)
	}
	choices := []struct {
		param  string
		values []string
	}{
		{"TamperRepair", []string{"true", "false"}},
		{"MemberRoleName", []string{"", "kms-autotagger-member"}},
		{"OrganizationId", []string{"", "o-a1b2c3d4e5"}},
		{"AlarmEmail", []string{"", "ops@example.com"}},
		{"ReservedConcurrency", []string{"10", "-1"}},
	}
	combinations := []map[string]any{{}}
	for _, c := range choices {
		var next []map[string]any
		for _, base := range combinations {
			for _, v := range c.values {
				m := maps.Clone(base)
				m[c.param] = v
				next = append(next, m)
			}
		}
		combinations = next
	}
	stack := stackValues(nil)
	for _, params := range combinations {
		name := fmt.Sprint(params)
		values := map[string]any{}
		for _, p := range []string{"AWS::Partition", "AWS::AccountId", "AWS::Region", "AWS::StackName", "AWS::StackId"} {
			values[p] = stack[p]
		}
		maps.Copy(values, params)
		exists := map[string]bool{}
		for id := range tpl.Resources {
			exists[id] = created(t, tpl, id, values)
		}
		for _, r := range refs {
			if _, isResource := tpl.Resources[r.Name]; !isResource || !exists[r.Name] {
				continue
			}
			key := r.Name
			if r.Attribute != "" {
				key += "." + r.Attribute
			}
			values[key] = "value-of-" + key
		}
		for _, id := range slices.Sorted(maps.Keys(tpl.Resources)) {
			if !exists[id] {
				continue
			}
			r := tpl.Resources[id]
			if _, _, err := tpl.Evaluate(r.Properties, values); err != nil {
				t.Errorf("%s: resource %s: %v", name, id, err)
			}
			for _, d := range r.DependsOn {
				if !exists[d] {
					t.Errorf("%s: resource %s depends on %s, which is not created", name, id, d)
				}
			}
		}
		for _, id := range slices.Sorted(maps.Keys(tpl.Outputs)) {
			o := tpl.Outputs[id]
			if o.Condition != "" {
				on, err := tpl.Condition(o.Condition, values)
				if err != nil {
					t.Fatalf("Condition(%s): %v", o.Condition, err)
				}
				if !on {
					continue
				}
			}
			if _, _, err := tpl.Evaluate(o.Value, values); err != nil {
				t.Errorf("%s: output %s: %v", name, id, err)
			}
		}
	}
}

func TestARNsArePartitionAware(t *testing.T) {
	tpl := loadTemplate(t)
	var walk func(v any, path string)
	walk = func(v any, path string) {
		switch x := v.(type) {
		case map[string]any:
			for k, el := range x {
				walk(el, path+"."+k)
			}
		case []any:
			for _, el := range x {
				walk(el, path+"[]")
			}
		case string:
			if strings.Contains(x, "arn:aws:") || strings.Contains(x, "arn:aws-") {
				t.Errorf("%s = %q names a partition; use ${AWS::Partition}", path, x)
			}
		}
	}
	walk(tpl.Tree, "")
}

func TestEnvFileForLocalInvoke(t *testing.T) {
	tpl := loadTemplate(t)
	env := environment(t, tpl)
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
	for _, name := range []string{"AWS_ENDPOINT_URL_KMS", "AWS_ENDPOINT_URL_SQS", "DEAD_LETTER_QUEUE_URL"} {
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

// The tests below are of the package's own parsing and evaluation.

func parseTemplate(t *testing.T, src string) *cfn.Template {
	t.Helper()
	tpl, err := cfn.Parse([]byte(src))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, src)
	}
	return tpl
}

func TestParseShortForms(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  any
	}{
		{"Ref", `!Ref Param`, ref("Param")},
		{"GetAtt dotted", `!GetAtt Queue.Arn`, getAtt("Queue", "Arn")},
		{"GetAtt nested attribute", `!GetAtt Db.Endpoint.Address`, getAtt("Db", "Endpoint.Address")},
		{"GetAtt list", `!GetAtt [Queue, Arn]`, getAtt("Queue", "Arn")},
		{"Sub string", `!Sub "arn:${AWS::Partition}:sqs"`, map[string]any{"Fn::Sub": "arn:${AWS::Partition}:sqs"}},
		{"Sub with variables", `!Sub ["${X}-y", {X: !Ref Param}]`, map[string]any{"Fn::Sub": []any{"${X}-y", map[string]any{"X": ref("Param")}}}},
		{"If", `!If [Cond, a, !Ref AWS::NoValue]`, map[string]any{"Fn::If": []any{"Cond", "a", ref("AWS::NoValue")}}},
		{"Equals", `!Equals [!Ref Param, ""]`, map[string]any{"Fn::Equals": []any{ref("Param"), ""}}},
		{"Not and Condition", `!Not [!Condition Cond]`, map[string]any{"Fn::Not": []any{map[string]any{"Condition": "Cond"}}}},
		{"And", `!And [!Condition A, !Condition B]`, map[string]any{"Fn::And": []any{map[string]any{"Condition": "A"}, map[string]any{"Condition": "B"}}}},
		{"Or", `!Or [!Condition A, !Condition B]`, map[string]any{"Fn::Or": []any{map[string]any{"Condition": "A"}, map[string]any{"Condition": "B"}}}},
		{"Join", `!Join [",", [a, b]]`, map[string]any{"Fn::Join": []any{",", []any{"a", "b"}}}},
		{"Split", `!Split [",", !Ref List]`, map[string]any{"Fn::Split": []any{",", ref("List")}}},
		{"Select and GetAZs", `!Select [0, !GetAZs ""]`, map[string]any{"Fn::Select": []any{0, map[string]any{"Fn::GetAZs": ""}}}},
		{"FindInMap", `!FindInMap [Map, Top, Second]`, map[string]any{"Fn::FindInMap": []any{"Map", "Top", "Second"}}},
		{"ImportValue", `!ImportValue shared-vpc`, map[string]any{"Fn::ImportValue": "shared-vpc"}},
		{"Base64", `!Base64 hello`, map[string]any{"Fn::Base64": "hello"}},
		{"Sub block", "!Sub |\n        a ${X}\n", map[string]any{"Fn::Sub": "a ${X}\n"}},
		{"long form untouched", `{"Fn::GetAtt": ["Queue", "Arn"]}`, getAtt("Queue", "Arn")},
		{"integer", `10`, 10},
		{"float", `1.5`, 1.5},
		{"boolean", `true`, true},
		{"null", `~`, nil},
		{"quoted number", `"10"`, "10"},
		{"date stays a string", `2010-09-09`, "2010-09-09"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl := parseTemplate(t, "Resources:\n  R:\n    Type: T\n    Properties:\n      P: "+tt.value+"\n")
			if got := tpl.Resources["R"].Properties["P"]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("P: %s = %#v, want %#v", tt.value, got, tt.want)
			}
		})
	}
}

func TestParseSections(t *testing.T) {
	tpl := parseTemplate(t, `
AWSTemplateFormatVersion: 2010-09-09
Description: demo
Transform: [AWS::LanguageExtensions, AWS::Serverless-2016-10-31]
Parameters:
  Count:
    Type: Number
    Default: 10
    AllowedValues: [5, 10]
  Name:
    Type: String
    Default: ""
    AllowedPattern: "^[a-z]*$"
  Required:
    Type: String
Conditions:
  Always: !Equals [a, a]
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Condition: Always
    DependsOn: Other
    DeletionPolicy: Retain
    UpdateReplacePolicy: Snapshot
    Metadata:
      Note: x
  Other:
    Type: AWS::SNS::Topic
    DependsOn: [Queue]
Outputs:
  Url:
    Value: !Ref Queue
    Condition: Always
    Description: the URL
    Export:
      Name: url
`)
	if tpl.FormatVersion != "2010-09-09" || tpl.Description != "demo" {
		t.Errorf("FormatVersion, Description = %q, %q, want %q, %q", tpl.FormatVersion, tpl.Description, "2010-09-09", "demo")
	}
	if want := []string{"AWS::LanguageExtensions", "AWS::Serverless-2016-10-31"}; !slices.Equal(tpl.Transform, want) {
		t.Errorf("Transform = %q, want %q", tpl.Transform, want)
	}
	params := []struct {
		name       string
		typ, def   string
		hasDefault bool
		allowed    []string
		pattern    string
	}{
		{"Count", "Number", "10", true, []string{"5", "10"}, ""},
		{"Name", "String", "", true, nil, "^[a-z]*$"},
		{"Required", "String", "", false, nil, ""},
	}
	for _, p := range params {
		got := tpl.Parameters[p.name]
		if got.Type != p.typ || got.Default != p.def || got.HasDefault != p.hasDefault || !slices.Equal(got.AllowedValues, p.allowed) || got.AllowedPattern != p.pattern {
			t.Errorf("parameter %s = %+v, want Type %q Default %q HasDefault %v AllowedValues %q AllowedPattern %q",
				p.name, got, p.typ, p.def, p.hasDefault, p.allowed, p.pattern)
		}
	}
	q := tpl.Resources["Queue"]
	if q.Type != "AWS::SQS::Queue" || q.Condition != "Always" || !slices.Equal(q.DependsOn, []string{"Other"}) ||
		q.DeletionPolicy != "Retain" || q.UpdateReplacePolicy != "Snapshot" || q.Metadata["Note"] != "x" || q.Properties != nil {
		t.Errorf("resource Queue = %+v, want the attributes as written and no properties", q)
	}
	if got := tpl.Resources["Other"].DependsOn; !slices.Equal(got, []string{"Queue"}) {
		t.Errorf("Other DependsOn = %q, want [Queue]", got)
	}
	out := tpl.Outputs["Url"]
	if !reflect.DeepEqual(out.Value, ref("Queue")) || out.Condition != "Always" || out.Description != "the URL" ||
		!reflect.DeepEqual(out.Export, map[string]any{"Name": "url"}) {
		t.Errorf("output Url = %+v, want the output as written", out)
	}
	if _, ok := tpl.Conditions["Always"]; !ok {
		t.Error("condition Always missing")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		wantErr string
	}{
		{"invalid YAML", "Resources: [", "cfn:"},
		{"empty", "", "empty template"},
		{"not a mapping", "- a\n- b\n", "not a mapping"},
		{"no resources", "Description: x\n", "no Resources"},
		{"resource without a type", "Resources:\n  R:\n    Properties: {}\n", "resource R: no Type"},
		{"resource not a map", "Resources:\n  R: x\n", "resource R: not a mapping"},
		{"properties not a map", "Resources:\n  R:\n    Type: T\n    Properties: [a]\n", "Properties is not a mapping"},
		{"unknown tag", "Resources:\n  R:\n    Type: T\n    Properties:\n      P: !Foo x\n", "unknown tag !Foo"},
		{"duplicate key", "Resources:\n  R:\n    Type: T\n  R:\n    Type: U\n", `duplicate key "R"`},
		{"merge key", "Base: &b {Type: T}\nResources:\n  R:\n    <<: *b\n", "merge keys"},
		{"Ref of a list", "Resources:\n  R:\n    Type: T\n    Properties:\n      P: !Ref [a]\n", "!Ref takes a name"},
		{"GetAtt without attribute", "Resources:\n  R:\n    Type: T\n    Properties:\n      P: !GetAtt Queue\n", "not Resource.Attribute"},
		{"parameter without type", "Parameters:\n  P: {Default: x}\nResources:\n  R: {Type: T}\n", "parameter P: no Type"},
		{"parameter default a list", "Parameters:\n  P: {Type: String, Default: [a]}\nResources:\n  R: {Type: T}\n", "Default is not a scalar"},
		{"output without value", "Resources:\n  R: {Type: T}\nOutputs:\n  O: {Description: x}\n", "output O: no Value"},
		{"transform not names", "Transform: {a: b}\nResources:\n  R: {Type: T}\n", "Transform"},
		{"DependsOn not names", "Resources:\n  R: {Type: T, DependsOn: {a: b}}\n", "DependsOn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cfn.Parse([]byte(tt.src))
			if err == nil {
				t.Fatalf("Parse(%q) = nil error, want one containing %q", tt.src, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Parse(%q) error = %q, want it to contain %q", tt.src, err, tt.wantErr)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte("Resources:\n  R: {Type: T}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("Resources: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		wantErr string
	}{
		{"valid", good, ""},
		{"missing file", filepath.Join(dir, "missing.yaml"), "missing.yaml"},
		{"invalid template names the file", bad, "bad.yaml: cfn: template has no Resources"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl, err := cfn.Load(tt.path)
			if tt.wantErr == "" {
				if err != nil || tpl.Resources["R"].Type != "T" {
					t.Fatalf("Load(%q) = %+v, %v; want resource R of type T", tt.path, tpl, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Load(%q) error = %v, want it to contain %q", tt.path, err, tt.wantErr)
			}
		})
	}
}

func TestSubVariables(t *testing.T) {
	tests := []struct {
		s       string
		want    []string
		wantErr bool
	}{
		{"plain", nil, false},
		{"${A}", []string{"A"}, false},
		{"arn:${AWS::Partition}:kms:*:${AWS::AccountId}:key/*", []string{"AWS::Partition", "AWS::AccountId"}, false},
		{"${Res.Arn}/x", []string{"Res.Arn"}, false},
		{"${!Literal} and ${B}", []string{"B"}, false},
		{"$A {B} $", nil, false},
		{"${A", nil, true},
		{"x${}", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.s, func(t *testing.T) {
			got, err := cfn.SubVariables(tt.s)
			if (err != nil) != tt.wantErr {
				t.Fatalf("SubVariables(%q) error = %v, want error %v", tt.s, err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("SubVariables(%q) = %q, want %q", tt.s, got, tt.want)
			}
		})
	}
}

func TestUndefined(t *testing.T) {
	tpl := parseTemplate(t, `
Parameters:
  Param: {Type: String, Default: x}
Mappings:
  Map: {a: {b: c}}
Conditions:
  Known: !Equals [!Ref Param, x]
  Chained: !Not [!Condition Missing1]
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Condition: Missing2
    DependsOn: [Topic, Ghost]
    Properties:
      A: !Ref Param
      B: !Ref AWS::Region
      C: !Ref Nope
      D: !GetAtt Topic.TopicArn
      E: !GetAtt Param.Arn
      F: !Sub "${Param}-${AWS::StackName}-${Topic.TopicName}-${!Escaped}-${Missing3}-${AWS::Bogus}"
      G: !Sub ["${Local}-${Param.Attr}", {Local: !Ref Missing4}]
      H: !If [Known, a, !If [Missing5, b, c]]
      I: !FindInMap [Map, a, b]
      J: !FindInMap [NoMap, a, b]
  Topic:
    Type: AWS::SNS::Topic
Outputs:
  O:
    Value: !Ref Queue
    Condition: Missing6
`)
	got, err := tpl.Undefined()
	if err != nil {
		t.Fatalf("Undefined: %v", err)
	}
	var names []string
	for _, r := range got {
		name := string(r.Kind) + " " + r.Name
		if r.Attribute != "" {
			name += "." + r.Attribute
		}
		names = append(names, name)
	}
	sort.Strings(names)
	want := []string{
		"Condition Missing1",
		"Condition Missing2",
		"Condition Missing5",
		"Condition Missing6",
		"DependsOn Ghost",
		"Fn::FindInMap NoMap",
		"Fn::GetAtt Param.Arn",
		"Fn::Sub AWS::Bogus",
		"Fn::Sub Missing3",
		"Fn::Sub Param.Attr",
		"Ref Missing4",
		"Ref Nope",
	}
	if !slices.Equal(names, want) {
		t.Errorf("Undefined() = %q, want %q", names, want)
	}
}

func TestReferencesErrors(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		wantErr string
	}{
		{"Ref of a map", `{"Ref": {"a": "b"}}`, "Ref takes a name"},
		{"GetAtt of one element", `{"Fn::GetAtt": ["A"]}`, "Fn::GetAtt"},
		{"Sub unterminated", `!Sub "${A"`, "unterminated"},
		{"Sub of a number", `{"Fn::Sub": 5}`, "Fn::Sub takes"},
		{"If of two", `!If [A, b]`, "Fn::If"},
		{"FindInMap of two", `!FindInMap [A, b]`, "Fn::FindInMap"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl := parseTemplate(t, "Resources:\n  R:\n    Type: T\n    Properties:\n      P: "+tt.value+"\n")
			_, err := tpl.References()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("References() error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

const evalTemplate = `
Parameters:
  Name: {Type: String, Default: demo}
  Count: {Type: Number, Default: 3}
  Keys: {Type: CommaDelimitedList, Default: "a,b"}
  Empty: {Type: CommaDelimitedList, Default: ""}
  NoDefault: {Type: String}
Mappings:
  Sizes:
    small: {mem: 128}
Conditions:
  IsDemo: !Equals [!Ref Name, demo]
  NotDemo: !Not [!Condition IsDemo]
  Both: !And [!Condition IsDemo, !Equals [!Ref Count, 3]]
  Either: !Or [!Condition NotDemo, !Equals [!Ref Count, "4"]]
  Loop: !Not [!Condition Loop]
Resources:
  R: {Type: T}
`

func TestEvaluate(t *testing.T) {
	tpl := parseTemplate(t, evalTemplate)
	base := map[string]any{"AWS::Region": "eu-west-1", "R": "r-id", "R.Arn": "arn:r"}
	tests := []struct {
		name    string
		expr    string
		values  map[string]any
		want    any
		present bool
	}{
		{"literal", `x`, nil, "x", true},
		{"parameter default", `!Ref Name`, nil, "demo", true},
		{"parameter given", `!Ref Name`, map[string]any{"Name": "prod"}, "prod", true},
		{"number parameter is a string", `!Ref Count`, nil, "3", true},
		{"list parameter", `!Ref Keys`, nil, []any{"a", "b"}, true},
		{"empty list parameter", `!Ref Empty`, nil, []any{""}, true},
		{"list parameter given as []string", `!Ref Keys`, map[string]any{"Keys": []string{"x"}}, []any{"x"}, true},
		{"pseudo parameter", `!Ref AWS::Region`, nil, "eu-west-1", true},
		{"resource", `!Ref R`, nil, "r-id", true},
		{"GetAtt", `!GetAtt R.Arn`, nil, "arn:r", true},
		{"NoValue", `!Ref AWS::NoValue`, nil, nil, false},
		{"Sub", `!Sub "${Name}-${AWS::Region}-${R.Arn}-${!Literal}"`, nil, "demo-eu-west-1-arn:r-${Literal}", true},
		{"Sub with variables", `!Sub ["${A}/${Name}", {A: !Ref Count}]`, nil, "3/demo", true},
		{"Join", `!Join ["-", [a, !Ref Name, !Ref AWS::NoValue, 4]]`, nil, "a-demo-4", true},
		{"Join of a list parameter", `!Join [",", !Ref Keys]`, nil, "a,b", true},
		{"Split", `!Split [",", "a,,b"]`, nil, []any{"a", "", "b"}, true},
		{"Select", `!Select [1, !Ref Keys]`, nil, "b", true},
		{"If true", `!If [IsDemo, yes, no]`, nil, "yes", true},
		{"If false", `!If [IsDemo, yes, no]`, map[string]any{"Name": "prod"}, "no", true},
		{"If to NoValue", `!If [NotDemo, yes, !Ref AWS::NoValue]`, nil, nil, false},
		{"NoValue dropped from a list", `[a, !If [NotDemo, b, !Ref AWS::NoValue], c]`, nil, []any{"a", "c"}, true},
		{"NoValue dropped from a map", `{a: 1, b: !Ref AWS::NoValue}`, nil, map[string]any{"a": 1}, true},
		{"FindInMap", `!FindInMap [Sizes, small, mem]`, nil, 128, true},
		{"condition function", `!Equals [!Ref Count, 3]`, nil, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			values := maps.Clone(base)
			maps.Copy(values, tt.values)
			expr := parseTemplate(t, "Resources:\n  R:\n    Type: T\n    Properties:\n      P: "+tt.expr+"\n").Resources["R"].Properties["P"]
			got, present, err := tpl.Evaluate(expr, values)
			if err != nil {
				t.Fatalf("Evaluate(%s): %v", tt.expr, err)
			}
			if present != tt.present || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Evaluate(%s) = %#v, %v; want %#v, %v", tt.expr, got, present, tt.want, tt.present)
			}
		})
	}
}

func TestEvaluateErrors(t *testing.T) {
	tpl := parseTemplate(t, evalTemplate)
	tests := []struct {
		name    string
		expr    string
		wantErr string
	}{
		{"pseudo parameter not given", `!Ref AWS::AccountId`, "no value for AWS::AccountId"},
		{"parameter without default", `!Ref NoDefault`, "NoDefault has no value"},
		{"resource not given", `!Ref Other`, "no value for Other"},
		{"GetAtt not given", `!GetAtt R.Name`, "no value for R.Name"},
		{"Sub of a missing name", `!Sub "${Other}"`, "no value for Other"},
		{"Sub of a list", `!Sub "${Keys}"`, "${Keys} is not a string"},
		{"unsupported function", `!Base64 x`, "cannot evaluate Fn::Base64"},
		{"unknown condition", `!If [Nope, a, b]`, "no condition Nope"},
		{"condition cycle", `!If [Loop, a, b]`, "refers to itself"},
		{"Select out of range", `!Select [5, !Ref Keys]`, "out of range"},
		{"Join of a string", `!Join [",", abc]`, "not a list"},
		{"FindInMap missing key", `!FindInMap [Sizes, large, mem]`, "has no large.mem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expr := parseTemplate(t, "Resources:\n  R:\n    Type: T\n    Properties:\n      P: "+tt.expr+"\n").Resources["R"].Properties["P"]
			_, _, err := tpl.Evaluate(expr, map[string]any{"R": "r-id"})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Evaluate(%s) error = %v, want it to contain %q", tt.expr, err, tt.wantErr)
			}
		})
	}
}

func TestCondition(t *testing.T) {
	tpl := parseTemplate(t, evalTemplate)
	tests := []struct {
		name   string
		cond   string
		values map[string]any
		want   bool
	}{
		{"Equals true", "IsDemo", nil, true},
		{"Equals false", "IsDemo", map[string]any{"Name": "prod"}, false},
		{"Not", "NotDemo", nil, false},
		{"And both", "Both", nil, true},
		{"And one", "Both", map[string]any{"Count": "4"}, false},
		{"Or neither", "Either", nil, false},
		{"Or second", "Either", map[string]any{"Count": "4"}, true},
		{"Or first", "Either", map[string]any{"Name": "prod"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tpl.Condition(tt.cond, tt.values)
			if err != nil {
				t.Fatalf("Condition(%s): %v", tt.cond, err)
			}
			if got != tt.want {
				t.Errorf("Condition(%s) = %v, want %v", tt.cond, got, tt.want)
			}
		})
	}
}
