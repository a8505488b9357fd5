package cfn_test

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/kms-autotagger/kms-autotagger/internal/events"
)

// TestMemberRoleOnlyInTheOrganization checks that the function may assume
// the member role only in the accounts of the organization: the template's
// Rules make OrganizationId required with MemberRoleName (CloudFormation
// refuses the stack; moto ignores Rules, so deploy reads them as moto
// evaluates the same functions, see moto_test.go), and the permission
// carries aws:ResourceOrgID always.
func TestMemberRoleOnlyInTheOrganization(t *testing.T) {
	rules, _ := translated(t, templatePath, nil).raw["Rules"].(map[string]any)
	if _, ok := rules["MemberRoleOnlyInTheOrganization"]; !ok || len(rules) != 1 {
		t.Fatalf("Rules: got %v, want MemberRoleOnlyInTheOrganization", rules)
	}
	for _, tt := range []struct {
		member, org string
		refused     bool
	}{
		{"", "", false},
		{"", orgID, false},
		{"kms-autotagger-member", "", true},
		{"kms-autotagger-member", orgID, false},
	} {
		t.Run(fmt.Sprintf("MemberRoleName %q OrganizationId %q", tt.member, tt.org), func(t *testing.T) {
			s := deploy(t, stackSpec{template: templatePath, params: map[string]string{"MemberRoleName": tt.member, "OrganizationId": tt.org}, refusable: true})
			if got := len(s.refusals) > 0; got != tt.refused {
				t.Errorf("refused: got %v (%q), want %v", got, s.refusals, tt.refused)
			}
		})
	}

	s := taggerStack(t, map[string]string{"MemberRoleName": "kms-autotagger-member", "OrganizationId": orgID})
	role := s.allInline(t, roleID)
	var assume []statement
	for _, st := range role {
		if acts, _ := stringList(st["Action"]); slices.Contains(acts, "sts:AssumeRole") {
			assume = append(assume, st)
		}
	}
	if len(assume) != 1 {
		t.Fatalf("sts:AssumeRole statements: got %d, want one", len(assume))
	}
	want := map[string]any{"StringEquals": map[string]any{"aws:ResourceOrgID": orgID}}
	if got := assume[0]["Condition"]; !reflect.DeepEqual(got, want) {
		t.Errorf("sts:AssumeRole Condition: got %v, want %v", got, want)
	}

	// The attacks: roles the function must not assume, evaluated against
	// its role's policy (evalPolicy; the stand-ins enforce no identity
	// policy of a role assuming another). aws:ResourceOrgID is the
	// organization of the account of the role assumed.
	self := s.roleARN(t, roleID)
	memberRole := "arn:aws:iam::" + memberAccount + ":role" + taggersPath + "kms-autotagger-member"
	assumeRole := func(target, org string) request {
		r := request{action: "sts:AssumeRole", resource: target, principalARN: self, keys: map[string][]string{}}
		if org != "" {
			r.keys["aws:ResourceOrgID"] = []string{org}
		}
		return r
	}
	for _, c := range []struct {
		name string
		req  request
		want decision
	}{
		{"the member role of an account of the organization", assumeRole(memberRole, orgID), allowed},
		{"a role of that name and path in an account of another organization", assumeRole("arn:aws:iam::"+thirdAccount+":role"+taggersPath+"kms-autotagger-member", "o-zzzzzzzzzz"), implicitDeny},
		{"a role of that name and path in an account of no organization", assumeRole("arn:aws:iam::"+thirdAccount+":role"+taggersPath+"kms-autotagger-member", ""), implicitDeny},
		{"a role of that name off the path", assumeRole("arn:aws:iam::"+memberAccount+":role/kms-autotagger-member", orgID), implicitDeny},
		{"another role on the path", assumeRole("arn:aws:iam::"+memberAccount+":role"+taggersPath+"admin", orgID), implicitDeny},
	} {
		if got := evalPolicy(t, role, c.req, false); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}

// TestTagChangeForwarding checks item 6 of the deployment: the tag changes
// of the tagger's own account in its other regions reach its tag-change
// rule (forwarded by region-forwarder.yaml, or member-role.yaml in the
// tagger's account), and are repaired like the home region's; those of
// member accounts are never forwarded (TestForwardTargets) and never taken
// (TestTagChangeRulePattern).
func TestTagChangeForwarding(t *testing.T) {
	detail := eventDetail
	byUser := func(e map[string]any) {
		detail(e)["userIdentity"] = iamUserIdentity()
		inRegion(e, "us-west-2")
	}
	for _, st := range []struct {
		path   string
		region string
		params map[string]string
	}{
		{forwarderPath, "us-west-2", forwarderParams},
		{memberPath, "eu-west-1", memberParams},
	} {
		t.Run(st.path, func(t *testing.T) {
			s := deploy(t, stackSpec{template: st.path, region: st.region, params: st.params})
			pattern := s.rule(t, tagForwardRuleID).pattern
			want := map[string]any{
				"source":      []any{events.SourceKMS},
				"detail-type": []any{events.DetailTypeAPICall},
				"detail": map[string]any{
					"eventSource": []any{events.EventSourceKMS},
					"eventName":   anys(tagChangeEventNames()),
					"errorCode":   []any{map[string]any{"exists": false}},
				},
			}
			if !jsonEqual(t, []byte(pattern), mustJSON(t, want)) {
				t.Errorf("EventPattern: got %s, want %s", pattern, mustJSON(t, want))
			}
			checkPatternCases(t, tagForwardRuleID, pattern, nil, []patternCase{
				{"TagResource by a user", ownTagEvent, byUser, true},
				{"UntagResource by a user", ownTagEvent, func(e map[string]any) { byUser(e); detail(e)["eventName"] = "UntagResource" }, true},
				// Its own: the tagger's rule drops them (TestTagChangeRulePattern).
				{"TagResource by the tagger", ownTagEvent, nil, true},
				{"TagResource that failed", ownTagEvent, func(e map[string]any) { byUser(e); detail(e)["errorCode"] = "AccessDeniedException" }, false},
				{"CreateKey", "createkey_iamuser.json", nil, false},
				{"another service's TagResource", ownTagEvent, func(e map[string]any) { byUser(e); e["source"] = "aws.secretsmanager" }, false},
			})
		})
	}
}

// tagChangeEventNames are the tag changes the handler repairs.
func tagChangeEventNames() []string { return events.TagChangeEventNames() }
