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
	// wantErr is nil, events.ErrNotJSON or events.ErrMalformed.
	wantErr error
	// wantMalformed is the *MalformedError expected with ErrMalformed.
	wantMalformed *events.MalformedError
	// wantErrText is a part the error message must contain, if set.
	wantErrText string
}

func tagged(k *events.KeyEvent) events.Decoded {
	return events.Decoded{Kind: events.KindTag, EventID: k.EventID, EventName: k.EventName, Key: k}
}

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
			want: events.Decoded{
				Kind:      events.KindSkip,
				Reason:    "replica key " + replicaByAWS.KeyARN + " was created by kms.amazonaws.com for a ReplicateKey call; the replica is tagged from its ReplicateKey event, which names the creator",
				EventID:   replicaByAWS.EventID,
				EventName: events.EventNameCreateKey,
				Key:       replicaByAWS,
			},
		},
		{
			scenario: "createkey_replica_by_person",
			want: tagged(keyEvent(events.EventNameCreateKey, "d106ee61-9439-44b5-a6f3-e89b5475ec61", utc(2024, 12, 3, 2, 48, 55),
				"ap-northeast-1", tokyoMRK, alice, replicaOf("us-east-1"))),
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
			scenario: "createkey_account_mismatch",
			want:     events.Decoded{EventID: "59a9697e-6041-4f34-acfc-f983915d25d3", EventName: events.EventNameCreateKey},
			wantErr:  events.ErrMalformed,
			wantMalformed: &events.MalformedError{EventName: events.EventNameCreateKey, Field: "responseElements.keyMetadata.AWSAccountId",
				Reason: `"444455556666" is not the account "111122223333" of the key ARN`},
		},
		{
			scenario: "createkey_region_mismatch",
			want:     events.Decoded{EventID: "954f934b-daca-456c-813d-1199b1ae89c6", EventName: events.EventNameCreateKey},
			wantErr:  events.ErrMalformed,
			wantMalformed: &events.MalformedError{EventName: events.EventNameCreateKey, Field: "awsRegion",
				Reason: `"us-west-2" is not the region "us-east-1" of responseElements.keyMetadata.arn`},
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
			want:     events.Decoded{EventID: "bfdb43b6-e160-4d46-94fe-9fba67f60816", EventName: events.EventNameReplicateKey},
			wantErr:  events.ErrMalformed,
			wantMalformed: &events.MalformedError{EventName: events.EventNameReplicateKey, Field: "requestParameters.replicaRegion",
				Reason: `"eu-west-2" is not the region "eu-west-1" of responseElements.replicaKeyMetadata.arn`},
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
					Actor: events.Creator{Type: "IAMUser", PrincipalARN: "arn:aws:iam::111122223333:user/alice", PrincipalID: "AIDAYXPCD7EXAMPLE4U2Q", AccountID: "111122223333"},
					Set:   []events.Tag{{Key: "owner", Value: "alice"}},
				},
			},
		},
		{
			scenario: "untagresource",
			want: events.Decoded{
				Kind: events.KindTagChange, EventID: "a7d3c2b1-6e5f-4a89-b0c1-d2e3f4a5b6c7", EventName: "UntagResource",
				Change: &events.TagChange{
					EventID: "a7d3c2b1-6e5f-4a89-b0c1-d2e3f4a5b6c7", EventName: "UntagResource", EventTime: utc(2024, 12, 9, 10, 11, 12),
					KeyARN: "arn:aws:kms:us-east-1:111122223333:key/3f8e1c2a-9b7d-4e61-8c5a-2d4f6b8e0a13", KeyID: "3f8e1c2a-9b7d-4e61-8c5a-2d4f6b8e0a13",
					Region: "us-east-1", Account: "111122223333", Partition: "aws",
					Actor:   events.Creator{Type: "IAMUser", PrincipalARN: "arn:aws:iam::111122223333:user/alice", PrincipalID: "AIDAYXPCD7EXAMPLE4U2Q", AccountID: "111122223333"},
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
// fixture decodes the same on its own as inside its EventBridge event.
func TestDecodeRecordMatchesDecode(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var compared int
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
		t.Run(strings.TrimSuffix(filepath.Base(path), ".json"), func(t *testing.T) {
			fromEvent, eventErr := events.Decode(raw)
			fromRecord, recordErr := events.DecodeRecord(env.Detail)
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
			if fromRecord.Kind != fromEvent.Kind || fromRecord.EventName != fromEvent.EventName {
				t.Errorf("DecodeRecord: got kind %v name %q, want kind %v name %q",
					fromRecord.Kind, fromRecord.EventName, fromEvent.Kind, fromEvent.EventName)
			}
			if !reflect.DeepEqual(fromRecord.Key, fromEvent.Key) {
				t.Errorf("DecodeRecord key:\ngot  %s\nwant %s", formatKey(fromRecord.Key), formatKey(fromEvent.Key))
			}
		})
	}
	if compared < 20 {
		t.Errorf("compared %d fixtures, want at least 20", compared)
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
	default:
		return "other"
	}
}

func formatDecoded(d events.Decoded) string {
	return fmt.Sprintf("{Kind:%v Reason:%q EventID:%s EventName:%s Key:%s}", d.Kind, d.Reason, d.EventID, d.EventName, formatKey(d.Key))
}

func formatKey(k *events.KeyEvent) string {
	if k == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%+v", *k)
}
