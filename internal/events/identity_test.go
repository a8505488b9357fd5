package events_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kms-autotagger/kms-autotagger/internal/events"
)

// TestDecodeIdentityShapes decodes the fixtures of the identity shapes the
// CreatedByUser rule tells apart (the others are in TestDecode): the
// creator must carry what the rule reads, userName, the source identity and
// the session issuer, exactly as the record gives them.
func TestDecodeIdentityShapes(t *testing.T) {
	tests := []decodeCase{
		{
			// A session of a role assumed from another role's session:
			// its name is an automation job's, its source identity the
			// person's, which role chaining keeps.
			scenario: "createkey_sourceidentity_chained",
			want: tagged(keyEvent(events.EventNameCreateKey, "8f3a1c5e-7b2d-4e9f-a0c6-5d1e3b7f9a24", utc(2024, 9, 17, 10, 42, 8),
				"us-east-1", "6d4b2f8e-0a1c-4e53-b7d9-3f5a1c8e2b46", events.Creator{
					Type:           events.IdentityAssumedRole,
					PrincipalARN:   "arn:aws:sts::111122223333:assumed-role/KeyRotationAdmin/ops-automation-7731",
					PrincipalID:    "AROAYXPCD7EXAMPLEK9RA:ops-automation-7731",
					AccountID:      account,
					IssuerARN:      "arn:aws:iam::111122223333:role/KeyRotationAdmin",
					SourceIdentity: "dana@example.com",
				})),
		},
		{
			scenario: "createkey_assumedrole_misleading_session",
			want: tagged(keyEvent(events.EventNameCreateKey, "1d3f5b7e-9a2c-4e6f-b8d0-3c5e7a9b1d46", utc(2024, 10, 2, 15, 6, 44),
				"eu-west-1", "a3c5e7f9-1b3d-4f5a-8c7e-9d1f3b5a7c92", events.Creator{
					Type:         events.IdentityAssumedRole,
					PrincipalARN: "arn:aws:sts::111122223333:assumed-role/PlatformKeyAdmin/alice@example.com",
					PrincipalID:  "AROAYXPCD7EXAMPLE7KQ2:alice@example.com",
					AccountID:    account,
					IssuerARN:    "arn:aws:iam::111122223333:role/PlatformKeyAdmin",
				})),
		},
		{
			scenario: "createkey_sso_lookalike_role",
			want: tagged(keyEvent(events.EventNameCreateKey, "7b9d1f3a-5c7e-4a9b-8d1f-6a8c0e2b4d79", utc(2024, 10, 14, 9, 12, 37),
				"eu-central-1", "c7e9a1b3-5d7f-4a9c-8e1b-4d6f8a0c2e61", events.Creator{
					Type:         events.IdentityAssumedRole,
					PrincipalARN: "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_AdministratorAccess_5f1c9b2e7d3a4c86/carol@example.com",
					PrincipalID:  "AROAYXPCD7EXAMPLEFAKE:carol@example.com",
					AccountID:    account,
					IssuerARN:    "arn:aws:iam::111122223333:role/AWSReservedSSO_AdministratorAccess_5f1c9b2e7d3a4c86",
				})),
		},
		{
			scenario: "createkey_cloudformation_no_service_role",
			want: tagged(keyEvent(events.EventNameCreateKey, "4f6a8c0e-2b4d-4f6a-8c0e-2b4d6f8a0c13", utc(2024, 8, 21, 13, 47, 29),
				"eu-west-1", "f2a4c6e8-0b1d-4f3a-9c5e-7b9d1f3a5c86", events.Creator{
					Type:         events.IdentityAssumedRole,
					PrincipalARN: "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_PowerUserAccess_8c2e4a6b0d1f3e57/erin@example.com",
					PrincipalID:  "AROAYXPCD7EXAMPLEPWR5:erin@example.com",
					AccountID:    account,
					IssuerARN:    "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/eu-central-1/AWSReservedSSO_PowerUserAccess_8c2e4a6b0d1f3e57",
					InvokedBy:    events.InvokedByCloudFormation,
				}, withTags("team", "orders"))),
		},
		{
			scenario: "createkey_stackset_instance",
			want: tagged(keyEvent(events.EventNameCreateKey, "e2a4c6e8-0a2c-4e6a-8c0e-4a6c8e0b2d35", utc(2024, 11, 5, 6, 33, 18),
				"us-west-2", "0b2d4f6a-8c0e-4a2c-b4e6-8a0c2e4f6b93", events.Creator{
					Type:         events.IdentityAssumedRole,
					PrincipalARN: "arn:aws:sts::111122223333:assumed-role/stacksets-exec-2f4a6c8e0b1d3f5a7c9e1b3d5f7a9c1e/2c4e6a8c-0e1b-4d3f-9a5c-7e9b1d3f5a62",
					PrincipalID:  "AROAYXPCD7EXAMPLESSEX:2c4e6a8c-0e1b-4d3f-9a5c-7e9b1d3f5a62",
					AccountID:    account,
					IssuerARN:    "arn:aws:iam::111122223333:role/stacksets-exec-2f4a6c8e0b1d3f5a7c9e1b3d5f7a9c1e",
					InvokedBy:    events.InvokedByCloudFormation,
				})),
		},
	}
	for _, tc := range tests {
		t.Run(tc.scenario, func(t *testing.T) {
			got, err := events.Decode(readFixture(t, tc.scenario))
			checkDecoded(t, got, err, tc)
		})
	}
}

// TestUserIdentityCreator checks that Creator carries userName and the
// source identity as the record gives them, and onBehalfOf only whole.
func TestUserIdentityCreator(t *testing.T) {
	u := events.UserIdentity{
		Type: events.IdentityAssumedRole, ARN: "arn:aws:sts::111122223333:assumed-role/R/s", UserName: "ignored-by-the-rule",
		SessionContext: events.SessionContext{SourceIdentity: "dana@example.com", SessionIssuer: events.SessionIssuer{ARN: "arn:aws:iam::111122223333:role/R"}},
		OnBehalfOf:     events.OnBehalfOf{UserID: "94a8e4d8-b0c1-70f6-3e2d-1c5b7a9f0e42"},
	}
	c := u.Creator()
	if c.SourceIdentity != "dana@example.com" || c.UserName != "ignored-by-the-rule" || c.IssuerARN != "arn:aws:iam::111122223333:role/R" {
		t.Errorf("Creator: got %+v, want the source identity, the userName and the issuer", c)
	}
	if c.IdentityStoreUser != "" {
		t.Errorf("IdentityStoreUser: got %q for onBehalfOf without an identity store, want none", c.IdentityStoreUser)
	}
}

const (
	paymentsStack = "arn:aws:cloudformation:eu-west-1:111122223333:stack/payments/5b0c7e2a-3951-11ef-8a4c-0a1b2c3d4e5f"
	ordersStack   = "arn:aws:cloudformation:eu-west-1:111122223333:stack/orders/9d3b1f7c-5fa4-11ef-b2c6-06e4a1f3d5b7"
	ordersRelease = "arn:aws:cloudformation:eu-west-1:111122223333:changeSet/orders-release-42/1e5c9a3d-7b2f-4e6a-8c0d-4f1b3d5a7c9e"
	cfnDeployer   = "arn:aws:iam::111122223333:role/cfn-deployer"
)

func TestDecodeStackOperation(t *testing.T) {
	carol := events.Creator{
		Type:         events.IdentityAssumedRole,
		PrincipalARN: "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_AdministratorAccess_5f1c9b2e7d3a4c86/carol@example.com",
		PrincipalID:  "AROAYXPCD7EXAMPLES5SO:carol@example.com",
		AccountID:    account,
		IssuerARN:    "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/eu-central-1/AWSReservedSSO_AdministratorAccess_5f1c9b2e7d3a4c86",
	}
	pipeline := events.Creator{
		Type:         events.IdentityAssumedRole,
		PrincipalARN: "arn:aws:sts::111122223333:assumed-role/DeployPipeline/codepipeline-7a1c3e5b9d2f",
		PrincipalID:  "AROAYXPCD7EXAMPLEPIPE:codepipeline-7a1c3e5b9d2f",
		AccountID:    account,
		IssuerARN:    "arn:aws:iam::111122223333:role/DeployPipeline",
	}
	op := func(id, name string, at time.Time, operator events.Creator, edit func(*events.StackOperation)) *events.StackOperation {
		o := &events.StackOperation{EventID: id, EventName: name, EventTime: at, Region: "eu-west-1", Account: account, Operator: operator}
		edit(o)
		return o
	}
	tests := []struct {
		scenario string
		want     *events.StackOperation
		starts   bool
	}{
		{"stackop_createstack_sso", op("0c6f2a8e-4b1d-4e7a-9c3f-5a8d2b6e1f40", "CreateStack", utc(2024, 7, 3, 8, 19, 2), carol, func(o *events.StackOperation) {
			o.StackID, o.StackName, o.RoleARN = paymentsStack, "payments", cfnDeployer
		}), true},
		{"stackop_updatestack_pipeline", op("3e7b1f5a-9c2d-4e8b-a6f0-2d4b8e1c5a73", "UpdateStack", utc(2024, 7, 3, 8, 19, 2), pipeline, func(o *events.StackOperation) {
			o.StackID, o.StackName, o.RoleARN = paymentsStack, paymentsStack, cfnDeployer
		}), true},
		{"stackop_updatestack_failed", op("8c2f6d0b-4e7a-4b3c-9f15-1b3d7f9a5c82", "UpdateStack", utc(2024, 7, 3, 8, 19, 40), pipeline, func(o *events.StackOperation) {
			o.StackName, o.ErrorCode = "payments", "ValidationError"
		}), false},
		{"stackop_createchangeset", op("1a5e9c3f-7d2b-4f6a-8e0c-5b9d3f7a1c48", "CreateChangeSet", utc(2024, 8, 21, 13, 40, 5), events.Creator{
			Type: events.IdentityAssumedRole, PrincipalARN: "arn:aws:sts::111122223333:assumed-role/ReleaseManager/frank",
			PrincipalID: "AROAYXPCD7EXAMPLEREL2:frank", AccountID: account, IssuerARN: "arn:aws:iam::111122223333:role/ReleaseManager",
		}, func(o *events.StackOperation) {
			o.StackID, o.StackName, o.ChangeSetName, o.ChangeSetID = ordersStack, "orders", "orders-release-42", ordersRelease
		}), false},
		{"stackop_executechangeset", op("5c9f3b7d-1e4a-4c8b-9f2d-6a0e4c8b2f17", "ExecuteChangeSet", utc(2024, 8, 21, 13, 46, 51), events.Creator{
			Type: events.IdentityAssumedRole, PrincipalARN: "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_PowerUserAccess_8c2e4a6b0d1f3e57/erin@example.com",
			PrincipalID: "AROAYXPCD7EXAMPLEPWR5:erin@example.com", AccountID: account,
			IssuerARN: "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/eu-central-1/AWSReservedSSO_PowerUserAccess_8c2e4a6b0d1f3e57",
		}, func(o *events.StackOperation) { o.ChangeSetName = ordersRelease }), true},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			got, err := events.DecodeStackOperation(readFixture(t, tt.scenario))
			if err != nil {
				t.Fatalf("DecodeStackOperation: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("DecodeStackOperation:\ngot  %+v\nwant %+v", *got, *tt.want)
			}
			if got.Starts() != tt.starts {
				t.Errorf("Starts: got %v, want %v", got.Starts(), tt.starts)
			}
		})
	}
}

func TestDecodeStackOperationRefuses(t *testing.T) {
	createStack := string(readFixture(t, "stackop_createstack_sso"))
	tests := []struct {
		name    string
		record  string
		want    string
		notJSON bool
	}{
		{"not JSON", "{", "not JSON", true},
		{"not an object", `[1]`, "not JSON", true},
		{"another service", strings.Replace(createStack, `"cloudformation.amazonaws.com"`, `"kms.amazonaws.com"`, 1), `eventSource "kms.amazonaws.com" is not cloudformation.amazonaws.com`, false},
		{"another call", strings.Replace(createStack, `"CreateStack"`, `"DeleteStack"`, 1), `eventName "DeleteStack" is not a call that starts`, false},
		{"no event id", strings.Replace(createStack, `"eventID": "0c6f2a8e-4b1d-4e7a-9c3f-5a8d2b6e1f40"`, `"eventID": ""`, 1), "no eventID", false},
		{"bad time", strings.Replace(createStack, `"2024-07-03T08:19:02Z"`, `"Jul 3, 2024"`, 1), "is not RFC 3339", false},
		{"no region", strings.Replace(createStack, `"awsRegion": "eu-west-1"`, `"awsRegion": ""`, 1), "no awsRegion", false},
		{"parameters not an object", strings.Replace(createStack, `"requestParameters": {`, `"requestParameters": "x", "ignored": {`, 1), "not JSON", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := events.DecodeStackOperation([]byte(tt.record))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("DecodeStackOperation: got %+v, %v, want an error containing %q", got, err, tt.want)
			}
			if errors.Is(err, events.ErrNotJSON) != tt.notJSON {
				t.Errorf("error %v: matches ErrNotJSON %v, want %v", err, errors.Is(err, events.ErrNotJSON), tt.notJSON)
			}
		})
	}
}
