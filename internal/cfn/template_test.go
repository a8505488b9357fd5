package cfn_test

import (
	"encoding/json"
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
)

const (
	templatePath = "../../template.yaml"
	eventsDir    = "../../events"

	functionID = "AutoTaggerFunction"
	queueID    = "DeadLetterQueue"
	ruleID     = "KeyCreatedRule"
)

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
		functionID:             "kms-autotagger-AutoTaggerFunction-Xk3P9qLm2RtA",
		functionID + ".Arn":    "arn:aws:lambda:us-east-1:111122223333:function:kms-autotagger-AutoTaggerFunction-Xk3P9qLm2RtA",
		queueID:                "https://sqs.us-east-1.amazonaws.com/111122223333/kms-autotagger-DeadLetterQueue-9ZtQ",
		queueID + ".Arn":       "arn:aws:sqs:us-east-1:111122223333:kms-autotagger-DeadLetterQueue-9ZtQ",
		queueID + ".QueueName": "kms-autotagger-DeadLetterQueue-9ZtQ",
		ruleID + ".Arn":        "arn:aws:events:us-east-1:111122223333:rule/kms-autotagger-KeyCreatedRule-4Hw2",
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
		t.Errorf("Events property = %v, want none (the rule is an AWS::Events::Rule resource)", v)
	}
}

// eventSamples lists every file in events/ and whether the rule must deliver
// it to the function.
var eventSamples = []struct {
	file  string
	match bool
}{
	{"createkey_iamuser.json", true},
	{"createkey_assumedrole.json", true},
	{"createkey_identitycenter.json", true},
	{"createkey_cloudformation.json", true},
	{"createkey_with_tags.json", true},
	{"createkey_external.json", true},
	{"createkey_pending_deletion.json", true},
	{"replicatekey.json", true},
	{"aws_managed_key.json", true},
	{"failed_call.json", false},
	{"unrelated_kms_event.json", false},
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

// rulePattern returns the evaluated event pattern of the stack's rule.
func rulePattern(t *testing.T, tpl *cfn.Template) map[string]any {
	t.Helper()
	rule := onlyResource(t, tpl, "AWS::Events::Rule", ruleID)
	v, _ := evaluate(t, tpl, property(t, rule, "EventPattern"), stackValues(nil))
	pattern, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("EventPattern = %#v, want an object", v)
	}
	return pattern
}

func TestRulePatternMatchesSamples(t *testing.T) {
	tpl := loadTemplate(t)
	pattern := rulePattern(t, tpl)

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
			t.Errorf("events/%s is not in eventSamples: add it with whether the rule must match it", name)
		}
	}
	for _, s := range eventSamples {
		t.Run(s.file, func(t *testing.T) {
			if !onDisk[s.file] {
				t.Fatalf("events/%s is listed but does not exist", s.file)
			}
			got, err := cfn.MatchPattern(pattern, readEvent(t, s.file))
			if err != nil {
				t.Fatalf("MatchPattern: %v", err)
			}
			if got != s.match {
				t.Errorf("rule matches %s = %v, want %v", s.file, got, s.match)
			}
		})
	}
}

func TestRulePatternRejectsOtherCalls(t *testing.T) {
	tpl := loadTemplate(t)
	pattern := rulePattern(t, tpl)
	detail := func(e map[string]any) map[string]any { return e["detail"].(map[string]any) }
	tests := []struct {
		name   string
		base   string
		mutate func(e map[string]any)
		want   bool
	}{
		{"CreateKey as recorded", "createkey_iamuser.json", func(map[string]any) {}, true},
		{"ReplicateKey as recorded", "replicatekey.json", func(map[string]any) {}, true},
		{"TagResource", "createkey_iamuser.json", func(e map[string]any) { detail(e)["eventName"] = "TagResource" }, false},
		{"UntagResource", "createkey_iamuser.json", func(e map[string]any) { detail(e)["eventName"] = "UntagResource" }, false},
		{"TagResource by the tagger", "unrelated_kms_event.json", func(map[string]any) {}, false},
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
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			event := readEvent(t, tt.base)
			tt.mutate(event)
			got, err := cfn.MatchPattern(pattern, event)
			if err != nil {
				t.Fatalf("MatchPattern: %v", err)
			}
			if got != tt.want {
				t.Errorf("rule matches %s = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

func TestRulePatternIsExactlyTheIntendedOne(t *testing.T) {
	tpl := loadTemplate(t)
	got := rulePattern(t, tpl)
	want := decodeObject(t, rulePatternJSON)
	// Normalise both through JSON so that numbers and lists compare alike.
	gotJSON, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("EventPattern = %s, want %s", gotJSON, wantJSON)
	}
}

func TestRuleTargetAndPermission(t *testing.T) {
	tpl := loadTemplate(t)
	rule := onlyResource(t, tpl, "AWS::Events::Rule", ruleID)
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

	perm := onlyResource(t, tpl, "AWS::Lambda::Permission", "KeyCreatedRulePermission")
	permTests := []struct {
		property string
		want     any
	}{
		{"Action", "lambda:InvokeFunction"},
		{"Principal", "events.amazonaws.com"},
		{"FunctionName", getAtt(functionID, "Arn")},
		{"SourceArn", getAtt(ruleID, "Arn")},
	}
	for _, tt := range permTests {
		if got := property(t, perm, tt.property); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("permission %s = %#v, want %#v", tt.property, got, tt.want)
		}
	}
}

// parameterEnv lists the environment variables fed from a parameter.
var parameterEnv = []struct {
	env, param, def string
}{
	{"TAG_KEY_PREFIX", "TagKeyPrefix", ""},
	{"TAG_NAME_CREATED_BY", "CreatedByTagName", "CreatedBy"},
	{"TAG_NAME_CREATED_BY_ROLE", "CreatedByRoleTagName", "CreatedByRole"},
	{"TAG_NAME_CREATED_AT", "CreatedAtTagName", "CreatedAt"},
	{"TAG_NAME_CREATED_VIA", "CreatedViaTagName", "CreatedVia"},
	{"TAG_NAME_CREATION_EVENT_ID", "CreationEventIdTagName", "CreationEventId"},
	{"TAG_NAME_REPLICA_OF", "ReplicaOfTagName", "ReplicaOf"},
	{"STATIC_TAGS", "StaticTags", ""},
	{"MAX_ATTEMPTS", "MaxAttempts", "5"},
	{"MAX_BACKOFF", "MaxBackoff", "2s"},
	{"NOT_FOUND_ATTEMPTS", "NotFoundAttempts", "3"},
	{"DEAD_LETTER_RESERVE", "DeadLetterReserve", "3s"},
	{"LOG_LEVEL", "LogLevel", "INFO"},
}

func environment(t *testing.T, tpl *cfn.Template) map[string]any {
	t.Helper()
	env, ok := property(t, tpl.Resources[functionID], "Environment", "Variables").(map[string]any)
	if !ok {
		t.Fatal("Environment.Variables is not a map")
	}
	return env
}

// fedFromParameters reports whether v is a Ref to a parameter or a Fn::Sub
// whose variables are all parameters.
func fedFromParameters(tpl *cfn.Template, v any) bool {
	fn, arg, ok := cfn.Intrinsic(v)
	if !ok {
		return false
	}
	switch fn {
	case "Ref":
		_, isParam := tpl.Parameters[arg.(string)]
		return isParam
	case "Fn::Sub":
		s, ok := arg.(string)
		if !ok {
			return false
		}
		names, err := cfn.SubVariables(s)
		if err != nil || len(names) == 0 {
			return false
		}
		for _, n := range names {
			if _, isParam := tpl.Parameters[n]; !isParam {
				return false
			}
		}
		return true
	}
	return false
}

func TestEnvironment(t *testing.T) {
	tpl := loadTemplate(t)
	env := environment(t, tpl)

	// Variables that are not the handler's configuration.
	special := map[string]any{
		"DEAD_LETTER_QUEUE_URL": ref(queueID),
		// Placeholders for sam local --env-vars; empty in AWS.
		"AWS_ENDPOINT_URL_KMS": "",
		"AWS_ENDPOINT_URL_SQS": "",
	}
	want := map[string]bool{}
	for name := range special {
		want[name] = true
	}
	for _, p := range parameterEnv {
		want[p.env] = true
	}
	for name, v := range env {
		switch {
		case !want[name]:
			t.Errorf("unexpected environment variable %s = %v", name, v)
		case special[name] != nil:
			if !reflect.DeepEqual(v, special[name]) {
				t.Errorf("%s = %#v, want %#v", name, v, special[name])
			}
		case !fedFromParameters(tpl, v):
			t.Errorf("%s = %#v, want a Ref or Fn::Sub of parameters", name, v)
		}
	}
	for _, p := range parameterEnv {
		t.Run(p.env, func(t *testing.T) {
			if got, want := env[p.env], ref(p.param); !reflect.DeepEqual(got, want) {
				t.Errorf("%s = %#v, want %#v", p.env, got, want)
			}
			param, ok := tpl.Parameters[p.param]
			if !ok {
				t.Fatalf("no parameter %s", p.param)
			}
			if !param.HasDefault || param.Default != p.def {
				t.Errorf("parameter %s Default = %q (present %v), want %q", p.param, param.Default, param.HasDefault, p.def)
			}
			got, _ := evaluate(t, tpl, env[p.env], stackValues(nil))
			if got != p.def {
				t.Errorf("%s in a stack with defaults = %#v, want %q", p.env, got, p.def)
			}
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
	for _, name := range []string{"LogRetentionInDays", "ReservedConcurrency", "AlarmEmail", "StaticTagKeys"} {
		if _, ok := tpl.Parameters[name]; !ok {
			t.Errorf("no parameter %s", name)
		}
	}
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

// statements returns the function's policy statements, failing on anything
// but inline policy documents.
func statements(t *testing.T, tpl *cfn.Template) []map[string]any {
	t.Helper()
	policies, ok := property(t, tpl.Resources[functionID], "Policies").([]any)
	if !ok {
		t.Fatal("Policies is not a list")
	}
	var out []map[string]any
	for i, p := range policies {
		doc, ok := p.(map[string]any)
		if !ok {
			t.Fatalf("Policies[%d] = %#v, want an inline policy document", i, p)
		}
		list, ok := doc["Statement"].([]any)
		if !ok {
			t.Fatalf("Policies[%d] = %#v, want an inline policy document with a Statement list (no SAM policy templates)", i, p)
		}
		for _, s := range list {
			stmt, ok := s.(map[string]any)
			if !ok {
				t.Fatalf("statement %#v is not a map", s)
			}
			out = append(out, stmt)
		}
	}
	return out
}

func asList(v any) []any {
	if list, ok := v.([]any); ok {
		return list
	}
	return []any{v}
}

func TestFunctionPolicyIsLeastPrivilege(t *testing.T) {
	tpl := loadTemplate(t)
	for _, typ := range []string{"AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"} {
		if ids := tpl.ResourcesOfType(typ); len(ids) != 0 {
			t.Errorf("%s resources = %v, want none: the function's policy is its Policies", typ, ids)
		}
	}
	allowed := map[string]any{
		"kms": map[string]any{"Fn::Sub": "arn:${AWS::Partition}:kms:*:${AWS::AccountId}:key/*"},
		"sqs": getAtt(queueID, "Arn"),
	}
	var actions []string
	for _, stmt := range statements(t, tpl) {
		for _, forbidden := range []string{"NotAction", "NotResource", "Principal"} {
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
		service := ""
		for _, a := range acts {
			actions = append(actions, a)
			if strings.Contains(a, "*") {
				t.Errorf("statement %v allows the wildcard action %q", stmt["Sid"], a)
			}
			prefix, _, _ := strings.Cut(a, ":")
			if service == "" {
				service = prefix
			} else if prefix != service {
				t.Errorf("statement %v mixes services %s and %s", stmt["Sid"], service, prefix)
			}
		}
		want, ok := allowed[service]
		if !ok {
			t.Errorf("statement %v allows %s actions; want only kms and sqs", stmt["Sid"], service)
			continue
		}
		resources, ok := stmt["Resource"]
		if !ok {
			t.Errorf("statement %v has no Resource", stmt["Sid"])
		}
		for _, r := range asList(resources) {
			if !reflect.DeepEqual(r, want) {
				t.Errorf("statement %v Resource %#v, want %#v", stmt["Sid"], r, want)
			}
		}
	}
	sort.Strings(actions)
	if want := []string{"kms:TagResource", "sqs:SendMessage"}; !slices.Equal(actions, want) {
		t.Errorf("actions = %q, want %q", actions, want)
	}
}

// tagKeysCondition returns the function policy's aws:TagKeys condition
// value, failing unless the kms statement has the expected condition shape.
func tagKeysCondition(t *testing.T, tpl *cfn.Template) any {
	t.Helper()
	for _, stmt := range statements(t, tpl) {
		if stmt["Action"] != "kms:TagResource" {
			continue
		}
		if got, ok := cfn.Lookup(stmt, "Condition", "Null", "aws:TagKeys"); !ok || got != "false" {
			t.Errorf(`Condition.Null["aws:TagKeys"] = %#v, want "false"`, got)
		}
		v, ok := cfn.Lookup(stmt, "Condition", "ForAllValues:StringEquals", "aws:TagKeys")
		if !ok {
			t.Fatal(`the kms:TagResource statement has no Condition."ForAllValues:StringEquals"."aws:TagKeys"`)
		}
		return v
	}
	t.Fatal("no kms:TagResource statement")
	return nil
}

func TestTagKeysCondition(t *testing.T) {
	tpl := loadTemplate(t)
	condition := tagKeysCondition(t, tpl)
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			values := stackValues(tt.params)
			v, _ := evaluate(t, tpl, condition, values)
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

			// The same keys as the handler derives from its environment.
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
		})
	}
}

func TestDeadLetterQueueIsWiredEverywhere(t *testing.T) {
	tpl := loadTemplate(t)
	queue := onlyResource(t, tpl, "AWS::SQS::Queue", queueID)
	rule := onlyResource(t, tpl, "AWS::Events::Rule", ruleID)
	invoke := onlyResource(t, tpl, "AWS::Lambda::EventInvokeConfig", "AutoTaggerEventInvokeConfig")
	fn := tpl.Resources[functionID]
	var sendResources []any
	for _, stmt := range statements(t, tpl) {
		if stmt["Action"] == "sqs:SendMessage" {
			sendResources = append(sendResources, asList(stmt["Resource"])...)
		}
	}
	tests := []struct {
		name string
		got  func() (any, bool)
		want any
	}{
		{"queue encrypted", func() (any, bool) { return queue.Property("SqsManagedSseEnabled") }, true},
		{"queue keeps messages 14 days", func() (any, bool) { return queue.Property("MessageRetentionPeriod") }, 1209600},
		{"rule target dead-letter config", func() (any, bool) { return rule.Property("Targets", "0", "DeadLetterConfig", "Arn") }, getAtt(queueID, "Arn")},
		{"on-failure destination", func() (any, bool) { return invoke.Property("DestinationConfig", "OnFailure", "Destination") }, getAtt(queueID, "Arn")},
		{"on-failure config of the function", func() (any, bool) { return invoke.Property("FunctionName") }, ref(functionID)},
		{"on-failure config of $LATEST", func() (any, bool) { return invoke.Property("Qualifier") }, "$LATEST"},
		{"Lambda retries twice", func() (any, bool) { return invoke.Property("MaximumRetryAttempts") }, 2},
		{"Lambda keeps an event an hour", func() (any, bool) { return invoke.Property("MaximumEventAgeInSeconds") }, 3600},
		{"handler's queue URL", func() (any, bool) { return fn.Property("Environment", "Variables", "DEAD_LETTER_QUEUE_URL") }, ref(queueID)},
		{"handler may send to the queue", func() (any, bool) { return sendResources, len(sendResources) > 0 }, []any{getAtt(queueID, "Arn")}},
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

func TestQueuePolicyAllowsOnlyTheRule(t *testing.T) {
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
			{[]string{"Condition"}, map[string]any{"ArnEquals": map[string]any{"aws:SourceArn": getAtt(ruleID, "Arn")}}},
		}
		for _, tt := range tests {
			got, ok := cfn.Lookup(stmt, tt.path...)
			if !ok || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("statement %d %s = %#v, want %#v", i, strings.Join(tt.path, "."), got, tt.want)
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
	if got := tpl.Resources[ruleID].DependsOn; !slices.Contains(got, "AutoTaggerLogGroup") {
		t.Errorf("rule DependsOn = %q, want it to include AutoTaggerLogGroup", got)
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

func TestOutputs(t *testing.T) {
	tpl := loadTemplate(t)
	tests := []struct {
		name string
		want any
	}{
		{"FunctionName", ref(functionID)},
		{"FunctionArn", getAtt(functionID, "Arn")},
		{"RuleArn", getAtt(ruleID, "Arn")},
		{"DeadLetterQueueUrl", ref(queueID)},
		{"DeadLetterQueueArn", getAtt(queueID, "Arn")},
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
		})
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
