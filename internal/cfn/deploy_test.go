package cfn_test

import (
	"context"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// Logical ids of the templates of deploy/, for multi-region and
// organization-wide deployment (docs/MULTIACCOUNT.md).
const (
	forwardRuleID    = "KeyCreatedForwardRule"
	forwarderRole    = "ForwarderRole"
	forwarderQueue   = "ForwarderDeadLetterQueue"
	forwarderPolicy  = "ForwarderDeadLetterQueuePolicy"
	tagForwardRuleID = "TagChangeForwardRule"
	placeholderID    = "NothingToForward"
	memberRoleID     = "MemberTaggingRole"
	centralPolicyID  = "OrganizationPutEvents"
	scpID            = "GovernanceTagsPolicy"
	governedKeyID    = "GovernedKey"
	taggerRoleARN    = "arn:aws:iam::111122223333:role/kms-autotagger/kms-autotagger-AutoTaggerFunctionRole-1QW2E3R4T5Y6"
	thirdAccount     = "777788889999"
	defaultMemberTag = "kms-autotagger-member"
	// taggersPath is the default TaggerRolePath, MemberRolePath and
	// RolePath of every template.
	taggersPath = "/kms-autotagger/"
)

var deployPaths = []string{forwarderPath, memberPath, busPolicyPath, scpPath, keyPolicyPath}

// forwarderParams, memberParams, scpParams and keyPolicyParams are the
// parameters a deployment gives (the others keep their defaults).
var (
	forwarderParams = map[string]string{"HomeRegion": homeRegion}
	memberParams    = map[string]string{"TaggerRoleArn": taggerRoleARN, "CentralAccountId": centralAccount, "HomeRegion": homeRegion}
	scpParams       = map[string]string{"TaggerAccountId": centralAccount}
	keyPolicyParams = map[string]string{"TaggerAccountId": centralAccount}
)

// TestDeployTemplatesArePlainCloudFormation checks what StackSets need.
// References, unused parameters and conditions, and Defaults outside their
// constraints are cfn-lint's (E1012, W2001, W8001, E2015) in make lint.
func TestDeployTemplatesArePlainCloudFormation(t *testing.T) {
	for _, path := range deployPaths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			if v, ok := sourceScalar(t, path, "Transform"); ok {
				t.Errorf("Transform = %q, want none (StackSets deploy plain CloudFormation)", v)
			}
			if got := translated(t, path, nil).FormatVersion; got != "2010-09-09" {
				t.Errorf("AWSTemplateFormatVersion = %q, want 2010-09-09", got)
			}
		})
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
		{memberPath, "RolePath", []string{"/", "/governance/", "/a/b/", taggersPath}, []string{"", "governance", "/governance", "/a*/", "/a?/", "/a//b/", "/a b/"}},
		{scpPath, "TaggerAccountId", []string{centralAccount}, []string{"", "*", "11112222333", "x11122223333"}},
		{scpPath, "TaggerRolePath", []string{taggersPath, "/governance/kms-autotagger/"}, []string{"", "/", "/kms-autotagger/*", "/k?/", "/a//b/"}},
		{scpPath, "MemberRoleName", []string{defaultMemberTag}, []string{"", "*", "kms-autotagger-*", "a/b"}},
		{scpPath, "TaggerDeployerRole", []string{"", "deployer", "admin/deployer"}, []string{"*", "deploy*", "/deployer", "admin/", "a//b", "admin/*"}},
		{keyPolicyPath, "TaggerAccountId", []string{centralAccount}, []string{"", "*", "11112222333"}},
		{keyPolicyPath, "TaggerRolePath", []string{taggersPath}, []string{"", "/", "/kms-autotagger/*"}},
		{keyPolicyPath, "MemberRoleName", []string{defaultMemberTag}, []string{"", "*", "kms-autotagger-*"}},
		{memberPath, "ExternalId", []string{"", "o-a1b2c3d4e5-kms", "ab"}, []string{"a", "has space"}},
		{busPolicyPath, "OrganizationId", []string{"o-a1b2c3d4e5", "o-abcdefghij0123456789"}, []string{"", "r-ab12", "o-short", "123456789012"}},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path)+" "+tt.param, func(t *testing.T) {
			p, ok := translated(t, tt.path, nil).Parameters[tt.param]
			if !ok {
				t.Fatalf("%s has no parameter %s", tt.path, tt.param)
			}
			accepts := parameterAccepts(t, p)
			for _, v := range tt.good {
				if !accepts(v) {
					t.Errorf("%q is refused, want accepted", v)
				}
			}
			for _, v := range tt.bad {
				if accepts(v) {
					t.Errorf("%q is accepted, want refused", v)
				}
			}
		})
	}
}

func TestForwardRulesMatchTheTaggersEvents(t *testing.T) {
	stacks := []struct {
		path   string
		params map[string]string
	}{
		{forwarderPath, forwarderParams},
		{memberPath, memberParams},
	}
	detail := eventDetail
	others := []patternCase{
		{"TagResource", "createkey_iamuser.json", func(e map[string]any) { detail(e)["eventName"] = "TagResource" }, false},
		{"UntagResource", "createkey_iamuser.json", func(e map[string]any) { detail(e)["eventName"] = "UntagResource" }, false},
		{"TagResource of a replica", "replicatekey.json", func(e map[string]any) { detail(e)["eventName"] = "TagResource" }, false},
		{"ScheduleKeyDeletion", "createkey_iamuser.json", func(e map[string]any) { detail(e)["eventName"] = "ScheduleKeyDeletion" }, false},
		{"CreateKey that failed", "createkey_iamuser.json", func(e map[string]any) { detail(e)["errorCode"] = "AccessDeniedException" }, false},
		{"another source", "createkey_iamuser.json", func(e map[string]any) { e["source"] = "aws.cloudhsm" }, false},
	}
	for _, st := range stacks {
		t.Run(filepath.Base(st.path), func(t *testing.T) {
			s := deploy(t, stackSpec{template: st.path, account: memberAccount, region: "eu-west-1", params: st.params})
			pattern := s.rule(t, forwardRuleID).pattern
			if want := mustJSON(t, creationPattern()); !jsonEqual(t, []byte(pattern), want) {
				t.Errorf("EventPattern: got %s, want the tagger rule's %s", pattern, want)
			}
			cases := slices.Clone(others)
			for _, sample := range eventSamples {
				cases = append(cases, patternCase{sample.file, sample.file, nil, sample.creation})
			}
			checkPatternCases(t, forwardRuleID, pattern, nil, cases)
		})
	}
}

func TestForwardTargets(t *testing.T) {
	// A forwarder in China, forwarding to cn-north-1, is left out: moto's
	// AWS::Partition is always aws (see moto_test.go).
	// The tag changes are forwarded only to a tagger of the stack's own
	// account: it repairs the keys of its own account only (their creation
	// events are in its CloudTrail history), and the member accounts' tag
	// changes are denied by deploy/governance-scp.yaml instead.
	withoutTags := func(m map[string]string) map[string]string {
		m = maps.Clone(m)
		m["ForwardTagChanges"] = "false"
		return m
	}
	tests := []struct {
		name          string
		path          string
		account       string
		region        string
		params        map[string]string
		wantBus       string
		wantForwarded bool
		wantTags      bool
	}{
		{"forwarder in another region", forwarderPath, centralAccount, "us-west-2", forwarderParams,
			"arn:aws:events:us-east-1:111122223333:event-bus/default", true, true},
		{"forwarder in another region, no tag changes", forwarderPath, centralAccount, "us-west-2", withoutTags(forwarderParams),
			"arn:aws:events:us-east-1:111122223333:event-bus/default", true, false},
		{"forwarder in the home region", forwarderPath, centralAccount, homeRegion, forwarderParams, "", false, false},
		{"forwarder with the home account given", forwarderPath, memberAccount, homeRegion,
			map[string]string{"HomeRegion": homeRegion, "HomeAccountId": centralAccount},
			"arn:aws:events:us-east-1:111122223333:event-bus/default", true, false},
		{"forwarder given its own account, home region", forwarderPath, centralAccount, homeRegion,
			map[string]string{"HomeRegion": homeRegion, "HomeAccountId": centralAccount}, "", false, false},
		{"forwarder given its own account, another region", forwarderPath, centralAccount, "eu-west-1",
			map[string]string{"HomeRegion": homeRegion, "HomeAccountId": centralAccount},
			"arn:aws:events:us-east-1:111122223333:event-bus/default", true, true},
		{"member in the home region", memberPath, memberAccount, homeRegion, memberParams,
			"arn:aws:events:us-east-1:111122223333:event-bus/default", true, false},
		{"member in another region", memberPath, memberAccount, "ap-southeast-2", memberParams,
			"arn:aws:events:us-east-1:111122223333:event-bus/default", true, false},
		{"member stack in the central account's home region", memberPath, centralAccount, homeRegion, memberParams, "", false, false},
		{"member stack in the central account's other region", memberPath, centralAccount, "eu-west-1", memberParams,
			"arn:aws:events:us-east-1:111122223333:event-bus/default", true, true},
		{"member stack in the central account's other region, no tag changes", memberPath, centralAccount, "eu-west-1", withoutTags(memberParams),
			"arn:aws:events:us-east-1:111122223333:event-bus/default", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := deploy(t, stackSpec{template: tt.path, account: tt.account, region: tt.region, params: tt.params})
			// Every forwarding resource and output exists exactly when
			// events are forwarded; the placeholder exactly when not, so
			// that the stack always has a resource.
			forwarded := s.created(forwardRuleID)
			if forwarded != tt.wantForwarded {
				t.Fatalf("%s created: got %v, want %v", forwardRuleID, forwarded, tt.wantForwarded)
			}
			for _, id := range []string{forwarderRole, forwarderQueue, forwarderPolicy} {
				if got := s.created(id); got != forwarded {
					t.Errorf("%s created: got %v, want %v", id, got, forwarded)
				}
			}
			for _, name := range []string{"ForwardRuleArn", "DeadLetterQueueUrl"} {
				if _, got := s.outputs[name]; got != forwarded {
					t.Errorf("output %s: got %v, want %v", name, got, forwarded)
				}
			}
			if got := s.created(tagForwardRuleID); got != tt.wantTags {
				t.Errorf("%s created: got %v, want %v", tagForwardRuleID, got, tt.wantTags)
			}
			if _, got := s.outputs["TagChangeForwardRuleArn"]; got != tt.wantTags {
				t.Errorf("output TagChangeForwardRuleArn: got %v, want %v", got, tt.wantTags)
			}
			if got := s.created(placeholderID); got == forwarded {
				t.Errorf("placeholder %s created: got %v, want %v", placeholderID, got, !forwarded)
			}
			if len(s.probes) == 0 {
				t.Errorf("no resource is created: CloudFormation refuses such a stack")
			}
			if !tt.wantForwarded {
				return
			}
			queueARN := s.queue(t, forwarderQueue)["QueueArn"]
			var ruleARNs []string
			for id, output := range map[string]string{forwardRuleID: "ForwardRuleArn", tagForwardRuleID: "TagChangeForwardRuleArn"} {
				if !s.created(id) {
					continue
				}
				r := s.rule(t, id)
				ruleARNs = append(ruleARNs, r.arn)
				if got := s.output(t, output); got != r.arn {
					t.Errorf("output %s: got %s, want the rule's %s", output, got, r.arn)
				}
				if len(r.targets) != 1 {
					t.Fatalf("%s targets: got %d, want one", id, len(r.targets))
				}
				target := r.targets[0]
				if got := aws.ToString(target.Arn); got != tt.wantBus {
					t.Errorf("%s target Arn: got %s, want %s", id, got, tt.wantBus)
				}
				if got, want := aws.ToString(target.RoleArn), s.roleARN(t, forwarderRole); got != want {
					t.Errorf("%s target RoleArn: got %s, want the forwarder role %s", id, got, want)
				}
				if target.DeadLetterConfig == nil || aws.ToString(target.DeadLetterConfig.Arn) != queueARN {
					t.Errorf("%s target DeadLetterConfig: got %+v, want the queue %s", id, target.DeadLetterConfig, queueARN)
				}
				if target.RetryPolicy == nil {
					t.Errorf("%s target has no RetryPolicy", id)
				} else {
					checkRetryPolicy(t, target.RetryPolicy.MaximumRetryAttempts, target.RetryPolicy.MaximumEventAgeInSeconds)
				}
			}
			ruleARNs = sortStrings(ruleARNs)

			// The role may put events on that bus and nothing else. It has
			// no RoleName: one stack per region would collide on it.
			if v, named := s.template.Resources[forwarderRole].Properties["RoleName"]; named {
				t.Errorf("forwarder role RoleName = %v, want none", v)
			}
			// EventBridge may assume it for this stack's rules only
			// (aws:SourceArn: the rules' ARNs, as EventBridge has them).
			trust := s.trust(t, forwarderRole)
			want := []statement{{
				"Effect": "Allow", "Principal": map[string]any{"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole",
				"Condition": map[string]any{
					"StringEquals": map[string]any{"aws:SourceAccount": tt.account},
					"ArnEquals":    map[string]any{"aws:SourceArn": anys(ruleARNs)},
				},
			}}
			if !reflect.DeepEqual(trust, want) {
				t.Errorf("forwarder role trust: got %v, want %v", trust, want)
			}
			assume := func(rule string) request {
				return request{action: "sts:AssumeRole", resource: s.roleARN(t, forwarderRole), service: "events.amazonaws.com",
					keys: map[string][]string{"aws:SourceArn": {rule}, "aws:SourceAccount": {tt.account}}}
			}
			for _, r := range ruleARNs {
				if got := evalPolicy(t, trust, assume(r), true); got != allowed {
					t.Errorf("EventBridge for %s assuming the role: got %s, want allowed", r, got)
				}
			}
			other := "arn:aws:events:" + tt.region + ":" + tt.account + ":rule/another-rule"
			if got := evalPolicy(t, trust, assume(other), true); got == allowed {
				t.Errorf("EventBridge for another rule of the account assuming the role: allowed, want not (confused deputy)")
			}
			checkNoManagedPolicies(t, s, forwarderRole)
			grants := s.allInline(t, forwarderRole)
			if len(grants) != 1 || grants[0]["Action"] != "events:PutEvents" || grants[0]["Resource"] != tt.wantBus || grants[0]["Effect"] != "Allow" {
				t.Errorf("forwarder role policy: got %v, want only events:PutEvents on %s", grants, tt.wantBus)
			}

			// The queue takes only what this rule could not deliver. moto
			// creates no AWS::SQS::QueuePolicy: from the probe.
			if got, want := s.probe(t, forwarderPolicy)["Queues"], []any{s.physicalID(t, forwarderQueue)}; !reflect.DeepEqual(got, want) {
				t.Errorf("queue policy Queues: got %v, want %v", got, want)
			}
			wantStmt := []statement{
				{
					"Sid": "EventBridgeUndeliverableEvents", "Effect": "Allow", "Principal": map[string]any{"Service": "events.amazonaws.com"},
					"Action": "sqs:SendMessage", "Resource": queueARN,
					"Condition": map[string]any{"ArnEquals": map[string]any{"aws:SourceArn": anys(ruleARNs)}},
				},
				{
					"Sid": "OnlyTheRulesSend", "Effect": "Deny", "Principal": "*", "Action": "sqs:SendMessage", "Resource": queueARN,
					"Condition": map[string]any{"ArnNotEquals": map[string]any{"aws:SourceArn": anys(ruleARNs)}},
				},
				tlsOnly(queueARN),
			}
			stmts := probeStatements(t, s, forwarderPolicy, "PolicyDocument")
			for _, st := range stmts {
				// One rule: moto keeps the one-element list as it is.
				if arns, ok := conditionValue(st, "ArnEquals", "aws:SourceArn"); ok {
					if l, _ := stringList(arns); len(l) > 0 {
						st["Condition"].(map[string]any)["ArnEquals"].(map[string]any)["aws:SourceArn"] = anys(sortStrings(l))
					}
				}
				if arns, ok := conditionValue(st, "ArnNotEquals", "aws:SourceArn"); ok {
					if l, _ := stringList(arns); len(l) > 0 {
						st["Condition"].(map[string]any)["ArnNotEquals"].(map[string]any)["aws:SourceArn"] = anys(sortStrings(l))
					}
				}
			}
			if !reflect.DeepEqual(stmts, wantStmt) {
				t.Errorf("queue policy statements:\n got %v\nwant %v", stmts, wantStmt)
			}
			cases := []sendCase{
				{"an administrator of the account", request{action: "sqs:SendMessage", resource: queueARN, principalARN: "arn:aws:iam::" + tt.account + ":role/Admin", keys: tls()}, true},
				{"EventBridge for another rule", request{action: "sqs:SendMessage", resource: queueARN, service: "events.amazonaws.com", keys: tls("aws:SourceArn", other)}, true},
				{"without TLS", request{action: "sqs:SendMessage", resource: queueARN, service: "events.amazonaws.com", keys: map[string][]string{"aws:SecureTransport": {"false"}, "aws:SourceArn": {ruleARNs[0]}}}, true},
			}
			for _, r := range ruleARNs {
				cases = append(cases, sendCase{"EventBridge for " + r, request{action: "sqs:SendMessage", resource: queueARN, service: "events.amazonaws.com", keys: tls("aws:SourceArn", r)}, false})
			}
			checkQueueAttacks(t, stmts, cases)
			attrs := s.queue(t, forwarderQueue)
			if got := attrs["SqsManagedSseEnabled"]; got != "true" {
				t.Errorf("queue SqsManagedSseEnabled: got %q, want true", got)
			}
			if got := attrs["MessageRetentionPeriod"]; got != "1209600" {
				t.Errorf("queue MessageRetentionPeriod: got %q, want 1209600 (14 days)", got)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// checkNoManagedPolicies checks that role id has inline policies only. moto
// attaches no ManagedPolicyArns, so they are read from the probe too.
func checkNoManagedPolicies(t testing.TB, s *stack, id string) {
	t.Helper()
	if v, ok := s.probe(t, id)["ManagedPolicyArns"]; ok {
		t.Errorf("%s ManagedPolicyArns = %v, want inline policies only", id, v)
	}
	out, err := iam.NewFromConfig(s.cfg).ListAttachedRolePolicies(context.Background(), &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(s.physicalID(t, id))})
	if err != nil {
		t.Fatalf("ListAttachedRolePolicies %s: %v", id, err)
	}
	if len(out.AttachedPolicies) != 0 {
		t.Errorf("%s attached policies = %v, want none", id, out.AttachedPolicies)
	}
}

// TestNoWildcardActionsAnywhere walks every policy of stacks that together
// create every resource of template.yaml and of the deploy/ templates: the
// roles' as IAM has them, the others' (queue, bus, key and service control
// policies, an AWS::IAM::Policy) from the probes. A wildcard is refused in
// Deny statements too: every action a statement names is one action.
func TestNoWildcardActionsAnywhere(t *testing.T) {
	stacks := map[string][]*stack{
		filepath.Base(templatePath):  {taggerStack(t, everythingOn)},
		filepath.Base(forwarderPath): {deploy(t, stackSpec{template: forwarderPath, region: "us-west-2", params: forwarderParams})},
		// The role is made in the home region only, the tag changes are
		// forwarded from the tagger's own account only.
		filepath.Base(memberPath): {
			deploy(t, stackSpec{template: memberPath, account: memberAccount, params: memberParams}),
			deploy(t, stackSpec{template: memberPath, region: "eu-west-1", params: memberParams}),
		},
		filepath.Base(busPolicyPath): {deploy(t, stackSpec{template: busPolicyPath, params: map[string]string{"OrganizationId": orgID}})},
		filepath.Base(scpPath):       {deploy(t, stackSpec{template: scpPath, params: scpParams})},
		filepath.Base(keyPolicyPath): {deploy(t, stackSpec{template: keyPolicyPath, params: keyPolicyParams})},
	}
	for _, path := range deployPaths {
		if _, ok := stacks[filepath.Base(path)]; !ok {
			t.Errorf("%s has no stack here", path)
		}
	}
	for name, list := range stacks {
		t.Run(name, func(t *testing.T) {
			made := map[string]bool{}
			for _, s := range list {
				for id := range s.probes {
					made[id] = true
				}
			}
			tpl := list[0].template
			if _, placeholder := tpl.Resources[placeholderID]; len(made) != len(tpl.Resources)-btoi(placeholder) {
				t.Fatalf("resources created: got %q, want all %d but the placeholder", slices.Sorted(maps.Keys(made)), len(tpl.Resources))
			}
			found := 0
			check := func(where string, v any) {
				var walk func(v any, where string)
				walk = func(v any, where string) {
					switch x := v.(type) {
					case map[string]any:
						for k, el := range x {
							if k == "NotAction" || k == "NotPrincipal" || k == "NotResource" {
								t.Errorf("%s.%s: want no negated policy elements", where, k)
							}
							if k == "Action" {
								acts, ok := stringList(el)
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
					case []statement:
						for _, el := range x {
							walk(map[string]any(el), where+"[]")
						}
					}
				}
				walk(v, where)
			}
			for _, s := range list {
				for _, id := range slices.Sorted(maps.Keys(s.probes)) {
					if s.template.Resources[id].Type == "AWS::IAM::Role" {
						check(id+".trust", s.trust(t, id))
						for policy, stmts := range s.inlinePolicies(t, id) {
							check(id+"."+policy, stmts)
						}
						continue
					}
					check(id, s.probes[id])
				}
			}
			if found == 0 {
				t.Error("found no Action at all")
			}
		})
	}
}

func TestMemberRole(t *testing.T) {
	tpl := translated(t, memberPath, nil)
	for _, c := range []struct{ param, want string }{{"RoleName", defaultMemberTag}, {"RolePath", taggersPath}} {
		if got := tpl.Parameters[c.param].DefaultString(); got != c.want {
			t.Errorf("%s Default: got %q, want %q", c.param, got, c.want)
		}
	}
	// IAM is global: one stack of the StackSet makes the role.
	for _, tt := range []struct {
		region string
		want   bool
	}{{homeRegion, true}, {"eu-west-1", false}} {
		s := deploy(t, stackSpec{template: memberPath, account: memberAccount, region: tt.region, params: memberParams})
		if got := s.created(memberRoleID); got != tt.want {
			t.Errorf("role made in %s: got %v, want %v", tt.region, got, tt.want)
		}
		if _, got := s.outputs["MemberRoleArn"]; got != tt.want {
			t.Errorf("output MemberRoleArn in %s: got %v, want %v", tt.region, got, tt.want)
		}
	}

	t.Run("name and path", func(t *testing.T) {
		tests := []struct {
			name          string
			account       string
			params        map[string]string
			wantName      string
			wantPath      string
			wantTrustCond any
		}{
			{"defaults", memberAccount, nil, defaultMemberTag, taggersPath, nil},
			{"named, with an external id", thirdAccount,
				map[string]string{"RoleName": "tagger", "RolePath": "/governance/", "ExternalId": "o-a1b2c3d4e5-kms"},
				"tagger", "/governance/", map[string]any{"StringEquals": map[string]any{"sts:ExternalId": "o-a1b2c3d4e5-kms"}}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				params := maps.Clone(memberParams)
				maps.Copy(params, tt.params)
				s := deploy(t, stackSpec{template: memberPath, account: tt.account, params: params})
				out, err := iam.NewFromConfig(s.cfg).GetRole(context.Background(), &iam.GetRoleInput{RoleName: aws.String(tt.wantName)})
				if err != nil {
					t.Fatalf("GetRole %s: %v", tt.wantName, err)
				}
				if got := aws.ToString(out.Role.Path); got != tt.wantPath {
					t.Errorf("Path: got %q, want %q", got, tt.wantPath)
				}
				wantARN := "arn:aws:iam::" + tt.account + ":role" + tt.wantPath + tt.wantName
				if got := s.output(t, "MemberRoleArn"); got != wantARN || aws.ToString(out.Role.Arn) != wantARN {
					t.Errorf("role ARN: got %s (output %s), want %s", aws.ToString(out.Role.Arn), got, wantARN)
				}
				want := statement{"Sid": "CentralTagger", "Effect": "Allow", "Action": "sts:AssumeRole", "Principal": map[string]any{"AWS": taggerRoleARN}}
				if tt.wantTrustCond != nil {
					want["Condition"] = tt.wantTrustCond
				}
				if got := s.trust(t, memberRoleID); !reflect.DeepEqual(got, []statement{want}) {
					t.Errorf("trust: got %v, want only the tagger's role: %v", got, want)
				}
			})
		}
	})

	t.Run("permissions", func(t *testing.T) {
		s := deploy(t, stackSpec{template: memberPath, account: memberAccount, params: memberParams})
		checkNoManagedPolicies(t, s, memberRoleID)
		grants := s.allInline(t, memberRoleID)
		// What the handler does with a key through the role: describe it,
		// read its tags, write the governance tags and remove owned keys
		// and their case variants, on this account's keys only; and find
		// the stack that made a key and who ran it (CreatedByStack,
		// CreatedByUser), whose APIs support no resource-level permission.
		keys := "arn:aws:kms:*:" + memberAccount + ":key/*"
		anyResource := map[string]bool{"cloudformation:DescribeStackResources": true, "cloudtrail:LookupEvents": true, "kms:ListKeys": true, "account:ListRegions": true}
		var actions []string
		for _, g := range grants {
			acts, _ := stringList(g["Action"])
			actions = append(actions, acts...)
			want := keys
			if len(acts) == 1 && anyResource[acts[0]] {
				want = "*"
			}
			if g["Effect"] != "Allow" || g["Resource"] != want {
				t.Errorf("statement %v: Effect %v Resource %#v, want Allow on %q", g["Sid"], g["Effect"], g["Resource"], want)
			}
		}
		if want := []string{"account:ListRegions", "cloudformation:DescribeStackResources", "cloudtrail:LookupEvents", "kms:DescribeKey", "kms:ListKeys", "kms:ListResourceTags", "kms:TagResource", "kms:UntagResource"}; !slices.Equal(sortStrings(actions), want) {
			t.Errorf("actions: got %q, want %q", actions, want)
		}
		policy, err := tagger.NewPolicy(tagger.DefaultNames(), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		want := sortStrings(policy.Keys())
		if got := tagKeys(t, grants, "kms:TagResource", "ForAllValues:StringEquals"); !slices.Equal(got, want) {
			t.Errorf("kms:TagResource aws:TagKeys by default: got %q, want the tagger's default tag keys %q", got, want)
		}
		if got := tagKeys(t, grants, "kms:UntagResource", "ForAllValues:StringEqualsIgnoreCase"); !slices.Equal(got, want) {
			t.Errorf("kms:UntagResource aws:TagKeys (ignoring case) by default: got %q, want the tagger's default tag keys %q", got, want)
		}
		// The attack: a case variant of a governance key. The role may
		// remove it (the handler does) but never write it.
		role := s.roleARN(t, memberRoleID)
		key := "arn:aws:kms:eu-west-1:" + memberAccount + ":key/k"
		for _, c := range []struct {
			action string
			tags   []string
			want   decision
		}{
			{"kms:TagResource", []string{"CreatedBy"}, allowed},
			{"kms:TagResource", []string{"createdby"}, implicitDeny},
			{"kms:TagResource", []string{"Owner"}, implicitDeny},
			{"kms:UntagResource", []string{"createdby", "CREATEDAT"}, allowed},
			{"kms:UntagResource", []string{"Owner"}, implicitDeny},
			{"kms:TagResource", nil, implicitDeny},
		} {
			req := request{action: c.action, resource: key, principalARN: role, keys: map[string][]string{}}
			if c.tags != nil {
				req.keys["aws:TagKeys"] = c.tags
			}
			if got := evalPolicy(t, grants, req, false); got != c.want {
				t.Errorf("%s of %q: got %s, want %s", c.action, c.tags, got, c.want)
			}
		}
		if got := evalPolicy(t, grants, request{action: "kms:TagResource", resource: "arn:aws:kms:eu-west-1:" + thirdAccount + ":key/k", principalARN: role,
			keys: map[string][]string{"aws:TagKeys": {"CreatedBy"}}}, false); got == allowed {
			t.Error("TagResource of another account's key: allowed, want not")
		}
	})
}

func TestCentralBusPolicy(t *testing.T) {
	tpl := translated(t, busPolicyPath, nil)
	if got, want := tpl.resourcesOfType("AWS::Events::EventBusPolicy"), []string{centralPolicyID}; !slices.Equal(got, want) || len(tpl.Resources) != 1 {
		t.Errorf("resources: got %d, bus policies %q, want only the bus policy %q", len(tpl.Resources), got, want)
	}
	if p := tpl.Parameters["OrganizationId"]; p.HasDefault() {
		t.Errorf("OrganizationId has Default %q, want none: it must be given", p.DefaultString())
	}
	s := deploy(t, stackSpec{template: busPolicyPath, params: map[string]string{"OrganizationId": orgID}})
	// moto creates no AWS::Events::EventBusPolicy: from the probe.
	if got := s.probe(t, centralPolicyID)["EventBusName"]; got != "default" {
		t.Errorf("EventBusName: got %v, want default (the bus the tagger's rule is on)", got)
	}
	want := wantBusStatement(centralAccount, homeRegion, orgID)
	if got := busStatement(t, s, centralPolicyID); !reflect.DeepEqual(got, want) {
		t.Errorf("Statement: got %v, want %v", got, want)
	}
	// The forwarders' events must pass the policy's conditions: the source
	// and detail-type of the tagger's rule.
	var pattern map[string]any
	if err := decodeJSON([]byte(taggerStack(t, nil).rule(t, ruleID).pattern), &pattern); err != nil {
		t.Fatal(err)
	}
	cond, _ := lookup(want, "Condition", "StringEquals")
	allowed, _ := cond.(map[string]any)
	if !reflect.DeepEqual(pattern["source"], []any{allowed["events:source"]}) || !reflect.DeepEqual(pattern["detail-type"], []any{allowed["events:detail-type"]}) {
		t.Errorf("rule pattern source %v detail-type %v, want what the bus policy allows", pattern["source"], pattern["detail-type"])
	}
	if got := s.output(t, "EventBusArn"); got != want["Resource"] {
		t.Errorf("output EventBusArn: got %v, want %v", got, want["Resource"])
	}
}
