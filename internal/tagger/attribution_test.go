package tagger_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kms-autotagger/kms-autotagger/internal/events"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// Stacks of the fixtures of internal/events/testdata.
const (
	paymentsStack = "arn:aws:cloudformation:eu-west-1:111122223333:stack/payments/5b0c7e2a-3951-11ef-8a4c-0a1b2c3d4e5f"
	ordersStack   = "arn:aws:cloudformation:eu-west-1:111122223333:stack/orders/9d3b1f7c-5fa4-11ef-b2c6-06e4a1f3d5b7"
	baselineStack = "arn:aws:cloudformation:us-west-2:111122223333:stack/StackSet-baseline-keys-3f1c7a9e-2b4d-4e6f-8a0c-1e3b5d7f9a2c/6c8e0a2c-9b1d-11ef-a4c6-0e2f4a6c8e1b"
)

// fixture reads a fixture of the events package.
func fixture(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "events", "testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func fixtureKey(t *testing.T, name string) *events.KeyEvent {
	t.Helper()
	d, err := events.Decode(fixture(t, name))
	if err != nil || d.Kind != events.KindTag {
		t.Fatalf("Decode %s: kind %v, error %v; want a key to tag", name, d.Kind, err)
	}
	return d.Key
}

func fixtureOperation(t *testing.T, name string) *events.StackOperation {
	t.Helper()
	op, err := events.DecodeStackOperation(fixture(t, name))
	if err != nil {
		t.Fatalf("DecodeStackOperation %s: %v", name, err)
	}
	return op
}

// TestCreatedByUserRule is the rule table of CreatedByUser and
// CreatedByStack, one row per identity shape, each a fixture of the events
// package: the tags the policy derives, and why a key gets no
// CreatedByUser. For the keys CloudFormation made, the stack is what a
// StackFinder would find: the stack's ARN and the CloudTrail record of the
// stack operation (itself a fixture).
func TestCreatedByUserRule(t *testing.T) {
	found := func(stack, operation string) func(t *testing.T) *tagger.StackOrigin {
		return func(t *testing.T) *tagger.StackOrigin {
			o := &tagger.StackOrigin{StackARN: stack}
			if operation != "" {
				o.Operation = fixtureOperation(t, operation)
			}
			return o
		}
	}
	tests := []struct {
		shape, fixture string
		stack          func(t *testing.T) *tagger.StackOrigin
		// lookup is what StackLookup asks a StackFinder: the stack, and
		// its operator.
		lookup            [2]bool
		wantUser          string
		wantStack         string
		wantUnset         string // a part of CreatedByUser's reason
		wantPendingUser   bool
		wantPendingStack  bool
		wantRetry         bool
		wantNoCreatedVia  bool
		wantCreatedByRole string
	}{
		{shape: "IAM user", fixture: "createkey_iamuser", wantUser: "alice", wantNoCreatedVia: true},
		{shape: "root", fixture: "createkey_root", wantUser: "root", wantNoCreatedVia: true},
		{shape: "source identity through a chained role", fixture: "createkey_sourceidentity_chained", wantUser: "dana@example.com",
			wantNoCreatedVia: true, wantCreatedByRole: "arn:aws:iam::111122223333:role/KeyRotationAdmin"},
		{shape: "Identity Center, AWSReservedSSO_ role session", fixture: "createkey_identitycenter_assumedrole", wantUser: "carol@example.com", wantNoCreatedVia: true,
			wantCreatedByRole: "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/eu-central-1/AWSReservedSSO_AdministratorAccess_5f1c9b2e7d3a4c86"},
		{shape: "Identity Center, IdentityCenterUser (onBehalfOf)", fixture: "createkey_identitycenter_user", wantNoCreatedVia: true,
			wantUser: "arn:aws:identitystore::111122223333:identitystore/d-9067c1a2b3/user/94a8e4d8-b0c1-70f6-3e2d-1c5b7a9f0e42"},
		{shape: "ordinary role, a session name chosen by the caller", fixture: "createkey_assumedrole_misleading_session", wantNoCreatedVia: true,
			wantUnset: "ordinary role session, whose session name is chosen by whoever assumed the role", wantCreatedByRole: "arn:aws:iam::111122223333:role/PlatformKeyAdmin"},
		{shape: "ordinary role, a CI session", fixture: "createkey_assumedrole", wantNoCreatedVia: true, wantUnset: "ordinary role session",
			wantCreatedByRole: "arn:aws:iam::111122223333:role/PlatformKeyAdmin"},
		{shape: "a customer role named AWSReservedSSO_", fixture: "createkey_sso_lookalike_role", wantNoCreatedVia: true,
			wantUnset: "not on Identity Center's path /aws-reserved/sso.amazonaws.com/", wantCreatedByRole: "arn:aws:iam::111122223333:role/AWSReservedSSO_AdministratorAccess_5f1c9b2e7d3a4c86"},
		{shape: "federated user", fixture: "createkey_federateduser", wantNoCreatedVia: true, wantUnset: "federated user session",
			wantCreatedByRole: "arn:aws:iam::111122223333:user/federation-broker"},
		{shape: "AWS service", fixture: "createkey_awsservice", wantUnset: "the AWS service servicecatalog.amazonaws.com"},
		{shape: "CloudFormation with a service role, stack created by an Identity Center user", fixture: "createkey_cloudformation",
			stack: found(paymentsStack, "stackop_createstack_sso"), lookup: [2]bool{true, true}, wantUser: "carol@example.com", wantStack: paymentsStack,
			wantCreatedByRole: "arn:aws:iam::111122223333:role/cfn-deployer"},
		{shape: "CloudFormation with a service role, stack updated by a pipeline role", fixture: "createkey_cloudformation",
			stack: found(paymentsStack, "stackop_updatestack_pipeline"), lookup: [2]bool{true, true}, wantStack: paymentsStack,
			wantUnset: "whose UpdateStack (event 3e7b1f5a-9c2d-4e8b-a6f0-2d4b8e1c5a73) was made by an ordinary role session", wantCreatedByRole: "arn:aws:iam::111122223333:role/cfn-deployer"},
		{shape: "CloudFormation with a service role, stack updated with a source identity", fixture: "createkey_cloudformation",
			stack: found(paymentsStack, "stackop_updatestack_sourceidentity"), lookup: [2]bool{true, true}, wantUser: "dana@example.com", wantStack: paymentsStack,
			wantCreatedByRole: "arn:aws:iam::111122223333:role/cfn-deployer"},
		{shape: "CloudFormation, a nested stack's operation", fixture: "createkey_cloudformation",
			stack: found(paymentsStack, "stackop_createstack_nested"), lookup: [2]bool{true, true}, wantStack: paymentsStack,
			wantUnset: "CloudFormation itself, for a nested stack", wantCreatedByRole: "arn:aws:iam::111122223333:role/cfn-deployer"},
		{shape: "CloudFormation without a service role: the operator's own session", fixture: "createkey_cloudformation_no_service_role",
			stack: found(ordersStack, ""), lookup: [2]bool{true, false}, wantUser: "erin@example.com", wantStack: ordersStack,
			wantCreatedByRole: "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/eu-central-1/AWSReservedSSO_PowerUserAccess_8c2e4a6b0d1f3e57"},
		{shape: "StackSet instance", fixture: "createkey_stackset_instance",
			stack: func(*testing.T) *tagger.StackOrigin {
				return &tagger.StackOrigin{StackARN: baselineStack, StackSet: true}
			}, lookup: [2]bool{true, true},
			wantStack: baselineStack, wantUnset: "StackSet's administrator account", wantCreatedByRole: "arn:aws:iam::111122223333:role/stacksets-exec-2f4a6c8e0b1d3f5a7c9e1b3d5f7a9c1e"},
		{shape: "CloudFormation, stack not looked up", fixture: "createkey_cloudformation", lookup: [2]bool{true, true},
			wantPendingUser: true, wantPendingStack: true, wantCreatedByRole: "arn:aws:iam::111122223333:role/cfn-deployer"},
		{shape: "CloudFormation, stack lookup throttled", fixture: "createkey_cloudformation",
			stack: func(*testing.T) *tagger.StackOrigin {
				return &tagger.StackOrigin{Pending: true, Reason: "DescribeStackResources failed: Throttling: Rate exceeded"}
			}, lookup: [2]bool{true, true},
			wantPendingUser: true, wantPendingStack: true, wantRetry: true, wantCreatedByRole: "arn:aws:iam::111122223333:role/cfn-deployer"},
		{shape: "CloudFormation, operation not in the history yet", fixture: "createkey_cloudformation",
			stack: func(*testing.T) *tagger.StackOrigin {
				return &tagger.StackOrigin{StackARN: paymentsStack, Pending: true, Reason: "CloudTrail's event history holds no CreateStack ... yet"}
			}, lookup: [2]bool{true, true},
			wantStack: paymentsStack, wantPendingUser: true, wantRetry: true, wantCreatedByRole: "arn:aws:iam::111122223333:role/cfn-deployer"},
	}
	p := mustPolicy(t, tagger.DefaultNames(), "", nil)
	for _, tt := range tests {
		t.Run(tt.shape, func(t *testing.T) {
			key := fixtureKey(t, tt.fixture)
			if stack, operator := p.StackLookup(key); [2]bool{stack, operator} != tt.lookup {
				t.Errorf("StackLookup: got stack %v operator %v, want %v", stack, operator, tt.lookup)
			}
			var in tagger.PlanInput
			if tt.stack != nil {
				in.Stack = tt.stack(t)
			}
			plan := p.PlanWith(key, key.RequestTags, in)
			got := map[string]string{}
			for _, tag := range plan.Tags {
				got[tag.Key] = tag.Value
			}
			want := map[string]string{
				"CreatedBy": createdByOf(key), "CreatedAt": key.EventTime.Format("2006-01-02T15:04:05Z"),
				"CreationEventId": key.EventID, "CreatedByEvidence": "event",
			}
			if !tt.wantNoCreatedVia {
				want["CreatedVia"] = key.Creator.InvokedBy
			}
			if tt.wantCreatedByRole != "" {
				want["CreatedByRole"] = tt.wantCreatedByRole
			}
			if tt.wantUser != "" {
				want["CreatedByUser"] = tagger.SanitizeValue(tt.wantUser)
			}
			if tt.wantStack != "" {
				want["CreatedByStack"] = tt.wantStack
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("tags:\ngot  %v\nwant %v", got, want)
			}
			unset := noteOf(plan.Unset, "CreatedByUser")
			switch {
			case tt.wantUnset == "" && unset != nil:
				t.Errorf("unset CreatedByUser: got %+v, want none", *unset)
			case tt.wantUnset != "" && (unset == nil || !strings.Contains(unset.Reason, tt.wantUnset)):
				t.Errorf("unset CreatedByUser: got %+v, want a reason containing %q", unset, tt.wantUnset)
			}
			for key, wantPending := range map[string]bool{"CreatedByUser": tt.wantPendingUser, "CreatedByStack": tt.wantPendingStack} {
				n := noteOf(plan.Pending, key)
				switch {
				case wantPending && n == nil:
					t.Errorf("pending %s: got none, want it pending", key)
				case !wantPending && n != nil:
					t.Errorf("pending %s: got %+v, want none", key, *n)
				case n != nil && (n.Retry != tt.wantRetry || n.Reason == "" || n.Kept):
					t.Errorf("pending %s: got %+v, want retry %v, a reason, nothing kept", key, *n, tt.wantRetry)
				}
			}
			if plan.Retry() != tt.wantRetry {
				t.Errorf("Retry: got %v, want %v", plan.Retry(), tt.wantRetry)
			}
		})
	}
}

// createdByOf is the CreatedBy the policy derives from the fixtures: the
// principal ARN, the identity store user, or the calling service.
func createdByOf(k *events.KeyEvent) string {
	switch {
	case k.Creator.PrincipalARN != "":
		return k.Creator.PrincipalARN
	case k.Creator.IdentityStoreUser != "":
		return k.Creator.IdentityStoreUser
	}
	return k.Creator.InvokedBy
}

func noteOf(notes []tagger.Note, key string) *tagger.Note {
	for i := range notes {
		if notes[i].Key == key {
			return &notes[i]
		}
	}
	return nil
}

func TestUserOf(t *testing.T) {
	const (
		sso     = "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_0123456789abcdef"
		ssoSess = "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/"
	)
	tests := []struct {
		name     string
		creator  events.Creator
		want     string
		whyParts string
	}{
		{"IAM user by its ARN", events.Creator{Type: "IAMUser", PrincipalARN: "arn:aws:iam::111122223333:user/team/alice"}, "alice", ""},
		{"IAM user by userName alone", events.Creator{Type: "IAMUser", UserName: "alice"}, "alice", ""},
		{"IAM user whose ARN and userName disagree", events.Creator{Type: "IAMUser", PrincipalARN: "arn:aws:iam::111122223333:user/alice", UserName: "mallory"}, "", "userName"},
		{"IAM user with an ARN of something else", events.Creator{Type: "IAMUser", PrincipalARN: "arn:aws:iam::111122223333:role/alice"}, "", "not an IAM user's"},
		{"root with an alias", events.Creator{Type: "Root", PrincipalARN: "arn:aws:iam::111122223333:root", UserName: "my-alias"}, "root", ""},
		{"source identity wins over a session name", events.Creator{Type: "AssumedRole", PrincipalARN: "arn:aws:sts::111122223333:assumed-role/R/bob", SourceIdentity: "dana"}, "dana", ""},
		{"identity-enhanced role session", events.Creator{Type: "AssumedRole", PrincipalARN: "arn:aws:sts::111122223333:assumed-role/R/app", IdentityStoreUser: "arn:aws:identitystore::111122223333:identitystore/d-1/user/u-1"}, "arn:aws:identitystore::111122223333:identitystore/d-1/user/u-1", ""},
		{"Identity Center session", events.Creator{Type: "AssumedRole", PrincipalARN: ssoSess + "carol", PrincipalID: "AROAX:carol", IssuerARN: sso}, "carol", ""},
		{"Identity Center session of another role", events.Creator{Type: "AssumedRole", PrincipalARN: "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Other_1/carol", IssuerARN: sso}, "", "not one of its issuer"},
		{"Identity Center session in another account", events.Creator{Type: "AssumedRole", PrincipalARN: "arn:aws:sts::444455556666:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/carol", IssuerARN: sso}, "", "not one of its issuer"},
		{"Identity Center session whose principalId disagrees", events.Creator{Type: "AssumedRole", PrincipalARN: ssoSess + "carol", PrincipalID: "AROAX:mallory", IssuerARN: sso}, "", "principalId"},
		{"Identity Center path, not an Identity Center name", events.Creator{Type: "AssumedRole", PrincipalARN: "arn:aws:sts::111122223333:assumed-role/Admin/carol", IssuerARN: "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/Admin"}, "", "ordinary role session"},
		{"Identity Center name on another path", events.Creator{Type: "AssumedRole", PrincipalARN: ssoSess + "carol", IssuerARN: "arn:aws:iam::111122223333:role/aws-reserved/AWSReservedSSO_Admin_0123456789abcdef"}, "", "not on Identity Center's path"},
		{"a session with no issuer", events.Creator{Type: "AssumedRole", PrincipalARN: "arn:aws:sts::111122223333:assumed-role/R/alice@example.com"}, "", "ordinary role session"},
		{"AWS account", events.Creator{Type: "AWSAccount", AccountID: "444455556666"}, "", "444455556666"},
		{"no type", events.Creator{}, "", "no type"},
		{"another type", events.Creator{Type: "WebIdentityUser"}, "", "WebIdentityUser"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := tagger.UserOf(tt.creator)
			if got != tt.want {
				t.Errorf("user: got %q (%s), want %q", got, why, tt.want)
			}
			if (got == "") == (why == "") || !strings.Contains(why, tt.whyParts) {
				t.Errorf("why: got %q, want one containing %q exactly when there is no user", why, tt.whyParts)
			}
		})
	}
}

// TestPlanPendingKeepsWhatTheTaggerWrote: a tag whose value is not known
// yet is not a tag with no true value. The key keeps what the tagger wrote
// earlier under it, but never a value someone else set: the creator in the
// creation request, or the tag change a repair answers.
func TestPlanPendingKeepsWhatTheTaggerWrote(t *testing.T) {
	p := mustPolicy(t, tagger.DefaultNames(), "", nil)
	cfn := keyEvent(events.Creator{Type: "AssumedRole", PrincipalARN: "arn:aws:sts::111122223333:assumed-role/cfn-deployer/AWSCloudFormation",
		IssuerARN: "arn:aws:iam::111122223333:role/cfn-deployer", InvokedBy: "cloudformation.amazonaws.com"})
	truth := p.PlanWith(cfn, nil, tagger.PlanInput{Stack: &tagger.StackOrigin{StackARN: paymentsStack, Operation: fixtureOperation(t, "stackop_createstack_sso")}}).Tags
	throttled := &tagger.StackOrigin{Pending: true, Reason: "Throttling"}
	written := func(extra ...tagger.Tag) []tagger.Tag { return append(append([]tagger.Tag{}, truth...), extra...) }
	tests := []struct {
		name       string
		ev         *events.KeyEvent
		current    []tagger.Tag
		in         tagger.PlanInput
		wantRemove []string
		wantKept   []string
	}{
		{"written earlier, lookup fails now: kept", cfn, written(), tagger.PlanInput{Stack: throttled}, nil, []string{"CreatedByUser", "CreatedByStack"}},
		{"written earlier, not looked up: kept", cfn, written(), tagger.PlanInput{}, nil, []string{"CreatedByUser", "CreatedByStack"}},
		{"passed by the creator: removed", withRequestTags(cfn, tagger.Tag{Key: "CreatedByStack", Value: "arn:aws:cloudformation:eu-west-1:111122223333:stack/prod/1"}),
			[]tagger.Tag{{Key: "CreatedByStack", Value: "arn:aws:cloudformation:eu-west-1:111122223333:stack/prod/1"}}, tagger.PlanInput{Stack: throttled}, []string{"CreatedByStack"}, nil},
		{"passed by the creator in another case: removed", withRequestTags(cfn, tagger.Tag{Key: "createdbyuser", Value: "bob"}),
			[]tagger.Tag{{Key: "CreatedByUser", Value: "bob"}}, tagger.PlanInput{Stack: throttled}, []string{"CreatedByUser"}, nil},
		{"set by the tag change a repair answers: removed", cfn, written(),
			tagger.PlanInput{Stack: throttled, Untrusted: []tagger.Tag{{Key: "CreatedByUser", Value: "carol@example.com"}}}, []string{"CreatedByUser"}, []string{"CreatedByStack"}},
		{"a case variant: removed", cfn, written(tagger.Tag{Key: "createdbystack", Value: "x"}), tagger.PlanInput{Stack: throttled}, []string{"createdbystack"}, []string{"CreatedByUser", "CreatedByStack"}},
		{"no true value (not CloudFormation's): removed", keyEvent(events.Creator{Type: "AssumedRole", PrincipalARN: "arn:aws:sts::111122223333:assumed-role/R/alice@example.com", IssuerARN: "arn:aws:iam::111122223333:role/R"}),
			[]tagger.Tag{{Key: "CreatedByStack", Value: paymentsStack}, {Key: "CreatedByUser", Value: "alice@example.com"}}, tagger.PlanInput{}, []string{"CreatedByStack", "CreatedByUser"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.PlanWith(tt.ev, tt.current, tt.in)
			if !reflect.DeepEqual(got.Remove, tt.wantRemove) {
				t.Errorf("remove: got %v, want %v", got.Remove, tt.wantRemove)
			}
			var kept []string
			for _, n := range got.Pending {
				if n.Kept {
					kept = append(kept, n.Key)
				}
			}
			if !reflect.DeepEqual(kept, tt.wantKept) {
				t.Errorf("kept: got %v (pending %+v), want %v", kept, got.Pending, tt.wantKept)
			}
			for _, k := range tt.wantKept {
				if _, written := valueOf(got.Write, k); written {
					t.Errorf("%s kept, but written: %v", k, got.Write)
				}
				if _, ok := valueOf(got.Tags, k); !ok {
					t.Errorf("%s kept, but not among the tags the key carries: %v", k, got.Tags)
				}
				for _, o := range got.Overridden {
					if o.Key == k {
						t.Errorf("%s kept, but reported overridden", k)
					}
				}
			}
		})
	}
}

func withRequestTags(ev *events.KeyEvent, tags ...tagger.Tag) *events.KeyEvent {
	c := *ev
	c.RequestTags = tags
	return &c
}

// TestStackLookupSwitchedOff: no tag needs the stack, no lookup.
func TestStackLookupSwitchedOff(t *testing.T) {
	key := fixtureKey(t, "createkey_cloudformation")
	names := tagger.DefaultNames()
	names.CreatedByStack = ""
	if stack, operator := mustPolicy(t, names, "", nil).StackLookup(key); !stack || !operator {
		t.Errorf("CreatedByStack off: got stack %v operator %v, want both for CreatedByUser", stack, operator)
	}
	names.CreatedByUser = ""
	if stack, operator := mustPolicy(t, names, "", nil).StackLookup(key); stack || operator {
		t.Errorf("both off: got stack %v operator %v, want no lookup", stack, operator)
	}
	names = tagger.DefaultNames()
	names.CreatedByUser = ""
	if stack, operator := mustPolicy(t, names, "", nil).StackLookup(key); !stack || operator {
		t.Errorf("CreatedByUser off: got stack %v operator %v, want the stack only", stack, operator)
	}
}
