package cfn_test

import (
	"encoding/json"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/kms-autotagger/kms-autotagger/internal/cfn"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// The templates of deploy/, for multi-region and organization-wide
// deployment (docs/MULTIACCOUNT.md).
const (
	forwarderPath  = "../../deploy/region-forwarder.yaml"
	memberPath     = "../../deploy/member-role.yaml"
	busPolicyPath  = "../../deploy/central-bus-policy.yaml"
	forwardRuleID  = "KeyCreatedForwardRule"
	forwarderRole  = "ForwarderRole"
	forwarderQueue = "ForwarderDeadLetterQueue"
	memberRoleID   = "MemberTaggingRole"

	centralAccount  = "111122223333"
	memberAccountID = "444455556666"
	taggerRoleARN   = "arn:aws:iam::111122223333:role/kms-autotagger-AutoTaggerFunctionRole-1QW2E3R4T5Y6"
)

var deployPaths = []string{forwarderPath, memberPath, busPolicyPath}

func loadDeploy(t *testing.T, path string) *cfn.Template {
	t.Helper()
	tpl, err := cfn.Load(path)
	if err != nil {
		t.Fatalf("Load(%q): %v", path, err)
	}
	return tpl
}

// deployValues are what a stack of a deploy/ template would see: in account
// and region, with the resources' attributes and the parameters given.
func deployValues(account, region string, params map[string]any) map[string]any {
	v := map[string]any{
		"AWS::Partition":        "aws",
		"AWS::AccountId":        account,
		"AWS::Region":           region,
		"AWS::StackName":        "kms-autotagger-forwarder",
		forwardRuleID + ".Arn":  "arn:aws:events:" + region + ":" + account + ":rule/kms-autotagger-forwarder-KeyCreatedForwardRule-1AB2",
		forwarderRole + ".Arn":  "arn:aws:iam::" + account + ":role/kms-autotagger-forwarder-ForwarderRole-3CD4",
		forwarderQueue:          "https://sqs." + region + ".amazonaws.com/" + account + "/kms-autotagger-forwarder-ForwarderDeadLetterQueue-5EF6",
		forwarderQueue + ".Arn": "arn:aws:sqs:" + region + ":" + account + ":kms-autotagger-forwarder-ForwarderDeadLetterQueue-5EF6",
		memberRoleID + ".Arn":   "arn:aws:iam::" + account + ":role/kms-autotagger-member",
	}
	maps.Copy(v, params)
	return v
}

// forwarderParams and memberParams are the parameters a deployment gives
// (the others keep their defaults).
var (
	forwarderParams = map[string]any{"HomeRegion": "us-east-1"}
	memberParams    = map[string]any{"TaggerRoleArn": taggerRoleARN, "CentralAccountId": centralAccount, "HomeRegion": "us-east-1"}
)

func TestDeployTemplatesAreWellFormed(t *testing.T) {
	for _, path := range deployPaths {
		t.Run(path, func(t *testing.T) {
			tpl := loadDeploy(t, path)
			if tpl.FormatVersion != "2010-09-09" {
				t.Errorf("AWSTemplateFormatVersion = %q, want 2010-09-09", tpl.FormatVersion)
			}
			if len(tpl.Transform) != 0 {
				t.Errorf("Transform = %q, want none (StackSets deploy plain CloudFormation)", tpl.Transform)
			}
			undefined, err := tpl.Undefined()
			if err != nil {
				t.Fatalf("Undefined: %v", err)
			}
			for _, r := range undefined {
				t.Errorf("undefined: %s", r)
			}
			refs, err := tpl.References()
			if err != nil {
				t.Fatalf("References: %v", err)
			}
			used := map[string]bool{}
			for _, r := range refs {
				used[r.Name] = true
			}
			for _, name := range slices.Sorted(maps.Keys(tpl.Parameters)) {
				p := tpl.Parameters[name]
				if !used[name] {
					t.Errorf("parameter %s is never used", name)
				}
				if p.AllowedPattern == "" || !p.HasDefault {
					continue
				}
				re, err := regexp.Compile("^(?:" + p.AllowedPattern + ")$")
				if err != nil {
					t.Errorf("parameter %s AllowedPattern %q: %v", name, p.AllowedPattern, err)
				} else if !re.MatchString(p.Default) {
					t.Errorf("parameter %s Default %q does not match AllowedPattern %q", name, p.Default, p.AllowedPattern)
				}
			}
			for _, name := range slices.Sorted(maps.Keys(tpl.Conditions)) {
				if !used[name] {
					t.Errorf("condition %s is never used", name)
				}
			}
			walkStrings(tpl.Tree, "", func(path, s string) {
				if strings.Contains(s, "arn:aws:") || strings.Contains(s, "arn:aws-") {
					t.Errorf("%s = %q names a partition; use ${AWS::Partition}", path, s)
				}
			})
		})
	}
}

func walkStrings(v any, path string, f func(path, s string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, el := range x {
			walkStrings(el, path+"."+k, f)
		}
	case []any:
		for _, el := range x {
			walkStrings(el, path+"[]", f)
		}
	case string:
		f(path, x)
	}
}

func TestDeployParameterPatterns(t *testing.T) {
	tests := []struct {
		path, param string
		good, bad   []string
	}{
		{forwarderPath, "HomeRegion", []string{"us-east-1", "eu-central-2", "us-gov-west-1", "cn-north-1", "eusc-de-east-1"}, []string{"", "US-EAST-1", "us-east", "us-east-1a"}},
		{forwarderPath, "HomeAccountId", []string{"", "111122223333"}, []string{"11112222333", "x11122223333"}},
		{memberPath, "TaggerRoleArn", []string{taggerRoleARN, "arn:aws-us-gov:iam::111122223333:role/ops/tagger"}, []string{"", "arn:aws:iam::111122223333:user/alice", "arn:aws:iam::*:role/x"}},
		{memberPath, "RoleName", []string{"kms-autotagger-member", strings.Repeat("r", 64)}, []string{"", "a/b", strings.Repeat("r", 65)}},
		{memberPath, "RolePath", []string{"/", "/governance/", "/a/b/"}, []string{"", "governance", "/governance"}},
		{memberPath, "ExternalId", []string{"", "o-a1b2c3d4e5-kms", "ab"}, []string{"a", "has space"}},
		{busPolicyPath, "OrganizationId", []string{"o-a1b2c3d4e5", "o-abcdefghij0123456789"}, []string{"", "r-ab12", "o-short", "123456789012"}},
	}
	for _, tt := range tests {
		t.Run(tt.param, func(t *testing.T) {
			p, ok := loadDeploy(t, tt.path).Parameters[tt.param]
			if !ok {
				t.Fatalf("%s has no parameter %s", tt.path, tt.param)
			}
			re := regexp.MustCompile("^(?:" + p.AllowedPattern + ")$")
			for _, v := range tt.good {
				if !re.MatchString(v) {
					t.Errorf("%q is refused by %q, want accepted", v, p.AllowedPattern)
				}
			}
			for _, v := range tt.bad {
				if re.MatchString(v) {
					t.Errorf("%q is accepted by %q, want refused", v, p.AllowedPattern)
				}
			}
		})
	}
}

// forwardPattern returns the evaluated event pattern of a forwarding rule.
func forwardPattern(t *testing.T, tpl *cfn.Template, values map[string]any) map[string]any {
	t.Helper()
	rule := onlyResource(t, tpl, "AWS::Events::Rule", forwardRuleID)
	v, _ := evaluate(t, tpl, property(t, rule, "EventPattern"), values)
	pattern, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("EventPattern = %#v, want an object", v)
	}
	return pattern
}

func TestForwardRulesMatchTheTaggersEvents(t *testing.T) {
	templates := []struct {
		path   string
		params map[string]any
	}{
		{forwarderPath, forwarderParams},
		{memberPath, memberParams},
	}
	detail := eventDetail
	others := []struct {
		name   string
		base   string
		mutate func(map[string]any)
	}{
		{"TagResource", "createkey_iamuser.json", func(e map[string]any) { detail(e)["eventName"] = "TagResource" }},
		{"UntagResource", "createkey_iamuser.json", func(e map[string]any) { detail(e)["eventName"] = "UntagResource" }},
		{"TagResource of a replica", "replicatekey.json", func(e map[string]any) { detail(e)["eventName"] = "TagResource" }},
		{"ScheduleKeyDeletion", "createkey_iamuser.json", func(e map[string]any) { detail(e)["eventName"] = "ScheduleKeyDeletion" }},
		{"CreateKey that failed", "createkey_iamuser.json", func(e map[string]any) { detail(e)["errorCode"] = "AccessDeniedException" }},
		{"another source", "createkey_iamuser.json", func(e map[string]any) { e["source"] = "aws.cloudhsm" }},
	}
	for _, tpl := range templates {
		t.Run(tpl.path, func(t *testing.T) {
			template := loadDeploy(t, tpl.path)
			pattern := forwardPattern(t, template, deployValues(memberAccountID, "eu-west-1", tpl.params))

			got, err := json.Marshal(pattern)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(decodeObject(t, rulePatternJSON))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("EventPattern = %s, want the tagger rule's %s", got, want)
			}
			for _, s := range eventSamples {
				matched, err := cfn.MatchPattern(pattern, readEvent(t, s.file))
				if err != nil {
					t.Fatalf("MatchPattern: %v", err)
				}
				if matched != s.match {
					t.Errorf("forwards %s = %v, want %v", s.file, matched, s.match)
				}
			}
			for _, o := range others {
				event := readEvent(t, o.base)
				o.mutate(event)
				matched, err := cfn.MatchPattern(pattern, event)
				if err != nil {
					t.Fatalf("MatchPattern: %v", err)
				}
				if matched {
					t.Errorf("forwards %s, want not", o.name)
				}
			}
		})
	}
}

// target returns the forwarding rule's only target.
func target(t *testing.T, tpl *cfn.Template) map[string]any {
	t.Helper()
	targets, ok := property(t, onlyResource(t, tpl, "AWS::Events::Rule", forwardRuleID), "Targets").([]any)
	if !ok || len(targets) != 1 {
		t.Fatalf("Targets = %#v, want one target", targets)
	}
	m, ok := targets[0].(map[string]any)
	if !ok {
		t.Fatalf("target = %#v, want a map", targets[0])
	}
	return m
}

func TestForwardTargets(t *testing.T) {
	tests := []struct {
		name          string
		path          string
		account       string
		region        string
		params        map[string]any
		partition     string
		wantBus       string
		wantForwarded bool
	}{
		{"forwarder in another region", forwarderPath, centralAccount, "us-west-2", forwarderParams, "aws",
			"arn:aws:events:us-east-1:111122223333:event-bus/default", true},
		{"forwarder in the home region", forwarderPath, centralAccount, "us-east-1", forwarderParams, "aws", "", false},
		{"forwarder with the home account given", forwarderPath, memberAccountID, "us-east-1",
			map[string]any{"HomeRegion": "us-east-1", "HomeAccountId": centralAccount}, "aws",
			"arn:aws:events:us-east-1:111122223333:event-bus/default", true},
		{"forwarder given its own account, home region", forwarderPath, centralAccount, "us-east-1",
			map[string]any{"HomeRegion": "us-east-1", "HomeAccountId": centralAccount}, "aws", "", false},
		{"forwarder in China", forwarderPath, centralAccount, "cn-northwest-1", map[string]any{"HomeRegion": "cn-north-1"}, "aws-cn",
			"arn:aws-cn:events:cn-north-1:111122223333:event-bus/default", true},
		{"member in the home region", memberPath, memberAccountID, "us-east-1", memberParams, "aws",
			"arn:aws:events:us-east-1:111122223333:event-bus/default", true},
		{"member in another region", memberPath, memberAccountID, "ap-southeast-2", memberParams, "aws",
			"arn:aws:events:us-east-1:111122223333:event-bus/default", true},
		{"member stack in the central account's home region", memberPath, centralAccount, "us-east-1", memberParams, "aws", "", false},
		{"member stack in the central account's other region", memberPath, centralAccount, "eu-west-1", memberParams, "aws",
			"arn:aws:events:us-east-1:111122223333:event-bus/default", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl := loadDeploy(t, tt.path)
			values := deployValues(tt.account, tt.region, tt.params)
			values["AWS::Partition"] = tt.partition
			forwarded, err := tpl.Condition("Forward", values)
			if err != nil {
				t.Fatalf("Condition Forward: %v", err)
			}
			if forwarded != tt.wantForwarded {
				t.Fatalf("Forward = %v, want %v", forwarded, tt.wantForwarded)
			}
			// Every forwarding resource and output exists exactly when
			// events are forwarded; the placeholder exactly when not, so
			// that the stack always has a resource.
			created := 0
			for _, id := range slices.Sorted(maps.Keys(tpl.Resources)) {
				r := tpl.Resources[id]
				if r.Condition == "" {
					t.Errorf("resource %s has no Condition", id)
					continue
				}
				on, err := tpl.Condition(r.Condition, values)
				if err != nil {
					t.Fatalf("Condition %s: %v", r.Condition, err)
				}
				if on {
					created++
				}
				switch r.Type {
				case "AWS::Events::Rule", "AWS::SQS::Queue", "AWS::SQS::QueuePolicy":
					if r.Condition != "Forward" {
						t.Errorf("%s Condition = %s, want Forward", id, r.Condition)
					}
				case "AWS::CloudFormation::WaitConditionHandle":
					if on == forwarded {
						t.Errorf("placeholder %s created = %v, want %v", id, on, !forwarded)
					}
				}
			}
			if created == 0 {
				t.Errorf("no resource is created: CloudFormation refuses such a stack")
			}
			if !tt.wantForwarded {
				return
			}
			target := target(t, tpl)
			bus, _ := evaluate(t, tpl, target["Arn"], values)
			if bus != tt.wantBus {
				t.Errorf("target Arn = %v, want %s", bus, tt.wantBus)
			}
			if got, want := target["RoleArn"], getAtt(forwarderRole, "Arn"); !reflect.DeepEqual(got, want) {
				t.Errorf("target RoleArn = %#v, want %#v", got, want)
			}
			if got, want := target["DeadLetterConfig"], map[string]any{"Arn": getAtt(forwarderQueue, "Arn")}; !reflect.DeepEqual(got, want) {
				t.Errorf("target DeadLetterConfig = %#v, want %#v", got, want)
			}
			for _, l := range []struct {
				name     string
				min, max int64
			}{{"MaximumRetryAttempts", 0, 185}, {"MaximumEventAgeInSeconds", 60, 86400}} {
				v, ok := cfn.Lookup(target, "RetryPolicy", l.name)
				n, isInt := cfn.Int(v)
				if !ok || !isInt || n < l.min || n > l.max {
					t.Errorf("RetryPolicy.%s = %v, want an integer in [%d, %d]", l.name, v, l.min, l.max)
				}
			}

			// The role may put events on that bus and nothing else.
			role := onlyRole(t, tpl, forwarderRole)
			if v, named := role.Property("RoleName"); named {
				t.Errorf("forwarder role RoleName = %#v, want none: one stack per region would collide on it", v)
			}
			trust := trustStatements(t, tpl, role, values)
			if len(trust) != 1 || !reflect.DeepEqual(trust[0]["Principal"], map[string]any{"Service": "events.amazonaws.com"}) ||
				trust[0]["Action"] != "sts:AssumeRole" || trust[0]["Effect"] != "Allow" {
				t.Errorf("forwarder role trust = %#v, want only events.amazonaws.com with sts:AssumeRole", trust)
			}
			if got, _ := cfn.Lookup(trust[0], "Condition", "StringEquals", "aws:SourceAccount"); got != tt.account {
				t.Errorf("forwarder role trust aws:SourceAccount = %v, want %s", got, tt.account)
			}
			grants := roleStatements(t, tpl, role, values)
			if len(grants) != 1 || grants[0]["Action"] != "events:PutEvents" || grants[0]["Resource"] != tt.wantBus || grants[0]["Effect"] != "Allow" {
				t.Errorf("forwarder role policy = %#v, want only events:PutEvents on %s", grants, tt.wantBus)
			}

			// The queue takes only what this rule could not deliver.
			policy := onlyResource(t, tpl, "AWS::SQS::QueuePolicy", "ForwarderDeadLetterQueuePolicy")
			if got, want := property(t, policy, "Queues"), []any{ref(forwarderQueue)}; !reflect.DeepEqual(got, want) {
				t.Errorf("queue policy Queues = %#v, want %#v", got, want)
			}
			stmts, _ := property(t, policy, "PolicyDocument", "Statement").([]any)
			if len(stmts) != 1 {
				t.Fatalf("queue policy statements = %#v, want one", stmts)
			}
			wantStmt := map[string]any{
				"Sid": "EventBridgeUndeliverableEvents", "Effect": "Allow", "Principal": map[string]any{"Service": "events.amazonaws.com"},
				"Action": "sqs:SendMessage", "Resource": getAtt(forwarderQueue, "Arn"),
				"Condition": map[string]any{"ArnEquals": map[string]any{"aws:SourceArn": getAtt(forwardRuleID, "Arn")}},
			}
			if !reflect.DeepEqual(stmts[0], wantStmt) {
				t.Errorf("queue policy statement = %#v, want %#v", stmts[0], wantStmt)
			}
			queue := onlyResource(t, tpl, "AWS::SQS::Queue", forwarderQueue)
			if v, _ := queue.Property("SqsManagedSseEnabled"); v != true {
				t.Errorf("queue SqsManagedSseEnabled = %v, want true", v)
			}
			if v, _ := queue.Property("MessageRetentionPeriod"); v != 1209600 {
				t.Errorf("queue MessageRetentionPeriod = %v, want 1209600 (14 days)", v)
			}
		})
	}
}

// onlyRole returns the IAM role id, which must not be named: IAM is global,
// and a stack per region would collide on a fixed name.
func onlyRole(t *testing.T, tpl *cfn.Template, id string) cfn.Resource {
	t.Helper()
	r, ok := tpl.Resources[id]
	if !ok || r.Type != "AWS::IAM::Role" {
		t.Fatalf("no AWS::IAM::Role %s", id)
	}
	return r
}

// statementsOf evaluates a policy document and returns its statements.
func statementsOf(t *testing.T, tpl *cfn.Template, doc any, values map[string]any) []map[string]any {
	t.Helper()
	v, _ := evaluate(t, tpl, doc, values)
	list, ok := cfn.Lookup(v, "Statement")
	if !ok {
		t.Fatalf("policy document %#v has no Statement", v)
	}
	var out []map[string]any
	for _, s := range asList(list) {
		m, ok := s.(map[string]any)
		if !ok {
			t.Fatalf("statement %#v is not a map", s)
		}
		out = append(out, m)
	}
	return out
}

func trustStatements(t *testing.T, tpl *cfn.Template, role cfn.Resource, values map[string]any) []map[string]any {
	t.Helper()
	return statementsOf(t, tpl, property(t, role, "AssumeRolePolicyDocument"), values)
}

// roleStatements returns the statements of every inline policy of role;
// managed policies are refused.
func roleStatements(t *testing.T, tpl *cfn.Template, role cfn.Resource, values map[string]any) []map[string]any {
	t.Helper()
	if v, ok := role.Property("ManagedPolicyArns"); ok {
		t.Errorf("ManagedPolicyArns = %#v, want inline policies only", v)
	}
	return inlineStatements(t, tpl, role, values)
}

func TestNoWildcardActionsAnywhere(t *testing.T) {
	for _, path := range deployPaths {
		t.Run(path, func(t *testing.T) {
			tpl := loadDeploy(t, path)
			found := 0
			var walk func(v any, where string)
			walk = func(v any, where string) {
				switch x := v.(type) {
				case map[string]any:
					for k, el := range x {
						if k == "NotAction" || k == "NotPrincipal" || k == "NotResource" {
							t.Errorf("%s.%s: want no negated policy elements", where, k)
						}
						if k == "Action" {
							acts, ok := cfn.Strings(el)
							if !ok || len(acts) == 0 {
								t.Errorf("%s.Action = %#v, want action names", where, el)
							}
							for _, a := range acts {
								found++
								if strings.Contains(a, "*") || !strings.Contains(a, ":") {
									t.Errorf("%s.Action %q, want one named action", where, a)
								}
							}
						}
						walk(el, where+"."+k)
					}
				case []any:
					for _, el := range x {
						walk(el, where+"[]")
					}
				}
			}
			walk(tpl.Tree["Resources"], "Resources")
			if found == 0 {
				t.Error("found no Action at all")
			}
		})
	}
}

func TestMemberRole(t *testing.T) {
	tpl := loadDeploy(t, memberPath)
	role := onlyRole(t, tpl, memberRoleID)
	if got, want := role.Condition, "InHomeRegion"; got != want {
		t.Errorf("Condition = %q, want %q: IAM is global, one stack of the StackSet makes the role", got, want)
	}
	for _, tt := range []struct {
		region string
		want   bool
	}{{"us-east-1", true}, {"eu-west-1", false}} {
		got, err := tpl.Condition(role.Condition, deployValues(memberAccountID, tt.region, memberParams))
		if err != nil || got != tt.want {
			t.Errorf("role made in %s = %v (%v), want %v", tt.region, got, err, tt.want)
		}
	}
	if got, want := property(t, role, "RoleName"), ref("RoleName"); !reflect.DeepEqual(got, want) {
		t.Errorf("RoleName = %#v, want %#v", got, want)
	}
	if got, want := property(t, role, "Path"), ref("RolePath"); !reflect.DeepEqual(got, want) {
		t.Errorf("Path = %#v, want %#v", got, want)
	}
	if p := tpl.Parameters["RoleName"]; p.Default != "kms-autotagger-member" {
		t.Errorf("RoleName Default = %q, want kms-autotagger-member", p.Default)
	}
	if p := tpl.Parameters["RolePath"]; p.Default != "/" {
		t.Errorf("RolePath Default = %q, want /", p.Default)
	}

	t.Run("trust", func(t *testing.T) {
		tests := []struct {
			name       string
			externalID string
			wantCond   any
		}{
			{"without an external id", "", nil},
			{"with an external id", "o-a1b2c3d4e5-kms", map[string]any{"StringEquals": map[string]any{"sts:ExternalId": "o-a1b2c3d4e5-kms"}}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				params := maps.Clone(memberParams)
				params["ExternalId"] = tt.externalID
				trust := trustStatements(t, tpl, role, deployValues(memberAccountID, "us-east-1", params))
				if len(trust) != 1 {
					t.Fatalf("trust statements = %#v, want one", trust)
				}
				s := trust[0]
				if s["Effect"] != "Allow" || s["Action"] != "sts:AssumeRole" {
					t.Errorf("trust Effect, Action = %v, %v, want Allow, sts:AssumeRole", s["Effect"], s["Action"])
				}
				if got, want := s["Principal"], map[string]any{"AWS": taggerRoleARN}; !reflect.DeepEqual(got, want) {
					t.Errorf("trust Principal = %#v, want only the tagger's role %#v", got, want)
				}
				cond, present := s["Condition"]
				if tt.wantCond == nil && present {
					t.Errorf("trust Condition = %#v, want none", cond)
				}
				if tt.wantCond != nil && !reflect.DeepEqual(cond, tt.wantCond) {
					t.Errorf("trust Condition = %#v, want %#v", cond, tt.wantCond)
				}
			})
		}
	})

	t.Run("permissions", func(t *testing.T) {
		grants := roleStatements(t, tpl, role, deployValues(memberAccountID, "us-east-1", memberParams))
		if len(grants) != 1 {
			t.Fatalf("statements = %#v, want one", grants)
		}
		s := grants[0]
		if s["Effect"] != "Allow" || s["Action"] != "kms:TagResource" {
			t.Errorf("Effect, Action = %v, %#v, want Allow, kms:TagResource only", s["Effect"], s["Action"])
		}
		if got, want := s["Resource"], "arn:aws:kms:*:"+memberAccountID+":key/*"; got != want {
			t.Errorf("Resource = %#v, want only this account's keys %q", got, want)
		}
		if got, _ := cfn.Lookup(s, "Condition", "Null", "aws:TagKeys"); got != "false" {
			t.Errorf(`Condition.Null["aws:TagKeys"] = %#v, want "false"`, got)
		}
		keys, _ := cfn.Lookup(s, "Condition", "ForAllValues:StringEquals", "aws:TagKeys")
		got, ok := cfn.Strings(keys)
		if !ok {
			t.Fatalf("aws:TagKeys = %#v, want a list of keys", keys)
		}
		policy, err := tagger.NewPolicy(tagger.DefaultNames(), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		want := policy.Keys()
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("aws:TagKeys by default = %q, want the tagger's default tag keys %q", got, want)
		}
	})
}

func TestCentralBusPolicy(t *testing.T) {
	tpl := loadDeploy(t, busPolicyPath)
	policy := onlyResource(t, tpl, "AWS::Events::EventBusPolicy", "OrganizationPutEvents")
	if n := len(tpl.Resources); n != 1 {
		t.Errorf("resources = %d, want only the bus policy", n)
	}
	if got := property(t, policy, "EventBusName"); got != "default" {
		t.Errorf("EventBusName = %v, want default (the bus the tagger's rule is on)", got)
	}
	if p := tpl.Parameters["OrganizationId"]; p.HasDefault {
		t.Errorf("OrganizationId has Default %q, want none: it must be given", p.Default)
	}
	values := deployValues(centralAccount, "us-east-1", map[string]any{"OrganizationId": "o-a1b2c3d4e5"})
	v, _ := evaluate(t, tpl, property(t, policy, "Statement"), values)
	want := map[string]any{
		"Effect":    "Allow",
		"Principal": "*",
		"Action":    "events:PutEvents",
		"Resource":  "arn:aws:events:us-east-1:111122223333:event-bus/default",
		"Condition": map[string]any{"StringEquals": map[string]any{
			"aws:PrincipalOrgID": "o-a1b2c3d4e5",
			"events:source":      "aws.kms",
			"events:detail-type": "AWS API Call via CloudTrail",
		}},
	}
	if !reflect.DeepEqual(v, want) {
		t.Errorf("Statement = %#v, want %#v", v, want)
	}
	// The forwarders' events must pass the policy's conditions: the same
	// source and detail-type as the rule pattern.
	pattern := decodeObject(t, rulePatternJSON)
	if !reflect.DeepEqual(pattern["source"], []any{"aws.kms"}) || !reflect.DeepEqual(pattern["detail-type"], []any{"AWS API Call via CloudTrail"}) {
		t.Errorf("rule pattern source %v detail-type %v, want what the bus policy allows", pattern["source"], pattern["detail-type"])
	}
	if out, ok := tpl.Outputs["EventBusArn"]; !ok {
		t.Error("no output EventBusArn")
	} else if got, _ := evaluate(t, tpl, out.Value, values); got != want["Resource"] {
		t.Errorf("output EventBusArn = %v, want %v", got, want["Resource"])
	}
}
