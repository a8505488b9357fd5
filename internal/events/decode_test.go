package events_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kms-autotagger/kms-autotagger/internal/events"
)

const account = "111122223333"

// Principals that recur across fixtures.
var (
	alice = events.Creator{
		Type:         events.IdentityIAMUser,
		PrincipalARN: "arn:aws:iam::111122223333:user/alice",
		PrincipalID:  "AIDAYXPCD7EXAMPLE4U2Q",
		AccountID:    account,
		UserName:     "alice",
	}
	ciDeploy5307 = events.Creator{
		Type:         events.IdentityAssumedRole,
		PrincipalARN: "arn:aws:sts::111122223333:assumed-role/PlatformKeyAdmin/ci-deploy-5307",
		PrincipalID:  "AROAYXPCD7EXAMPLE7KQ2:ci-deploy-5307",
		AccountID:    account,
		IssuerARN:    "arn:aws:iam::111122223333:role/PlatformKeyAdmin",
	}
)

// Multi-Region key ids used by the fixtures.
const (
	ordersMRK = "mrk-4c2e8a6f1d9b47e3a5c7f0b2d8e6a914"
	tokyoMRK  = "mrk-9a7c5e3b1f8d46a2b0e4c6f8a2d9b157"
	canadaMRK = "mrk-1e5b9d3f7a2c48e6b4d0f2a8c6e9b371"
	nordicMRK = "mrk-6f0a2c4e8b1d47f9a3e5c7b9d1f3a852"
)

// keyEvent is the KeyEvent of a customer managed AWS_KMS key keyID in region,
// created by creator in a call logged in that same region; edits adjust it.
func keyEvent(eventName, eventID string, at time.Time, region, keyID string, creator events.Creator, edits ...func(*events.KeyEvent)) *events.KeyEvent {
	k := &events.KeyEvent{
		EventID:     eventID,
		EventName:   eventName,
		EventTime:   at,
		EventRegion: region,
		KeyARN:      "arn:aws:kms:" + region + ":" + account + ":key/" + keyID,
		KeyID:       keyID,
		Region:      region,
		Account:     account,
		Partition:   "aws",
		KeyManager:  events.KeyManagerCustomer,
		Origin:      "AWS_KMS",
		Creator:     creator,
	}
	for _, edit := range edits {
		edit(k)
	}
	return k
}

// replicaOf makes k a replica of the primary key with k's key id in region.
func replicaOf(primaryRegion string) func(*events.KeyEvent) {
	return func(k *events.KeyEvent) {
		k.MultiRegionKeyType = events.MultiRegionReplica
		k.PrimaryKeyARN = "arn:aws:kms:" + primaryRegion + ":" + account + ":key/" + k.KeyID
	}
}

// loggedIn sets the region the call was logged in, for ReplicateKey.
func loggedIn(region string) func(*events.KeyEvent) {
	return func(k *events.KeyEvent) { k.EventRegion = region }
}

// withTags sets the request tags from key/value pairs.
func withTags(kv ...string) func(*events.KeyEvent) {
	return func(k *events.KeyEvent) {
		for i := 0; i+1 < len(kv); i += 2 {
			k.RequestTags = append(k.RequestTags, events.Tag{Key: kv[i], Value: kv[i+1]})
		}
	}
}

func utc(year int, month time.Month, day, hour, minute, second int) time.Time {
	return time.Date(year, month, day, hour, minute, second, 0, time.UTC)
}

// decodeCase is one fixture and what decoding it must give.
type decodeCase struct {
	scenario string
	want     events.Decoded
	// wantErr is nil, events.ErrNotJSON, events.ErrMalformed or
	// events.ErrInconsistent.
	wantErr error
	// wantMalformed is the *MalformedError expected with ErrMalformed.
	wantMalformed *events.MalformedError
	// wantInconsistent is the *InconsistentError expected with
	// ErrInconsistent.
	wantInconsistent *events.InconsistentError
	// wantErrText is a part the error message must contain, if set.
	wantErrText string
}

func tagged(k *events.KeyEvent) events.Decoded {
	return events.Decoded{Kind: events.KindTag, EventID: k.EventID, EventName: k.EventName, Key: k}
}

// replicaSkipped is the KindSkip of the CreateKey that KMS logs in the
// region of replica k.
func replicaSkipped(k *events.KeyEvent) events.Decoded {
	return events.Decoded{
		Kind: events.KindSkip,
		Reason: "replica key " + k.KeyARN + ": a CreateKey of a REPLICA is the one KMS logs in the replica's region for a ReplicateKey call; " +
			"the replica is tagged from that ReplicateKey event, logged in the primary's region, which names the creator",
		EventID:   k.EventID,
		EventName: k.EventName,
		Key:       k,
	}
}

// unread is the Decoded returned with an error, naming k's event and k.
func unread(k *events.KeyEvent) events.Decoded {
	return events.Decoded{EventID: k.EventID, EventName: k.EventName, Key: k}
}

// unreadChange is the Decoded returned with an error, naming c's event and c.
func unreadChange(c *events.TagChange) events.Decoded {
	return events.Decoded{EventID: c.EventID, EventName: c.EventName, Change: c}
}

// inconsistent is the *InconsistentError of eventName: field's value against
// other's otherValue.
func inconsistent(eventName, field, value, other, otherValue string) *events.InconsistentError {
	return &events.InconsistentError{EventName: eventName, Field: field, Value: value, Other: other, OtherValue: otherValue}
}

// inAccount puts the key of k in account.
func inAccount(account string) func(*events.KeyEvent) {
	return func(k *events.KeyEvent) {
		k.Account = account
		k.KeyARN = strings.Replace(k.KeyARN, ":111122223333:", ":"+account+":", 1)
	}
}

// tagChange is the TagChange of alice's TagResource or UntagResource at
// 2024-12-09T10:11:12Z on key keyID in region us-east-1 of acct.
func tagChange(eventName, eventID, acct, keyID string, edit func(*events.TagChange)) *events.TagChange {
	c := &events.TagChange{
		EventID: eventID, EventName: eventName, EventTime: utc(2024, 12, 9, 10, 11, 12),
		KeyARN: "arn:aws:kms:us-east-1:" + acct + ":key/" + keyID, KeyID: keyID,
		Region: "us-east-1", Account: acct, Partition: "aws",
		Actor: alice,
	}
	if edit != nil {
		edit(c)
	}
	return c
}

const (
	otherAccount = "444455556666"
	aliceKey     = "3f8e1c2a-9b7d-4e61-8c5a-2d4f6b8e0a13"
)

func TestDecode(t *testing.T) {
	replicaByAWS := keyEvent(events.EventNameCreateKey, "a22fd49f-4010-4dc9-bd6f-48bbcb4fd66f", utc(2024, 12, 2, 15, 21, 9),
		"eu-west-1", ordersMRK, events.Creator{Type: events.IdentityAWSService, InvokedBy: "kms.amazonaws.com"}, replicaOf("us-east-1"))
	awsManaged := keyEvent(events.EventNameCreateKey, "358f0e29-6117-4745-9fdc-fe1f37af586d", utc(2024, 10, 1, 5, 12, 27),
		"us-east-1", "8e2b5d7f-1a9c-4f36-b4e8-6d3a9c1f5b72", events.Creator{
			Type:         events.IdentityAssumedRole,
			PrincipalARN: "arn:aws:sts::111122223333:assumed-role/app-writer/i-0a1b2c3d4e5f60718",
			PrincipalID:  "AROAYXPCD7EXAMPLEA9PW:i-0a1b2c3d4e5f60718",
			AccountID:    account,
			IssuerARN:    "arn:aws:iam::111122223333:role/app-writer",
			InvokedBy:    "s3.amazonaws.com",
		}, func(k *events.KeyEvent) { k.KeyManager = events.KeyManagerAWS })

	tests := []decodeCase{
		{
			scenario: "createkey_iamuser",
			want: tagged(keyEvent(events.EventNameCreateKey, "255f79a8-b08b-43c9-a679-f60d27831ae3", utc(2024, 1, 9, 18, 52, 34),
				"us-east-1", "3f8e1c2a-9b7d-4e61-8c5a-2d4f6b8e0a13", alice)),
		},
		{
			scenario: "createkey_assumedrole",
			want: tagged(keyEvent(events.EventNameCreateKey, "dad46e3f-b88b-46e3-9d13-7154cfa2a76f", utc(2024, 2, 14, 9, 3, 17),
				"eu-west-1", "7a2d9e4b-1c6f-4b83-a5e7-9f0c3d2b6e81", events.Creator{
					Type:         events.IdentityAssumedRole,
					PrincipalARN: "arn:aws:sts::111122223333:assumed-role/PlatformKeyAdmin/ci-deploy-4821",
					PrincipalID:  "AROAYXPCD7EXAMPLE7KQ2:ci-deploy-4821",
					AccountID:    account,
					IssuerARN:    "arn:aws:iam::111122223333:role/PlatformKeyAdmin",
				})),
		},
		{
			scenario: "createkey_federateduser",
			want: tagged(keyEvent(events.EventNameCreateKey, "b798a5d1-641e-4418-8289-dc762d249621", utc(2024, 3, 2, 22, 15, 48),
				"us-west-2", "c51b8f07-6e3a-49d2-b8c4-1e7a5f9d2c36", events.Creator{
					Type:         events.IdentityFederatedUser,
					PrincipalARN: "arn:aws:sts::111122223333:federated-user/bob",
					PrincipalID:  "111122223333:bob",
					AccountID:    account,
					IssuerARN:    "arn:aws:iam::111122223333:user/federation-broker",
				})),
		},
		{
			scenario: "createkey_root",
			want: tagged(keyEvent(events.EventNameCreateKey, "95dc0a1b-37ce-4a82-b63c-74962f21aff5", utc(2024, 1, 22, 7, 41, 5),
				"us-east-1", "0e9d4a6c-2b8f-4c17-9e3d-6a1f5b7c8d92", events.Creator{
					Type:         events.IdentityRoot,
					PrincipalARN: "arn:aws:iam::111122223333:root",
					PrincipalID:  account,
					AccountID:    account,
				})),
		},
		{
			scenario: "createkey_awsservice",
			want: tagged(keyEvent(events.EventNameCreateKey, "703bb638-3798-4c2f-a60f-9a8736759b61", utc(2024, 4, 11, 13, 27, 56),
				"us-east-2", "5b3c7e1d-8a4f-4d29-b6e0-3c9a2f7d1e58", events.Creator{
					Type:      events.IdentityAWSService,
					InvokedBy: "servicecatalog.amazonaws.com",
				})),
		},
		{
			scenario: "createkey_identitycenter_assumedrole",
			want: tagged(keyEvent(events.EventNameCreateKey, "bf55a671-8169-4412-aaab-99feac000915", utc(2024, 5, 6, 16, 44, 9),
				"eu-central-1", "e84f2a9c-3d1b-4f76-a0c8-7b5e9d3f2a14", events.Creator{
					Type:         events.IdentityAssumedRole,
					PrincipalARN: "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_AdministratorAccess_5f1c9b2e7d3a4c86/carol@example.com",
					PrincipalID:  "AROAYXPCD7EXAMPLES5SO:carol@example.com",
					AccountID:    account,
					IssuerARN:    "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/eu-central-1/AWSReservedSSO_AdministratorAccess_5f1c9b2e7d3a4c86",
				})),
		},
		{
			scenario: "createkey_identitycenter_user",
			want: tagged(keyEvent(events.EventNameCreateKey, "c716679e-b440-4faf-9ab6-bbd02ded242f", utc(2024, 6, 18, 11, 9, 31),
				"us-east-1", "2c7e5a1f-4b9d-4e38-96a2-8d1f3c5e7b09", events.Creator{
					Type:              events.IdentityIdentityCenterUser,
					AccountID:         account,
					IdentityStoreUser: "arn:aws:identitystore::111122223333:identitystore/d-9067c1a2b3/user/94a8e4d8-b0c1-70f6-3e2d-1c5b7a9f0e42",
				})),
		},
		{
			scenario: "createkey_cloudformation",
			want: tagged(keyEvent(events.EventNameCreateKey, "dad9a22f-e9b0-4be2-9cbd-acc44e621ebd", utc(2024, 7, 3, 8, 20, 14),
				"eu-west-1", "9d1a6f3e-7c2b-48e5-b1d4-5e8a2c6f9b37", events.Creator{
					Type:         events.IdentityAssumedRole,
					PrincipalARN: "arn:aws:sts::111122223333:assumed-role/cfn-deployer/AWSCloudFormation",
					PrincipalID:  "AROAYXPCD7EXAMPLEC4FN:AWSCloudFormation",
					AccountID:    account,
					IssuerARN:    "arn:aws:iam::111122223333:role/cfn-deployer",
					InvokedBy:    "cloudformation.amazonaws.com",
				}, withTags("aws:cloudformation:stack-name", "payments", "team", "payments"))),
		},
		{
			scenario: "createkey_with_tags",
			want: tagged(keyEvent(events.EventNameCreateKey, "85ce452d-8547-4ecd-aba3-88eced00f873", utc(2024, 8, 27, 19, 58, 2),
				"us-east-1", "46e8b2d1-5f3a-4c97-8e1b-2a9d7c4f6e53", events.Creator{
					Type:         events.IdentityAssumedRole,
					PrincipalARN: "arn:aws:sts::111122223333:assumed-role/PlatformKeyAdmin/dave",
					PrincipalID:  "AROAYXPCD7EXAMPLE7KQ2:dave",
					AccountID:    account,
					IssuerARN:    "arn:aws:iam::111122223333:role/PlatformKeyAdmin",
				}, withTags("owner", "dave@example.com", "cost-center", "cc-4410", "data-classification", "confidential"))),
		},
		{
			scenario: "createkey_external_origin",
			want: tagged(keyEvent(events.EventNameCreateKey, "27a495b7-719c-42b9-80be-95b308b132fe", utc(2024, 9, 9, 14, 31, 40),
				"us-west-2", "b7f3d9a2-6e1c-4a58-9d2b-8c4e1f7a3d65", alice, func(k *events.KeyEvent) { k.Origin = "EXTERNAL" })),
		},
		{
			scenario: "createkey_old_account_field",
			want: tagged(keyEvent(events.EventNameCreateKey, "01d02ac9-1fdf-4da5-a419-57cbfd88cd8a", utc(2020, 11, 18, 1, 29, 18),
				"ap-southeast-2", "1d6a8c4e-3f2b-4e97-a5c1-9b7e2d4f8a30", alice)),
		},
		{
			scenario: "createkey_numeric_creation_date",
			want: tagged(keyEvent(events.EventNameCreateKey, "6aba82db-94b7-46aa-bfcd-d992434cfb02", utc(2024, 11, 7, 22, 14, 36),
				"us-east-1", "c2e4a6b8-d0f2-4416-8a3c-5e7b9d1f3a5c", alice)),
		},
		{
			scenario: "createkey_aws_managed",
			want: events.Decoded{
				Kind:      events.KindSkip,
				Reason:    "AWS managed key " + awsManaged.KeyARN + ": its tags are managed by AWS",
				EventID:   awsManaged.EventID,
				EventName: events.EventNameCreateKey,
				Key:       awsManaged,
			},
		},
		{
			scenario: "createkey_failed_call",
			want: events.Decoded{
				Kind:      events.KindFailedCall,
				Reason:    "CreateKey failed with AccessDeniedException: no key was created",
				EventID:   "64ff4c1a-9c74-4844-bc69-500db92312dd",
				EventName: events.EventNameCreateKey,
			},
		},
		{
			scenario: "createkey_replica_by_aws",
			want:     replicaSkipped(replicaByAWS),
		},
		{
			// A REPLICA is skipped whoever userIdentity says made it: here
			// an IAM user, which the record may claim but did not make it.
			scenario: "createkey_replica_by_person",
			want: replicaSkipped(keyEvent(events.EventNameCreateKey, "d106ee61-9439-44b5-a6f3-e89b5475ec61", utc(2024, 12, 3, 2, 48, 55),
				"ap-northeast-1", tokyoMRK, alice, replicaOf("us-east-1"))),
		},
		{
			// ... or just an account id and the calling service.
			scenario: "createkey_replica_account_only",
			want: replicaSkipped(keyEvent(events.EventNameCreateKey, "5f8799fc-5b99-4d3b-904b-b7dad3bf6653", utc(2024, 12, 2, 15, 21, 9),
				"eu-west-1", ordersMRK, events.Creator{AccountID: account, InvokedBy: "kms.amazonaws.com"}, replicaOf("us-east-1"))),
		},
		{
			scenario:      "createkey_missing_arn",
			want:          events.Decoded{EventID: "7e40f2de-841e-439c-aeff-385286347882", EventName: events.EventNameCreateKey},
			wantErr:       events.ErrMalformed,
			wantMalformed: &events.MalformedError{EventName: events.EventNameCreateKey, Field: "responseElements.keyMetadata.arn", Reason: "missing"},
			wantErrText:   "malformed CreateKey event: responseElements.keyMetadata.arn: missing",
		},
		{
			scenario: "createkey_bad_arn",
			want:     events.Decoded{EventID: "e4d1c4e8-70ac-485a-b344-122fca113642", EventName: events.EventNameCreateKey},
			wantErr:  events.ErrMalformed,
			wantMalformed: &events.MalformedError{EventName: events.EventNameCreateKey, Field: "responseElements.keyMetadata.arn",
				Reason: `"arn:aws:kms:us-east-1:111122223333:alias/orders" names resource "alias/orders", not key/<key-id>`},
		},
		{
			scenario:      "createkey_missing_event_id",
			want:          events.Decoded{EventID: "2833daac-4df5-4a1e-9af3-00685a6be91b", EventName: events.EventNameCreateKey},
			wantErr:       events.ErrMalformed,
			wantMalformed: &events.MalformedError{EventName: events.EventNameCreateKey, Field: "eventID", Reason: "missing"},
		},
		{
			scenario:      "createkey_bad_event_time",
			want:          events.Decoded{EventID: "7728b420-df09-4bf9-96d8-8865ea24f505", EventName: events.EventNameCreateKey},
			wantErr:       events.ErrMalformed,
			wantMalformed: &events.MalformedError{EventName: events.EventNameCreateKey, Field: "eventTime", Reason: `"Nov 5, 2024, 12:07:45 PM" is not RFC 3339`},
		},
		{
			scenario:      "createkey_null_response",
			want:          events.Decoded{EventID: "6a891e10-ceae-43c8-825a-ac232a002369", EventName: events.EventNameCreateKey},
			wantErr:       events.ErrMalformed,
			wantMalformed: &events.MalformedError{EventName: events.EventNameCreateKey, Field: "responseElements", Reason: "missing, and no errorCode says the call failed"},
		},
		{
			scenario:      "createkey_missing_key_metadata",
			want:          events.Decoded{EventID: "6713cc20-4d1e-4687-99c7-3c257cab3453", EventName: events.EventNameCreateKey},
			wantErr:       events.ErrMalformed,
			wantMalformed: &events.MalformedError{EventName: events.EventNameCreateKey, Field: "responseElements.keyMetadata", Reason: "missing"},
		},
		{
			scenario: "createkey_keyid_mismatch",
			want:     events.Decoded{EventID: "486b8842-5836-4a4a-ae81-4cb6d70f89cf", EventName: events.EventNameCreateKey},
			wantErr:  events.ErrMalformed,
			wantMalformed: &events.MalformedError{EventName: events.EventNameCreateKey, Field: "responseElements.keyMetadata.keyId",
				Reason: `"0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0" is not the key id "7b9d1f3a-5c7e-4092-a4b6-c8d0e2f4a6b8" of the key ARN`},
		},
		{
			// keyMetadata's account in the older spelling, aWSAccountId.
			scenario: "createkey_account_mismatch",
			want: unread(keyEvent(events.EventNameCreateKey, "59a9697e-6041-4f34-acfc-f983915d25d3", utc(2020, 11, 18, 2, 11, 40),
				"us-east-1", "8f0b2d4e-6a1c-4e35-97b9-d1f3a5c7e9b2", alice)),
			wantErr: events.ErrInconsistent,
			wantInconsistent: inconsistent(events.EventNameCreateKey, "recipientAccountId", account,
				"responseElements.keyMetadata.aWSAccountId", otherAccount),
		},
		{
			scenario: "createkey_keymetadata_account_mismatch",
			want: unread(keyEvent(events.EventNameCreateKey, "650b3bbf-d8bd-49d4-bd18-c5852711e5a8", utc(2024, 1, 9, 18, 52, 34),
				"us-east-1", "275fed1a-1016-45c7-9826-b437fcd48b69", alice)),
			wantErr: events.ErrInconsistent,
			wantInconsistent: inconsistent(events.EventNameCreateKey, "recipientAccountId", account,
				"responseElements.keyMetadata.AWSAccountId", otherAccount),
			wantErrText: `inconsistent CreateKey event: recipientAccountId "111122223333" but responseElements.keyMetadata.AWSAccountId "444455556666"`,
		},
		{
			scenario: "createkey_envelope_account_mismatch",
			want: unread(keyEvent(events.EventNameCreateKey, "6626f02e-e40b-4635-9cc5-04453b028764", utc(2024, 1, 9, 18, 52, 34),
				"us-east-1", "3cb72f68-9a43-4409-82a5-6479d4e0370f", alice)),
			wantErr:          events.ErrInconsistent,
			wantInconsistent: inconsistent(events.EventNameCreateKey, "envelope account", otherAccount, "recipientAccountId", account),
			wantErrText:      `inconsistent CreateKey event: envelope account "444455556666" but recipientAccountId "111122223333"`,
		},
		{
			scenario: "createkey_recipient_account_mismatch",
			want: unread(keyEvent(events.EventNameCreateKey, "1d7b3c5c-b187-461e-a5f6-bd105c410bb2", utc(2024, 1, 9, 18, 52, 34),
				"us-east-1", "ef397766-4d9d-4ce6-a7c9-ccccf1803347", alice)),
			wantErr: events.ErrInconsistent,
			wantInconsistent: inconsistent(events.EventNameCreateKey, "recipientAccountId", otherAccount,
				"responseElements.keyMetadata.arn (account)", account),
		},
		{
			// No recipientAccountId: the envelope's account is compared
			// with the key ARN's.
			scenario: "createkey_key_in_other_account",
			want: unread(keyEvent(events.EventNameCreateKey, "b388a2a6-93f8-40d0-8380-fc42b826fe3c", utc(2024, 1, 9, 18, 52, 34),
				"us-east-1", "0d1c8e2c-9211-4308-953e-15efa11a70b2", alice, inAccount(otherAccount))),
			wantErr: events.ErrInconsistent,
			wantInconsistent: inconsistent(events.EventNameCreateKey, "envelope account", account,
				"responseElements.keyMetadata.arn (account)", otherAccount),
			wantErrText: `inconsistent CreateKey event: envelope account "111122223333" but responseElements.keyMetadata.arn (account) "444455556666"`,
		},
		{
			// awsRegion and the key ARN disagree; so do the envelope and
			// awsRegion, but the record is compared first.
			scenario: "createkey_region_mismatch",
			want: unread(keyEvent(events.EventNameCreateKey, "954f934b-daca-456c-813d-1199b1ae89c6", utc(2024, 11, 8, 6, 40, 11),
				"us-east-1", "e1f3a5c7-b9d1-4e3f-9a5b-7c9e1f3a5b7d", alice, loggedIn("us-west-2"))),
			wantErr: events.ErrInconsistent,
			wantInconsistent: inconsistent(events.EventNameCreateKey, "awsRegion", "us-west-2",
				"responseElements.keyMetadata.arn (region)", "us-east-1"),
		},
		{
			scenario: "createkey_arn_region_mismatch",
			want: unread(keyEvent(events.EventNameCreateKey, "3dcf99aa-9962-4efc-ac13-39586f8758b7", utc(2024, 1, 9, 18, 52, 34),
				"us-east-1", "15e5ab1c-4d32-425f-a6c5-7e5607f03eab", alice, loggedIn("us-west-2"))),
			wantErr: events.ErrInconsistent,
			wantInconsistent: inconsistent(events.EventNameCreateKey, "awsRegion", "us-west-2",
				"responseElements.keyMetadata.arn (region)", "us-east-1"),
		},
		{
			scenario: "createkey_envelope_region_mismatch",
			want: unread(keyEvent(events.EventNameCreateKey, "216bf215-1f75-4e4a-986a-b01770dce423", utc(2024, 1, 9, 18, 52, 34),
				"us-east-1", "697d46a8-345b-4400-9cac-b67f0b9941ca", alice)),
			wantErr:          events.ErrInconsistent,
			wantInconsistent: inconsistent(events.EventNameCreateKey, "envelope region", "eu-west-1", "awsRegion", "us-east-1"),
		},
		{
			scenario:      "createkey_missing_aws_region",
			want:          events.Decoded{EventID: "adcff170-c052-40d6-99c1-cc30e272f276", EventName: events.EventNameCreateKey},
			wantErr:       events.ErrMalformed,
			wantMalformed: &events.MalformedError{EventName: events.EventNameCreateKey, Field: "awsRegion", Reason: "missing"},
		},
		{
			scenario: "createkey_envelope_missing_account",
			want:     events.Decoded{EventID: "35920f29-5258-430b-a399-2bb6045b47b2", EventName: events.EventNameCreateKey},
			wantErr:  events.ErrMalformed,
			wantMalformed: &events.MalformedError{EventName: events.EventNameCreateKey, Field: "envelope account",
				Reason: "missing from the EventBridge event"},
		},
		{
			scenario:    "createkey_wrong_type",
			want:        events.Decoded{EventID: "d3b64d3d-b6b1-4981-9c47-7f0225a76f01", EventName: events.EventNameCreateKey},
			wantErr:     events.ErrNotJSON,
			wantErrText: "CreateKey responseElements: not JSON of the expected shape: json: cannot unmarshal string",
		},
		{
			scenario: "replicatekey",
			want: tagged(keyEvent(events.EventNameReplicateKey, "e5e3d28b-9ae6-4016-a58c-5db9f604ef99", utc(2024, 12, 2, 15, 21, 8),
				"eu-west-1", ordersMRK, ciDeploy5307, loggedIn("us-east-1"), replicaOf("us-east-1"),
				withTags("team", "orders", "environment", "production"))),
		},
		{
			scenario: "replicatekey_no_replica_region",
			want: tagged(keyEvent(events.EventNameReplicateKey, "b61845e0-eaae-4ceb-b5c9-4c961552578c", utc(2024, 12, 2, 15, 30, 0),
				"eu-west-1", ordersMRK, ciDeploy5307, loggedIn("us-east-1"), replicaOf("us-east-1"),
				withTags("team", "orders", "environment", "production"))),
		},
		{
			scenario: "replicatekey_primary_from_resources",
			want: tagged(keyEvent(events.EventNameReplicateKey, "961570ad-a961-4592-bc87-9914f9920d6b", utc(2024, 12, 4, 20, 1, 27),
				"ca-central-1", canadaMRK, ciDeploy5307, loggedIn("us-west-2"), replicaOf("us-west-2"))),
		},
		{
			scenario: "replicatekey_primary_from_keyid",
			want: tagged(keyEvent(events.EventNameReplicateKey, "24d10f05-1f50-4cf7-914d-654b3718451c", utc(2024, 12, 5, 7, 45, 10),
				"eu-north-1", nordicMRK, ciDeploy5307, loggedIn("eu-west-1"), replicaOf("eu-west-1"))),
		},
		{
			scenario: "replicatekey_failed_call",
			want: events.Decoded{
				Kind:      events.KindFailedCall,
				Reason:    "ReplicateKey failed with AlreadyExistsException: no key was created",
				EventID:   "71624d5c-e8c0-4a3a-bdba-b4334d079bdc",
				EventName: events.EventNameReplicateKey,
			},
		},
		{
			scenario: "replicatekey_missing_replica_arn",
			want:     events.Decoded{EventID: "126c8ceb-3e44-47d8-a58f-d81cac75d35f", EventName: events.EventNameReplicateKey},
			wantErr:  events.ErrMalformed,
			wantMalformed: &events.MalformedError{EventName: events.EventNameReplicateKey, Field: "responseElements.replicaKeyMetadata.arn",
				Reason: "missing"},
			wantErrText: "malformed ReplicateKey event: responseElements.replicaKeyMetadata.arn: missing",
		},
		{
			scenario: "replicatekey_region_mismatch",
			want: unread(keyEvent(events.EventNameReplicateKey, "bfdb43b6-e160-4d46-94fe-9fba67f60816", utc(2024, 12, 2, 15, 30, 0),
				"eu-west-1", ordersMRK, ciDeploy5307, loggedIn("us-east-1"), replicaOf("us-east-1"),
				withTags("team", "orders", "environment", "production"))),
			wantErr: events.ErrInconsistent,
			wantInconsistent: inconsistent(events.EventNameReplicateKey, "requestParameters.replicaRegion", "eu-west-2",
				"responseElements.replicaKeyMetadata.arn (region)", "eu-west-1"),
		},
		{
			// awsRegion is the primary's region, not the replica's.
			scenario: "replicatekey_primary_region_mismatch",
			want: unread(keyEvent(events.EventNameReplicateKey, "dd837420-0fe9-466a-9009-88bab3acd352", utc(2024, 12, 2, 15, 21, 8),
				"eu-west-1", ordersMRK, ciDeploy5307, loggedIn("us-east-1"), replicaOf("us-west-2"),
				withTags("team", "orders", "environment", "production"))),
			wantErr: events.ErrInconsistent,
			wantInconsistent: inconsistent(events.EventNameReplicateKey, "awsRegion", "us-east-1",
				"responseElements.replicaKeyMetadata.multiRegionConfiguration.primaryKey.arn (region)", "us-west-2"),
		},
		{
			// The envelope of a ReplicateKey is in the primary's region too.
			scenario: "replicatekey_envelope_in_replica_region",
			want: unread(keyEvent(events.EventNameReplicateKey, "88275bae-6f21-444b-9ae2-cead3d4f1e1c", utc(2024, 12, 2, 15, 21, 8),
				"eu-west-1", ordersMRK, ciDeploy5307, loggedIn("us-east-1"), replicaOf("us-east-1"),
				withTags("team", "orders", "environment", "production"))),
			wantErr:          events.ErrInconsistent,
			wantInconsistent: inconsistent(events.EventNameReplicateKey, "envelope region", "eu-west-1", "awsRegion", "us-east-1"),
		},
		{
			scenario: "replicatekey_replica_account_mismatch",
			want: unread(keyEvent(events.EventNameReplicateKey, "75317c29-a82e-45b3-91b3-00677c2cc55a", utc(2024, 12, 2, 15, 21, 8),
				"eu-west-1", ordersMRK, ciDeploy5307, loggedIn("us-east-1"), replicaOf("us-east-1"), inAccount(otherAccount),
				withTags("team", "orders", "environment", "production"))),
			wantErr: events.ErrInconsistent,
			wantInconsistent: inconsistent(events.EventNameReplicateKey, "recipientAccountId", account,
				"responseElements.replicaKeyMetadata.arn (account)", otherAccount),
		},
		{
			scenario: "unrelated_kms_event",
			want: events.Decoded{
				Kind:      events.KindIgnore,
				Reason:    `eventName "EnableKeyRotation" of aws.kms "AWS API Call via CloudTrail" is not handled (want CreateKey or ReplicateKey or TagResource or UntagResource)`,
				EventID:   "2c9051d1-b43d-4bd0-8f83-3d80aef2074c",
				EventName: "EnableKeyRotation",
			},
		},
		{
			scenario: "tagresource",
			want: events.Decoded{
				Kind: events.KindTagChange, EventID: "2c9051d1-b43d-4bd0-8f83-3d80aef2074c", EventName: "TagResource",
				Change: &events.TagChange{
					EventID: "2c9051d1-b43d-4bd0-8f83-3d80aef2074c", EventName: "TagResource", EventTime: utc(2024, 12, 9, 10, 11, 12),
					KeyARN: "arn:aws:kms:us-east-1:111122223333:key/3f8e1c2a-9b7d-4e61-8c5a-2d4f6b8e0a13", KeyID: "3f8e1c2a-9b7d-4e61-8c5a-2d4f6b8e0a13",
					Region: "us-east-1", Account: "111122223333", Partition: "aws",
					Actor: alice,
					Set:   []events.Tag{{Key: "owner", Value: "alice"}},
				},
			},
		},
		{
			// The key, in resources and keyId, is in another account.
			scenario: "tagresource_account_mismatch",
			want: unreadChange(tagChange(events.EventNameTagResource, "b18415b8-daef-46f5-8671-81e5f56923cf", otherAccount,
				"bf495105-0847-4e83-8aad-a0bde83cf8cd", func(c *events.TagChange) { c.Set = []events.Tag{{Key: "owner", Value: "alice"}} })),
			wantErr:          events.ErrInconsistent,
			wantInconsistent: inconsistent(events.EventNameTagResource, "recipientAccountId", account, "resources[0].ARN (account)", otherAccount),
		},
		{
			scenario: "tagresource_keyid_region_mismatch",
			want: unreadChange(tagChange(events.EventNameTagResource, "aa2242d8-7ef9-40e9-9bd2-3b702a33dc0b", account,
				aliceKey, func(c *events.TagChange) { c.Set = []events.Tag{{Key: "owner", Value: "alice"}} })),
			wantErr:          events.ErrInconsistent,
			wantInconsistent: inconsistent(events.EventNameTagResource, "awsRegion", "us-east-1", "requestParameters.keyId (region)", "eu-west-1"),
		},
		{
			scenario:      "tagresource_missing_aws_region",
			want:          events.Decoded{EventID: "ca7e7af3-a4ca-4251-bd73-b9878d735581", EventName: events.EventNameTagResource},
			wantErr:       events.ErrMalformed,
			wantMalformed: &events.MalformedError{EventName: events.EventNameTagResource, Field: "awsRegion", Reason: "missing"},
		},
		{
			// keyId is a bare key id; the key ARN is resources[0].ARN.
			scenario: "untagresource_envelope_account_mismatch",
			want: unreadChange(tagChange(events.EventNameUntagResource, "f5bbda68-0286-4b80-bd2a-a993098a49c4", account,
				aliceKey, func(c *events.TagChange) { c.Removed = []string{"CreatedBy", "owner"} })),
			wantErr:          events.ErrInconsistent,
			wantInconsistent: inconsistent(events.EventNameUntagResource, "envelope account", otherAccount, "recipientAccountId", account),
		},
		{
			scenario: "untagresource",
			want: events.Decoded{
				Kind: events.KindTagChange, EventID: "a7d3c2b1-6e5f-4a89-b0c1-d2e3f4a5b6c7", EventName: "UntagResource",
				Change: &events.TagChange{
					EventID: "a7d3c2b1-6e5f-4a89-b0c1-d2e3f4a5b6c7", EventName: "UntagResource", EventTime: utc(2024, 12, 9, 10, 11, 12),
					KeyARN: "arn:aws:kms:us-east-1:111122223333:key/3f8e1c2a-9b7d-4e61-8c5a-2d4f6b8e0a13", KeyID: "3f8e1c2a-9b7d-4e61-8c5a-2d4f6b8e0a13",
					Region: "us-east-1", Account: "111122223333", Partition: "aws",
					Actor:   alice,
					Removed: []string{"CreatedBy", "owner"},
				},
			},
		},
		{
			scenario: "other_source",
			want: events.Decoded{
				Kind:    events.KindIgnore,
				Reason:  `source "aws.ec2" is not handled (want aws.kms)`,
				EventID: "88619ce1-c8dd-4259-9851-21520eda38c3",
			},
		},
		{
			scenario: "kms_service_event",
			want: events.Decoded{
				Kind:    events.KindIgnore,
				Reason:  `detail-type "KMS CMK Rotation" of source aws.kms is not handled (want "AWS API Call via CloudTrail")`,
				EventID: "06c42241-4b80-468b-9ce6-793febf12430",
			},
		},
		{
			scenario:    "malformed_json",
			wantErr:     events.ErrNotJSON,
			wantErrText: "EventBridge event: not JSON of the expected shape: invalid character",
		},
		{
			scenario:    "json_null",
			wantErr:     events.ErrNotJSON,
			wantErrText: "EventBridge event: not JSON of the expected shape: got null, want an object",
		},
		{
			scenario:    "detail_not_object",
			want:        events.Decoded{EventID: "379cffa7-878d-4994-b709-b3a37e7c95a7"},
			wantErr:     events.ErrNotJSON,
			wantErrText: "detail of EventBridge event 379cffa7-878d-4994-b709-b3a37e7c95a7: not JSON of the expected shape: json: cannot unmarshal string",
		},
	}
	for _, tc := range tests {
		t.Run(tc.scenario, func(t *testing.T) {
			got, err := events.Decode(readFixture(t, tc.scenario))
			checkDecoded(t, got, err, tc)
		})
	}
}

func TestDecodeRecord(t *testing.T) {
	tests := []decodeCase{
		{
			scenario: "record_createkey_lookupevents",
			want: tagged(keyEvent(events.EventNameCreateKey, "f73f1f5a-d284-434b-a16d-a30943b56067", utc(2025, 1, 13, 12, 34, 56),
				"eu-west-1", "b1d3f5a7-c9e1-4f23-8b5d-7f9a1c3e5b7d", events.Creator{
					Type:         events.IdentityAssumedRole,
					PrincipalARN: "arn:aws:sts::111122223333:assumed-role/PlatformKeyAdmin/backfill-check",
					PrincipalID:  "AROAYXPCD7EXAMPLE7KQ2:backfill-check",
					AccountID:    account,
					IssuerARN:    "arn:aws:iam::111122223333:role/PlatformKeyAdmin",
				}, withTags("team", "reports"))),
		},
		{
			scenario: "record_other_service",
			want: events.Decoded{
				Kind:      events.KindIgnore,
				Reason:    `eventSource "s3.amazonaws.com" is not handled (want kms.amazonaws.com)`,
				EventID:   "89cb44f6-1a78-42af-97e8-9b114781b3d3",
				EventName: "CreateBucket",
			},
		},
		{
			scenario:    "record_not_object",
			wantErr:     events.ErrNotJSON,
			wantErrText: "CloudTrail record: not JSON of the expected shape: json: cannot unmarshal array",
		},
	}
	for _, tc := range tests {
		t.Run(tc.scenario, func(t *testing.T) {
			got, err := events.DecodeRecord(readFixture(t, tc.scenario))
			checkDecoded(t, got, err, tc)
		})
	}
}

// TestDecodeRecordMatchesDecode checks that the detail of every KMS API call
// fixture decodes the same on its own as inside its EventBridge event, but
// for the envelope: when Decode's error is about the envelope's account or
// region, the record on its own must decode without error to the same key or
// change.
func TestDecodeRecordMatchesDecode(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var compared, envelopeOnly int
	for _, path := range paths {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var env struct {
			Source     string          `json:"source"`
			DetailType string          `json:"detail-type"`
			Detail     json.RawMessage `json:"detail"`
		}
		if json.Unmarshal(raw, &env) != nil || env.Source != events.SourceKMS || env.DetailType != events.DetailTypeAPICall ||
			len(env.Detail) == 0 || env.Detail[0] != '{' {
			continue
		}
		compared++
		fromEvent, eventErr := events.Decode(raw)
		fromRecord, recordErr := events.DecodeRecord(env.Detail)
		if aboutEnvelope(eventErr) {
			envelopeOnly++
		}
		t.Run(strings.TrimSuffix(filepath.Base(path), ".json"), func(t *testing.T) {
			if aboutEnvelope(eventErr) {
				if recordErr != nil {
					t.Fatalf("DecodeRecord error: got %v, want none, as Decode's %v is about the envelope", recordErr, eventErr)
				}
				if fromEvent.Key == nil && fromEvent.Change == nil {
					return // the envelope was not usable: the record was not read
				}
				if !reflect.DeepEqual(fromRecord.Key, fromEvent.Key) || !reflect.DeepEqual(fromRecord.Change, fromEvent.Change) {
					t.Errorf("DecodeRecord:\ngot  %s\nwant the key or change %s", formatDecoded(fromRecord), formatDecoded(fromEvent))
				}
				return
			}
			if errClass(recordErr) != errClass(eventErr) {
				t.Fatalf("DecodeRecord error: got %v, want the same kind as Decode's %v", recordErr, eventErr)
			}
			var eventMalformed, recordMalformed *events.MalformedError
			if errors.As(eventErr, &eventMalformed) {
				errors.As(recordErr, &recordMalformed)
				if !reflect.DeepEqual(recordMalformed, eventMalformed) {
					t.Errorf("DecodeRecord malformed: got %+v, want %+v", recordMalformed, eventMalformed)
				}
			}
			var eventInconsistent, recordInconsistent *events.InconsistentError
			if errors.As(eventErr, &eventInconsistent) {
				errors.As(recordErr, &recordInconsistent)
				if !reflect.DeepEqual(recordInconsistent, eventInconsistent) {
					t.Errorf("DecodeRecord inconsistent: got %+v, want %+v", recordInconsistent, eventInconsistent)
				}
			}
			if fromRecord.Kind != fromEvent.Kind || fromRecord.EventName != fromEvent.EventName {
				t.Errorf("DecodeRecord: got kind %v name %q, want kind %v name %q",
					fromRecord.Kind, fromRecord.EventName, fromEvent.Kind, fromEvent.EventName)
			}
			if !reflect.DeepEqual(fromRecord.Key, fromEvent.Key) {
				t.Errorf("DecodeRecord key:\ngot  %s\nwant %s", formatKey(fromRecord.Key), formatKey(fromEvent.Key))
			}
			if !reflect.DeepEqual(fromRecord.Change, fromEvent.Change) {
				t.Errorf("DecodeRecord change:\ngot  %s\nwant %s", formatDecoded(fromRecord), formatDecoded(fromEvent))
			}
		})
	}
	if compared < 20 {
		t.Errorf("compared %d fixtures, want at least 20", compared)
	}
	if envelopeOnly < 5 {
		t.Errorf("got %d fixtures whose envelope alone is wrong, want at least 5", envelopeOnly)
	}
}

// aboutEnvelope reports whether err is a *MalformedError or an
// *InconsistentError about a field of the EventBridge envelope.
func aboutEnvelope(err error) bool {
	var m *events.MalformedError
	var i *events.InconsistentError
	switch {
	case errors.As(err, &m):
		return strings.HasPrefix(m.Field, "envelope ")
	case errors.As(err, &i):
		return strings.HasPrefix(i.Field, "envelope ")
	}
	return false
}

// TestSampleEvents checks that every sample event in the repository's
// events folder (the `sam local invoke` samples) decodes without error, as
// consistent events, to the kind its README states.
func TestSampleEvents(t *testing.T) {
	wantKind := map[string]events.Kind{
		"aws_managed_key.json":            events.KindSkip,
		"createkey_assumedrole.json":      events.KindTag,
		"createkey_cloudformation.json":   events.KindTag,
		"createkey_external.json":         events.KindTag,
		"createkey_iamuser.json":          events.KindTag,
		"createkey_identitycenter.json":   events.KindTag,
		"createkey_pending_deletion.json": events.KindTag,
		"createkey_with_tags.json":        events.KindTag,
		"failed_call.json":                events.KindFailedCall,
		"replicatekey.json":               events.KindTag,
		"unrelated_kms_event.json":        events.KindTagChange,
	}
	paths, err := filepath.Glob(filepath.Join("..", "..", "events", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("got no ../../events/*.json samples, want some")
	}
	for _, path := range paths {
		name := filepath.Base(path)
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			d, err := events.Decode(raw)
			if err != nil {
				t.Fatalf("Decode: got error %v, want none", err)
			}
			if want, ok := wantKind[name]; ok && d.Kind != want {
				t.Errorf("Decode: got kind %v (%s), want %v", d.Kind, d.Reason, want)
			}
		})
	}
}

// TestKeyMetadataAccountSpelling checks both spellings of the account field
// of KeyMetadata, and that creationDate is kept as CloudTrail wrote it.
func TestKeyMetadataAccountSpelling(t *testing.T) {
	tests := []struct {
		scenario         string
		wantAccount      string
		wantCreationDate events.DisplayDate
	}{
		{scenario: "createkey_iamuser", wantAccount: account, wantCreationDate: "Jan 9, 2024, 6:52:34 PM"},
		{scenario: "createkey_old_account_field", wantAccount: account, wantCreationDate: "Nov 18, 2020, 1:29:18 AM"},
		{scenario: "createkey_account_mismatch", wantAccount: "444455556666", wantCreationDate: "Nov 18, 2020, 2:11:40 AM"},
		{scenario: "createkey_numeric_creation_date", wantAccount: account, wantCreationDate: "1731017676.0"},
	}
	for _, tc := range tests {
		t.Run(tc.scenario, func(t *testing.T) {
			var env struct {
				Detail struct {
					ResponseElements struct {
						KeyMetadata events.KeyMetadata `json:"keyMetadata"`
					} `json:"responseElements"`
				} `json:"detail"`
			}
			if err := json.Unmarshal(readFixture(t, tc.scenario), &env); err != nil {
				t.Fatalf("unmarshal: %v", err)
			}
			md := env.Detail.ResponseElements.KeyMetadata
			if md.Account() != tc.wantAccount {
				t.Errorf("Account(): got %q, want %q", md.Account(), tc.wantAccount)
			}
			if md.CreationDate != tc.wantCreationDate {
				t.Errorf("CreationDate: got %q, want %q", md.CreationDate, tc.wantCreationDate)
			}
		})
	}
}

func BenchmarkDecodeCreateKey(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("testdata", "createkey_assumedrole.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		d, err := events.Decode(raw)
		if err != nil || d.Kind != events.KindTag {
			b.Fatalf("Decode: got kind %v, error %v, want tag and no error", d.Kind, err)
		}
	}
}

func readFixture(t testing.TB, scenario string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", scenario+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// checkDecoded compares one result with tc.
func checkDecoded(t *testing.T, got events.Decoded, err error, tc decodeCase) {
	t.Helper()
	switch {
	case tc.wantErr == nil && err != nil:
		t.Fatalf("error: got %v, want none", err)
	case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
		t.Fatalf("error: got %v, want one matching %v", err, tc.wantErr)
	}
	if tc.wantMalformed != nil {
		var m *events.MalformedError
		if !errors.As(err, &m) {
			t.Fatalf("error: got %T %v, want *events.MalformedError", err, err)
		}
		if *m != *tc.wantMalformed {
			t.Errorf("malformed error: got %+v, want %+v", *m, *tc.wantMalformed)
		}
	}
	if tc.wantInconsistent != nil {
		var e *events.InconsistentError
		if !errors.As(err, &e) {
			t.Fatalf("error: got %T %v, want *events.InconsistentError", err, err)
		}
		if *e != *tc.wantInconsistent {
			t.Errorf("inconsistent error: got %+v, want %+v", *e, *tc.wantInconsistent)
		}
		if errors.Is(err, events.ErrMalformed) || errors.Is(err, events.ErrNotJSON) {
			t.Errorf("inconsistent error %v: got it matching ErrMalformed or ErrNotJSON, want neither", err)
		}
	}
	if tc.wantErrText != "" && !strings.Contains(err.Error(), tc.wantErrText) {
		t.Errorf("error text: got %q, want it to contain %q", err.Error(), tc.wantErrText)
	}
	if !reflect.DeepEqual(got, tc.want) {
		t.Errorf("Decoded:\ngot  %s\nwant %s", formatDecoded(got), formatDecoded(tc.want))
	}
}

// errClass names which sentinel err matches, for comparing errors.
func errClass(err error) string {
	switch {
	case err == nil:
		return "none"
	case errors.Is(err, events.ErrNotJSON):
		return "not JSON"
	case errors.Is(err, events.ErrMalformed):
		return "malformed"
	case errors.Is(err, events.ErrInconsistent):
		return "inconsistent"
	default:
		return "other"
	}
}

func formatDecoded(d events.Decoded) string {
	change := "<nil>"
	if d.Change != nil {
		change = fmt.Sprintf("%+v", *d.Change)
	}
	return fmt.Sprintf("{Kind:%v Reason:%q EventID:%s EventName:%s Key:%s Change:%s}", d.Kind, d.Reason, d.EventID, d.EventName, formatKey(d.Key), change)
}

func formatKey(k *events.KeyEvent) string {
	if k == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%+v", *k)
}
