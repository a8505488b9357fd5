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
	placeholderID    = "NothingToForward"
	memberRoleID     = "MemberTaggingRole"
	centralPolicyID  = "OrganizationPutEvents"
	taggerRoleARN    = "arn:aws:iam::111122223333:role/kms-autotagger-AutoTaggerFunctionRole-1QW2E3R4T5Y6"
	thirdAccount     = "777788889999"
	defaultMemberTag = "kms-autotagger-member"
)

var deployPaths = []string{forwarderPath, memberPath, busPolicyPath}

// forwarderParams and memberParams are the parameters a deployment gives
// (the others keep their defaults).
var (
	forwarderParams = map[string]string{"HomeRegion": homeRegion}
	memberParams    = map[string]string{"TaggerRoleArn": taggerRoleARN, "CentralAccountId": centralAccount, "HomeRegion": homeRegion}
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
		{memberPath, "RolePath", []string{"/", "/governance/", "/a/b/"}, []string{"", "governance", "/governance"}},
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
	tests := []struct {
		name          string
		path          string
		account       string
		region        string
		params        map[string]string
		wantBus       string
		wantForwarded bool
	}{
		{"forwarder in another region", forwarderPath, centralAccount, "us-west-2", forwarderParams,
			"arn:aws:events:us-east-1:111122223333:event-bus/default", true},
		{"forwarder in the home region", forwarderPath, centralAccount, homeRegion, forwarderParams, "", false},
		{"forwarder with the home account given", forwarderPath, memberAccount, homeRegion,
			map[string]string{"HomeRegion": homeRegion, "HomeAccountId": centralAccount},
			"arn:aws:events:us-east-1:111122223333:event-bus/default", true},
		{"forwarder given its own account, home region", forwarderPath, centralAccount, homeRegion,
			map[string]string{"HomeRegion": homeRegion, "HomeAccountId": centralAccount}, "", false},
		{"member in the home region", memberPath, memberAccount, homeRegion, memberParams,
			"arn:aws:events:us-east-1:111122223333:event-bus/default", true},
		{"member in another region", memberPath, memberAccount, "ap-southeast-2", memberParams,
			"arn:aws:events:us-east-1:111122223333:event-bus/default", true},
		{"member stack in the central account's home region", memberPath, centralAccount, homeRegion, memberParams, "", false},
		{"member stack in the central account's other region", memberPath, centralAccount, "eu-west-1", memberParams,
			"arn:aws:events:us-east-1:111122223333:event-bus/default", true},
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
			if got := s.created(placeholderID); got == forwarded {
				t.Errorf("placeholder %s created: got %v, want %v", placeholderID, got, !forwarded)
			}
			if len(s.probes) == 0 {
				t.Errorf("no resource is created: CloudFormation refuses such a stack")
			}
			if !tt.wantForwarded {
				return
			}
			r := s.rule(t, forwardRuleID)
			if got := s.output(t, "ForwardRuleArn"); got != r.arn {
				t.Errorf("output ForwardRuleArn: got %s, want the rule's %s", got, r.arn)
			}
			if len(r.targets) != 1 {
				t.Fatalf("targets: got %d, want one", len(r.targets))
			}
			target := r.targets[0]
			queueARN := s.queue(t, forwarderQueue)["QueueArn"]
			if got := aws.ToString(target.Arn); got != tt.wantBus {
				t.Errorf("target Arn: got %s, want %s", got, tt.wantBus)
			}
			if got, want := aws.ToString(target.RoleArn), s.roleARN(t, forwarderRole); got != want {
				t.Errorf("target RoleArn: got %s, want the forwarder role %s", got, want)
			}
			if target.DeadLetterConfig == nil || aws.ToString(target.DeadLetterConfig.Arn) != queueARN {
				t.Errorf("target DeadLetterConfig: got %+v, want the queue %s", target.DeadLetterConfig, queueARN)
			}
			if target.RetryPolicy == nil {
				t.Error("target has no RetryPolicy")
			} else {
				checkRetryPolicy(t, target.RetryPolicy.MaximumRetryAttempts, target.RetryPolicy.MaximumEventAgeInSeconds)
			}

			// The role may put events on that bus and nothing else. It has
			// no RoleName: one stack per region would collide on it.
			if v, named := s.template.Resources[forwarderRole].Properties["RoleName"]; named {
				t.Errorf("forwarder role RoleName = %v, want none", v)
			}
			trust := s.trust(t, forwarderRole)
			want := []statement{{
				"Effect": "Allow", "Principal": map[string]any{"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole",
				"Condition": map[string]any{"StringEquals": map[string]any{"aws:SourceAccount": tt.account}},
			}}
			if !reflect.DeepEqual(trust, want) {
				t.Errorf("forwarder role trust: got %v, want %v", trust, want)
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
			wantStmt := []statement{{
				"Sid": "EventBridgeUndeliverableEvents", "Effect": "Allow", "Principal": map[string]any{"Service": "events.amazonaws.com"},
				"Action": "sqs:SendMessage", "Resource": queueARN,
				"Condition": map[string]any{"ArnEquals": map[string]any{"aws:SourceArn": r.arn}},
			}}
			if got := probeStatements(t, s, forwarderPolicy, "PolicyDocument"); !reflect.DeepEqual(got, wantStmt) {
				t.Errorf("queue policy statements: got %v, want %v", got, wantStmt)
			}
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

// TestNoWildcardActionsAnywhere walks every policy of stacks that create
// every resource of the deploy/ templates: the roles' as IAM has them, the
// others' (queue and bus policies, which moto does not create) from the
// probes.
func TestNoWildcardActionsAnywhere(t *testing.T) {
	stacks := map[string]*stack{
		filepath.Base(forwarderPath): deploy(t, stackSpec{template: forwarderPath, region: "us-west-2", params: forwarderParams}),
		filepath.Base(memberPath):    deploy(t, stackSpec{template: memberPath, account: memberAccount, params: memberParams}),
		filepath.Base(busPolicyPath): deploy(t, stackSpec{template: busPolicyPath, params: map[string]string{"OrganizationId": orgID}}),
	}
	for name, s := range stacks {
		t.Run(name, func(t *testing.T) {
			if _, placeholder := s.template.Resources[placeholderID]; len(s.probes) != len(s.template.Resources)-btoi(placeholder) {
				t.Fatalf("resources created: got %d, want all %d but the placeholder", len(s.probes), len(s.template.Resources))
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
			if found == 0 {
				t.Error("found no Action at all")
			}
		})
	}
}

func TestMemberRole(t *testing.T) {
	tpl := translated(t, memberPath, nil)
	for _, c := range []struct{ param, want string }{{"RoleName", defaultMemberTag}, {"RolePath", "/"}} {
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
			{"defaults", memberAccount, nil, defaultMemberTag, "/", nil},
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
		if len(grants) != 1 {
			t.Fatalf("statements: got %v, want one", grants)
		}
		g := grants[0]
		if g["Effect"] != "Allow" || g["Action"] != "kms:TagResource" {
			t.Errorf("Effect, Action: got %v, %#v, want Allow, kms:TagResource only", g["Effect"], g["Action"])
		}
		if got, want := g["Resource"], "arn:aws:kms:*:"+memberAccount+":key/*"; got != want {
			t.Errorf("Resource: got %#v, want only this account's keys %q", got, want)
		}
		policy, err := tagger.NewPolicy(tagger.DefaultNames(), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := tagKeys(t, grants), sortStrings(policy.Keys()); !slices.Equal(got, want) {
			t.Errorf("aws:TagKeys by default: got %q, want the tagger's default tag keys %q", got, want)
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
