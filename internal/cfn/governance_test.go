package cfn_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
)

// The governance policies of deploy/ (docs/GOVERNANCE.md): the service
// control policy of governance-scp.yaml and the key-policy statement of
// key-policy-statement.yaml. The stand-ins enforce neither (moto makes no
// AWS::Organizations::Policy, and its KMS keeps a key policy without
// evaluating it), so the attack tests evaluate the deployed statements with
// evalPolicy, the test's reading of IAM's documented evaluation
// (iameval_test.go).

// tagParams are tag settings other than the defaults, given alike to the
// tagger's stack and to the governance templates.
var tagParams = map[string]string{
	"TagKeyPrefix":      "Gov:",
	"CreatedViaTagName": "-",
	"CreatedByTagName":  "Owner",
	"StaticTags":        "Team=core",
	"StaticTagKeys":     "Team",
}

// governanceParams returns the parameters of a governance template for
// the tag settings tags (nil: the defaults): the template.yaml parameters
// the governance templates share.
func governanceParams(base map[string]string, tags map[string]string) map[string]string {
	out := maps.Clone(base)
	for k, v := range tags {
		if k != "StaticTags" {
			out[k] = v
		}
	}
	return out
}

// taggerTagKeys returns the tag keys the function role of a tagger stack
// with the tag settings tags may write, sorted.
func taggerTagKeys(t testing.TB, tags map[string]string) []string {
	t.Helper()
	return tagKeys(t, taggerStack(t, tags).allInline(t, roleID), "kms:TagResource", "ForAllValues:StringEquals")
}

// scpStatements returns the statements of the service control policy of
// stack s, as moto evaluated them (from the probe: moto makes no
// AWS::Organizations::Policy).
func scpStatements(t testing.TB, s *stack) []statement {
	t.Helper()
	content := s.probe(t, scpID)["Content"]
	if str, ok := content.(string); ok {
		return statements(t, str)
	}
	return statements(t, string(mustJSON(t, content)))
}

// statementBySid returns the statement Sid of stmts.
func statementBySid(t testing.TB, stmts []statement, sid string) statement {
	t.Helper()
	for _, st := range stmts {
		if st["Sid"] == sid {
			return st
		}
	}
	t.Fatalf("no statement %s among %v", sid, stmts)
	return nil
}

// sortedTagKeys returns the aws:TagKeys of stmt under op, without empty
// entries (tags switched off), sorted.
func sortedTagKeys(t testing.TB, stmt statement, op string) []string {
	t.Helper()
	v, ok := conditionValue(stmt, op, "aws:TagKeys")
	list, isList := stringList(v)
	if !ok || !isList {
		t.Fatalf("statement %v: Condition %q aws:TagKeys = %#v, want a list (Condition %v)", stmt["Sid"], op, v, stmt["Condition"])
	}
	var out []string
	for _, k := range list {
		if k != "" {
			out = append(out, k)
		}
	}
	return sortStrings(out)
}

// exemptions returns the principal ARNs a statement's ArnNotLike
// aws:PrincipalArn exempts.
func exemptions(t testing.TB, stmt statement) []string {
	t.Helper()
	v, ok := conditionValue(stmt, "ArnNotLike", "aws:PrincipalArn")
	list, isList := stringList(v)
	if !ok || !isList || len(list) == 0 {
		t.Fatalf("statement %v: ArnNotLike aws:PrincipalArn = %#v, want the exempt principals", stmt["Sid"], v)
	}
	return list
}

// checkExemptions checks that every exempt principal names its account
// exactly (no "*" or "?" in the account position: a 12-digit account or
// the principal's own, ${aws:PrincipalAccount}) and is a role, on path or
// in allowedOffPath.
func checkExemptions(t *testing.T, where string, exempt []string, path string, allowedOffPath ...string) {
	t.Helper()
	for _, arn := range exempt {
		parts := strings.SplitN(strings.ReplaceAll(arn, "${aws:PrincipalAccount}", "${PrincipalAccount}"), ":", 6)
		if len(parts) != 6 || parts[2] != "iam" {
			t.Errorf("%s exempts %q, want an IAM ARN", where, arn)
			continue
		}
		if account := parts[4]; account != "${PrincipalAccount}" && (len(account) != 12 || strings.ContainsAny(account, "*?")) {
			t.Errorf("%s exempts %q: account %q, want an account ID or ${aws:PrincipalAccount}, never a wildcard", where, arn, account)
		}
		resource := parts[5]
		if !strings.HasPrefix(resource, "role"+path) && !slices.Contains(allowedOffPath, resource) {
			t.Errorf("%s exempts %q, want a role on the taggers' path %s", where, arn, path)
		}
	}
}

func TestGovernanceSCP(t *testing.T) {
	tpl := translated(t, scpPath, scpParams)
	if got := tpl.resourcesOfType("AWS::Organizations::Policy"); !slices.Equal(got, []string{scpID}) || len(tpl.Resources) != 1 {
		t.Errorf("resources: got %d, policies %q, want only %s", len(tpl.Resources), got, scpID)
	}
	if p := tpl.Parameters["TaggerAccountId"]; p.HasDefault() {
		t.Errorf("TaggerAccountId has Default %q, want none: it must be given", p.DefaultString())
	}
	for _, name := range []string{"TaggerRolePath", "MemberRoleName", "TagKeyPrefix", "CreatedByTagName", "StaticTagKeys"} {
		if got, want := tpl.Parameters[name].DefaultString(), translated(t, templatePath, nil).Parameters[name].DefaultString(); name != "MemberRoleName" && got != want {
			t.Errorf("%s Default: got %q, want template.yaml's %q", name, got, want)
		}
	}
	if got := tpl.Parameters["MemberRoleName"].DefaultString(); got != defaultMemberTag {
		t.Errorf("MemberRoleName Default: got %q, want deploy/member-role.yaml's %q", got, defaultMemberTag)
	}

	for _, tt := range []struct {
		name string
		tags map[string]string
	}{{"default tags", nil}, {"tags renamed, prefixed, static", tagParams}} {
		t.Run(tt.name, func(t *testing.T) {
			s := deploy(t, stackSpec{template: scpPath, params: governanceParams(scpParams, tt.tags)})
			probe := s.probe(t, scpID)
			if probe["Type"] != "SERVICE_CONTROL_POLICY" {
				t.Errorf("Type: got %v, want SERVICE_CONTROL_POLICY", probe["Type"])
			}
			stmts := scpStatements(t, s)
			var sids []string
			for _, st := range stmts {
				sids = append(sids, st["Sid"].(string))
				// An SCP's conditions and resources work in Deny statements
				// only, and an SCP takes no Principal.
				if st["Effect"] != "Deny" {
					t.Errorf("statement %v: Effect %v, want Deny", st["Sid"], st["Effect"])
				}
				for _, k := range []string{"Principal", "NotPrincipal", "NotAction", "NotResource"} {
					if _, ok := st[k]; ok {
						t.Errorf("statement %v has %s", st["Sid"], k)
					}
				}
			}
			if want := []string{"OnlyTaggersChangeGovernanceTags", "NoGovernanceTagsAtCreation", "OnlyStackSetsManageTaggerRoles", "NobodyMakesStackSetsExecutionRoles"}; !slices.Equal(sids, want) {
				t.Fatalf("statements: got %q, want %q", sids, want)
			}
			// Its size within the 5,120 characters of an SCP.
			if n := len(mustJSON(t, map[string]any{"Version": "2012-10-17", "Statement": stmts})); n > 5120 {
				t.Errorf("policy of %d characters, more than the 5120 an SCP may have", n)
			}

			// The keys are the tagger's own for the same settings (those
			// its function role may write; TestTagKeysCondition checks
			// them against the handler's), compared ignoring case.
			want := taggerTagKeys(t, tt.tags)
			for _, sid := range []string{"OnlyTaggersChangeGovernanceTags", "NoGovernanceTagsAtCreation"} {
				st := statementBySid(t, stmts, sid)
				if got := sortedTagKeys(t, st, "ForAnyValue:StringEqualsIgnoreCase"); !slices.Equal(got, want) {
					t.Errorf("%s aws:TagKeys: got %q, want the tagger's keys %q", sid, got, want)
				}
				// The exempt principals: the function roles of the tagger's
				// account and the member role of the principal's own account,
				// on the path.
				exempt := exemptions(t, st)
				wantExempt := []string{
					"arn:aws:iam::" + centralAccount + ":role" + taggersPath + "*",
					"arn:aws:iam::${aws:PrincipalAccount}:role" + taggersPath + defaultMemberTag,
				}
				if !slices.Equal(exempt, wantExempt) {
					t.Errorf("%s exempts %q, want %q", sid, exempt, wantExempt)
				}
				checkExemptions(t, sid, exempt, taggersPath)
			}
			manage := statementBySid(t, stmts, "OnlyStackSetsManageTaggerRoles")
			if got, want := manage["Resource"], "arn:aws:iam::*:role"+taggersPath+"*"; got != want {
				t.Errorf("OnlyStackSetsManageTaggerRoles Resource: got %v, want %v", got, want)
			}
			checkExemptions(t, "OnlyStackSetsManageTaggerRoles", exemptions(t, manage), taggersPath, "role/stacksets-exec-*")
			if got := statementBySid(t, stmts, "NobodyMakesStackSetsExecutionRoles")["Condition"]; got != nil {
				t.Errorf("NobodyMakesStackSetsExecutionRoles Condition: got %v, want none: nobody it restricts may", got)
			}
		})
	}

	t.Run("targets", func(t *testing.T) {
		if _, ok := deploy(t, stackSpec{template: scpPath, params: scpParams}).probe(t, scpID)["TargetIds"]; ok {
			t.Error("TargetIds given without TargetIds, want none")
		}
		params := maps.Clone(scpParams)
		params["TargetIds"] = "r-ab12,ou-ab12-cdef3456"
		if got := deploy(t, stackSpec{template: scpPath, params: params}).probe(t, scpID)["TargetIds"]; !reflect.DeepEqual(got, []any{"r-ab12", "ou-ab12-cdef3456"}) {
			t.Errorf("TargetIds: got %v, want the root and the OU", got)
		}
	})
}

// An attacker is an administrator of a member account, whose identity
// policies allow everything: the service control policy is what stands
// between it and the governance tags. Each request is evaluated against the
// SCP's statements (an SCP only denies; FullAWSAccess is attached next to
// it): denied means the attack fails.
func TestGovernanceSCPAttacks(t *testing.T) {
	params := maps.Clone(scpParams)
	params["TaggerDeployerRole"] = "admin/deployer"
	withPrefix := governanceParams(params, map[string]string{"TagKeyPrefix": "Gov:"})
	stmts := scpStatements(t, deploy(t, stackSpec{template: scpPath, params: params}))
	prefixed := scpStatements(t, deploy(t, stackSpec{template: scpPath, params: withPrefix}))

	m := memberAccount
	admin := "arn:aws:iam::" + m + ":role/Admin"
	memberRole := "arn:aws:iam::" + m + ":role" + taggersPath + defaultMemberTag
	taggerRole := "arn:aws:iam::" + centralAccount + ":role" + taggersPath + "kms-autotagger-AutoTaggerFunctionRole-1QW2E3R4T5Y6"
	execRole := "arn:aws:iam::" + m + ":role/stacksets-exec-0123456789abcdef0123456789abcdef"
	key := "arn:aws:kms:eu-west-1:" + m + ":key/1234abcd-12ab-34cd-56ef-1234567890ab"
	tag := func(who string, keys ...string) request {
		return request{action: "kms:TagResource", resource: key, principalARN: who, keys: map[string][]string{"aws:TagKeys": keys}}
	}
	untag := func(who string, keys ...string) request {
		r := tag(who, keys...)
		r.action = "kms:UntagResource"
		return r
	}
	create := func(action, who string, keys ...string) request {
		r := request{action: action, resource: "*", principalARN: who, keys: map[string][]string{}}
		if keys != nil {
			r.keys["aws:TagKeys"] = keys
		}
		return r
	}
	iamCall := func(action, who, role string) request {
		return request{action: action, resource: role, principalARN: who}
	}
	tests := []struct {
		name   string
		policy []statement
		req    request
		denied bool
	}{
		// The taggers.
		{"the member role writes CreatedBy", stmts, tag(memberRole, "CreatedBy", "CreatedAt"), false},
		{"the member role removes a case variant", stmts, untag(memberRole, "createdby"), false},
		{"the tagger's role writes CreatedBy in its account", stmts, tag(taggerRole, "CreatedBy"), false},
		// Writing or removing the governance tags, any case.
		{"an administrator writes CreatedBy", stmts, tag(admin, "CreatedBy"), true},
		{"an administrator writes CreatedBy among other tags", stmts, tag(admin, "Team", "CreatedBy"), true},
		{"an administrator writes createdby", stmts, tag(admin, "createdby"), true},
		{"an administrator writes CREATEDBYROLE", stmts, tag(admin, "CREATEDBYROLE"), true},
		{"an administrator removes CreatedAt", stmts, untag(admin, "CreatedAt"), true},
		{"an administrator removes creationeventid", stmts, untag(admin, "creationeventid"), true},
		{"an administrator writes a prefixed key in another case", prefixed, tag(admin, "GOV:createdby"), true},
		{"an administrator writes the key without the prefix", prefixed, tag(admin, "CreatedBy"), false},
		{"an administrator writes other tags", stmts, tag(admin, "Team", "CostCenter"), false},
		{"the account's root user writes CreatedBy", stmts, tag("arn:aws:iam::"+m+":root", "CreatedBy"), true},
		// Roles that look like the taggers'.
		{"a role of the member role's name off the path", stmts, tag("arn:aws:iam::"+m+":role/"+defaultMemberTag, "CreatedBy"), true},
		{"a role of the member role's name on another path", stmts, tag("arn:aws:iam::"+m+":role/other"+taggersPath+defaultMemberTag, "CreatedBy"), true},
		{"another role on the path", stmts, tag("arn:aws:iam::"+m+":role"+taggersPath+"admin", "CreatedBy"), true},
		{"a role of the tagger role's name and path in a member account", stmts, tag(strings.Replace(taggerRole, centralAccount, m, 1), "CreatedBy"), true},
		{"a user of the member role's name on the path", stmts, tag("arn:aws:iam::"+m+":user"+taggersPath+defaultMemberTag, "CreatedBy"), true},
		// Governance tags passed at creation: the standard deployment.
		{"an administrator creates a key with CreatedBy", stmts, create("kms:CreateKey", admin, "CreatedBy"), true},
		{"an administrator creates a key with createdby", stmts, create("kms:CreateKey", admin, "createdby"), true},
		{"an administrator replicates a key with CreatedAt", stmts, create("kms:ReplicateKey", admin, "Team", "CreatedAt"), true},
		{"an administrator creates a key with other tags", stmts, create("kms:CreateKey", admin, "Team"), false},
		{"an administrator creates a key without tags", stmts, create("kms:CreateKey", admin), false},
		// Making a role the first statement exempts, or changing the member role.
		{"an administrator creates the member role", stmts, iamCall("iam:CreateRole", admin, memberRole), true},
		{"an administrator widens the member role's trust", stmts, iamCall("iam:UpdateAssumeRolePolicy", admin, memberRole), true},
		{"an administrator adds an inline policy", stmts, iamCall("iam:PutRolePolicy", admin, memberRole), true},
		{"an administrator attaches a managed policy", stmts, iamCall("iam:AttachRolePolicy", admin, memberRole), true},
		{"an administrator deletes the member role", stmts, iamCall("iam:DeleteRole", admin, memberRole), true},
		{"an administrator creates another role on the path", stmts, iamCall("iam:CreateRole", admin, "arn:aws:iam::"+m+":role"+taggersPath+"x"), true},
		{"an administrator creates a role on a sub-path", stmts, iamCall("iam:CreateRole", admin, "arn:aws:iam::"+m+":role"+taggersPath+"sub/x"), true},
		{"StackSets create the member role", stmts, iamCall("iam:CreateRole", execRole, memberRole), false},
		{"StackSets update the member role's trust", stmts, iamCall("iam:UpdateAssumeRolePolicy", execRole, memberRole), false},
		{"an administrator creates a role elsewhere", stmts, iamCall("iam:CreateRole", admin, "arn:aws:iam::"+m+":role/app"), false},
		// Making a role of the StackSets execution role's name.
		{"an administrator creates a stacksets-exec role", stmts, iamCall("iam:CreateRole", admin, "arn:aws:iam::"+m+":role/stacksets-exec-evil"), true},
		{"an administrator changes the execution role's trust", stmts, iamCall("iam:UpdateAssumeRolePolicy", admin, execRole), true},
		{"a StackSets execution role makes another", stmts, iamCall("iam:CreateRole", execRole, "arn:aws:iam::"+m+":role/stacksets-exec-evil"), true},
		// The tagger's deployer, in the tagger's account only.
		{"the deployer creates the function role", stmts, iamCall("iam:CreateRole", "arn:aws:iam::"+centralAccount+":role/admin/deployer", taggerRole), false},
		{"a role of the deployer's name in a member account", stmts, iamCall("iam:CreateRole", "arn:aws:iam::"+m+":role/admin/deployer", memberRole), true},
	}
	for _, tt := range tests {
		if got := evalPolicy(t, tt.policy, tt.req, false) == explicitDeny; got != tt.denied {
			t.Errorf("%s: denied %v, want %v", tt.name, got, tt.denied)
		}
	}
}

// TestGovernanceSCPPassesCfnLint runs the pinned cfn-lint on the SCP's
// statements as an IAM policy (cfn-lint checks an AWS::Organizations::Policy's
// structure but not its Content): condition operators, action names,
// statement shape. A broken copy must fail, so the check is known to look.
func TestGovernanceSCPPassesCfnLint(t *testing.T) {
	python, err := localaws.VenvPython()
	if err != nil {
		t.Fatal(err)
	}
	content := translated(t, scpPath, scpParams).raw["Resources"].(map[string]any)[scpID].(map[string]any)["Properties"].(map[string]any)["Content"]
	lint := func(name string, content any) (string, error) {
		tpl := map[string]any{
			"AWSTemplateFormatVersion": "2010-09-09",
			"Parameters":               translated(t, scpPath, scpParams).raw["Parameters"],
			"Conditions":               translated(t, scpPath, scpParams).raw["Conditions"],
			"Resources": map[string]any{
				"SCPContentAsAPolicy": map[string]any{
					"Type":       "AWS::IAM::ManagedPolicy",
					"Properties": map[string]any{"PolicyDocument": content},
				},
			},
		}
		path := filepath.Join(t.TempDir(), name+".json")
		if err := os.WriteFile(path, mustJSON(t, tpl), 0o600); err != nil {
			t.Fatal(err)
		}
		// W2001, W8001: the parameters and conditions the policy does
		// not use (TargetIds).
		out, err := exec.Command(python, "-c", "import sys; from cfnlint.runner import main; sys.exit(main())",
			"--ignore-checks", "W2001", "W8001", "--", path).CombinedOutput()
		return string(out), err
	}
	if out, err := lint("scp", content); err != nil {
		t.Errorf("cfn-lint of the SCP's statements: %v\n%s", err, out)
	}
	broken := deepCopy(t, content)
	data := strings.Replace(string(mustJSON(t, broken)), "ForAnyValue:StringEqualsIgnoreCase", "ForAnyValue:StringEqualsIgnoringCase", 1)
	if err := json.Unmarshal([]byte(data), &broken); err != nil {
		t.Fatal(err)
	}
	if out, err := lint("broken", broken); err == nil {
		t.Errorf("cfn-lint passes an SCP with an operator IAM does not have:\n%s", out)
	}
}

// keyPolicy returns the statements of the policy of the key of stack s, as
// KMS (moto) has it: GetKeyPolicy, read with rawJSON, since moto answers
// the policy a template gave as an object where KMS answers a string.
func keyPolicy(t testing.TB, s *stack) []statement {
	t.Helper()
	body := mustJSON(t, map[string]string{"KeyId": s.physicalID(t, governedKeyID), "PolicyName": "default"})
	out := s.rawJSON(t, "kms", http.MethodPost, "/", "TrentService.GetKeyPolicy", jsonProtocol11, body)
	if str, ok := out["Policy"].(string); ok {
		return statements(t, str)
	}
	return statements(t, string(mustJSON(t, out["Policy"])))
}

func TestGovernedKeyPolicy(t *testing.T) {
	if p := translated(t, keyPolicyPath, keyPolicyParams).Parameters["TaggerAccountId"]; p.HasDefault() {
		t.Errorf("TaggerAccountId has Default %q, want none: it must be given", p.DefaultString())
	}
	for _, tt := range []struct {
		name string
		tags map[string]string
	}{{"default tags", nil}, {"tags renamed, prefixed, static", tagParams}} {
		t.Run(tt.name, func(t *testing.T) {
			// A key of a member account: moto makes it, and KMS keeps its
			// policy.
			s := deploy(t, stackSpec{template: keyPolicyPath, account: memberAccount, params: governanceParams(keyPolicyParams, tt.tags)})
			if got, want := s.output(t, "KeyArn"), "arn:aws:kms:"+homeRegion+":"+memberAccount+":key/"+s.physicalID(t, governedKeyID); got != want {
				t.Errorf("output KeyArn: got %s, want %s", got, want)
			}
			stmts := keyPolicy(t, s)
			var sids []string
			for _, st := range stmts {
				sids = append(sids, st["Sid"].(string))
			}
			if want := []string{"EnableIAMPolicies", "OnlyTaggersChangeGovernanceTags"}; !slices.Equal(sids, want) {
				t.Fatalf("statements: got %q, want %q", sids, want)
			}
			root := statementBySid(t, stmts, "EnableIAMPolicies")
			if root["Effect"] != "Allow" || !reflect.DeepEqual(root["Principal"], map[string]any{"AWS": "arn:aws:iam::" + memberAccount + ":root"}) {
				t.Errorf("EnableIAMPolicies: %v, want an Allow to the key's account", root)
			}
			deny := statementBySid(t, stmts, "OnlyTaggersChangeGovernanceTags")
			if deny["Effect"] != "Deny" || deny["Principal"] != "*" || !reflect.DeepEqual(deny["Action"], []any{"kms:TagResource", "kms:UntagResource"}) {
				t.Errorf("OnlyTaggersChangeGovernanceTags: %v, want a Deny of TagResource and UntagResource to everyone", deny)
			}
			if got, want := sortedTagKeys(t, deny, "ForAnyValue:StringEqualsIgnoreCase"), taggerTagKeys(t, tt.tags); !slices.Equal(got, want) {
				t.Errorf("aws:TagKeys: got %q, want the tagger's keys %q", got, want)
			}
			// The tagger's roles and this account's member role, exactly:
			// member-account keys stay taggable.
			exempt := exemptions(t, deny)
			want := []string{
				"arn:aws:iam::" + centralAccount + ":role" + taggersPath + "*",
				"arn:aws:iam::" + memberAccount + ":role" + taggersPath + defaultMemberTag,
			}
			if !slices.Equal(exempt, want) {
				t.Errorf("exempts %q, want %q", exempt, want)
			}
			checkExemptions(t, "the key policy", exempt, taggersPath)
		})
	}
}

// The attacker is an administrator of the key's account (or of any other
// account): the key's policy is evaluated as KMS keeps it. A principal of
// the key's account is allowed by EnableIAMPolicies (its own policies
// allow everything here), so only the deny stands between it and the tags.
func TestGovernedKeyPolicyAttacks(t *testing.T) {
	s := deploy(t, stackSpec{template: keyPolicyPath, account: memberAccount, params: keyPolicyParams})
	stmts := keyPolicy(t, s)
	key := s.output(t, "KeyArn")
	m := memberAccount
	tag := func(action, who string, keys ...string) request {
		return request{action: action, resource: key, principalARN: who, keys: map[string][]string{"aws:TagKeys": keys}}
	}
	tests := []struct {
		name string
		req  request
		want decision
	}{
		{"the member role writes the governance tags", tag("kms:TagResource", "arn:aws:iam::"+m+":role"+taggersPath+defaultMemberTag, "CreatedBy", "CreatedAt"), allowed},
		{"the member role removes a case variant", tag("kms:UntagResource", "arn:aws:iam::"+m+":role"+taggersPath+defaultMemberTag, "createdby"), allowed},
		{"an administrator writes CreatedBy", tag("kms:TagResource", "arn:aws:iam::"+m+":role/Admin", "CreatedBy"), explicitDeny},
		{"an administrator writes Createdby", tag("kms:TagResource", "arn:aws:iam::"+m+":role/Admin", "Createdby"), explicitDeny},
		{"an administrator removes REPLICAOF", tag("kms:UntagResource", "arn:aws:iam::"+m+":role/Admin", "REPLICAOF"), explicitDeny},
		{"an administrator writes other tags", tag("kms:TagResource", "arn:aws:iam::"+m+":role/Admin", "Team"), allowed},
		{"a role of the member role's name in another account", tag("kms:TagResource", "arn:aws:iam::"+thirdAccount+":role"+taggersPath+defaultMemberTag, "CreatedBy"), explicitDeny},
		{"a role of the member role's name off the path", tag("kms:TagResource", "arn:aws:iam::"+m+":role/"+defaultMemberTag, "CreatedBy"), explicitDeny},
		{"another role on the path of the key's account", tag("kms:TagResource", "arn:aws:iam::"+m+":role"+taggersPath+"other", "CreatedBy"), explicitDeny},
	}
	for _, tt := range tests {
		if got := evalPolicy(t, stmts, tt.req, true); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}
}

// TestTagKeyConditionsIgnoreCase reads every condition on aws:TagKeys in
// every policy the templates make, as deployed: a Deny (service control
// policy, key policy) compares the request's keys with the governance keys
// ignoring case, and so does the permission to remove them (the handler
// removes case variants); the permission to write them compares exactly,
// since the handler writes each key in its configured case and a case
// variant must be refused. No other operator is used on tag keys.
func TestTagKeyConditionsIgnoreCase(t *testing.T) {
	policies := map[string][]statement{
		"function role":     taggerStack(t, everythingOn).allInline(t, roleID),
		"member role":       deploy(t, stackSpec{template: memberPath, account: memberAccount, params: memberParams}).allInline(t, memberRoleID),
		"SCP":               scpStatements(t, deploy(t, stackSpec{template: scpPath, params: scpParams})),
		"key policy":        keyPolicy(t, deploy(t, stackSpec{template: keyPolicyPath, account: memberAccount, params: keyPolicyParams})),
		"dead-letter queue": probeStatements(t, taggerStack(t, nil), queuePolicyID, "PolicyDocument"),
	}
	found := 0
	for name, stmts := range policies {
		for _, st := range stmts {
			cond, _ := st["Condition"].(map[string]any)
			acts, _ := stringList(st["Action"])
			for op, keys := range cond {
				km, _ := keys.(map[string]any)
				for key := range km {
					if !strings.EqualFold(key, "aws:TagKeys") && !strings.HasPrefix(strings.ToLower(key), "aws:requesttag/") {
						continue
					}
					found++
					var want string
					switch {
					case op == "Null":
						continue
					case st["Effect"] == "Deny":
						want = "ForAnyValue:StringEqualsIgnoreCase"
					case slices.Equal(acts, []string{"kms:UntagResource"}):
						want = "ForAllValues:StringEqualsIgnoreCase"
					case slices.Equal(acts, []string{"kms:TagResource"}):
						want = "ForAllValues:StringEquals"
					default:
						t.Errorf("%s statement %v: a condition on %s for %q", name, st["Sid"], key, acts)
						continue
					}
					if op != want {
						t.Errorf("%s statement %v: %s on %s, want %s", name, st["Sid"], op, key, want)
					}
				}
			}
		}
	}
	if found == 0 {
		t.Fatal("found no condition on tag keys")
	}
}
