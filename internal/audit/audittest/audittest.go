// Package audittest helps tests of the audit: CloudTrail records of key
// creations as the event history holds them, and routers that give each
// account its own CloudTrail stand-in behind one endpoint, as AWS gives
// each account its own event history.
package audittest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
)

// Principal is a principal of the records.
type Principal struct {
	// Type is the userIdentity type: IAMUser or AssumedRole.
	Type string
	// ARN is the principal: arn:aws:iam::ACCOUNT:user/NAME, or for an
	// AssumedRole the role, arn:aws:iam::ACCOUNT:role/NAME.
	ARN string
}

// User is the IAM user name of account.
func User(account, name string) Principal {
	return Principal{Type: "IAMUser", ARN: "arn:aws:iam::" + account + ":user/" + name}
}

// Role is a session of the role name of account.
func Role(account, name string) Principal {
	return Principal{Type: "AssumedRole", ARN: "arn:aws:iam::" + account + ":role/" + name}
}

func (p Principal) identity(account string) map[string]any {
	name := p.ARN[strings.LastIndex(p.ARN, "/")+1:]
	if p.Type == "AssumedRole" {
		return map[string]any{"type": "AssumedRole", "principalId": "AROAEXAMPLE:" + name,
			"arn": "arn:aws:sts::" + account + ":assumed-role/" + name + "/session", "accountId": account,
			"sessionContext": map[string]any{"sessionIssuer": map[string]any{"type": "Role", "arn": p.ARN, "accountId": account, "userName": name}}}
	}
	return map[string]any{"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": p.ARN, "accountId": account, "userName": name}
}

// parts returns the region, account and key ID of a key ARN.
func parts(keyARN string) (region, account, keyID string) {
	f := strings.SplitN(keyARN, ":", 6)
	if len(f) < 6 {
		panic("audittest: not a key ARN: " + keyARN)
	}
	return f[3], f[4], keyARN[strings.LastIndex(keyARN, "/")+1:]
}

// CreateKeyRecord is the CloudTrail record of by's CreateKey of keyARN at
// at, which must be within tagger.CreationTolerance of the key's
// CreationDate (the key's real creation time for a key just made).
func CreateKeyRecord(eventID, keyARN string, by Principal, at time.Time) []byte {
	region, account, keyID := parts(keyARN)
	return marshal(map[string]any{
		"eventVersion": "1.09", "userIdentity": by.identity(account),
		"eventTime": at.UTC().Format(time.RFC3339), "eventSource": "kms.amazonaws.com", "eventName": "CreateKey", "awsRegion": region,
		"sourceIPAddress": "192.0.2.10", "userAgent": "aws-cli/2.15.0",
		"requestParameters": map[string]any{"keySpec": "SYMMETRIC_DEFAULT", "keyUsage": "ENCRYPT_DECRYPT"},
		"responseElements": map[string]any{"keyMetadata": map[string]any{
			"AWSAccountId": account, "keyId": keyID, "arn": keyARN, "keyState": "Enabled", "keyManager": "CUSTOMER",
			"origin": "AWS_KMS", "keySpec": "SYMMETRIC_DEFAULT", "multiRegion": false,
		}},
		"requestID": "e0b4ad8e-6a1f-4a55-9b1b-7b0c1c8e9f10", "eventID": eventID, "readOnly": false,
		"resources": []map[string]string{{"accountId": account, "type": "AWS::KMS::Key", "ARN": keyARN}},
		"eventType": "AwsApiCall", "managementEvent": true, "recipientAccountId": account, "eventCategory": "Management",
	})
}

// ReplicaCreateKeyRecord is the CreateKey that KMS logs in a replica's
// region for a ReplicateKey call, made by KMS itself.
func ReplicaCreateKeyRecord(eventID, replicaARN, primaryARN string, at time.Time) []byte {
	region, account, keyID := parts(replicaARN)
	primaryRegion, _, _ := parts(primaryARN)
	return marshal(map[string]any{
		"eventVersion": "1.09", "userIdentity": map[string]any{"type": "AWSService", "invokedBy": "kms.amazonaws.com"},
		"eventTime": at.UTC().Format(time.RFC3339), "eventSource": "kms.amazonaws.com", "eventName": "CreateKey", "awsRegion": region,
		"requestParameters": map[string]any{"keySpec": "SYMMETRIC_DEFAULT", "multiRegion": true},
		"responseElements": map[string]any{"keyMetadata": map[string]any{
			"AWSAccountId": account, "keyId": keyID, "arn": replicaARN, "keyState": "Creating", "keyManager": "CUSTOMER",
			"origin": "AWS_KMS", "multiRegion": true,
			"multiRegionConfiguration": map[string]any{"multiRegionKeyType": "REPLICA", "primaryKey": map[string]any{"arn": primaryARN, "region": primaryRegion}},
		}},
		"eventID": eventID, "readOnly": false, "eventType": "AwsServiceEvent", "managementEvent": true,
		"resources":          []map[string]string{{"accountId": account, "type": "AWS::KMS::Key", "ARN": replicaARN}},
		"recipientAccountId": account, "eventCategory": "Management",
	})
}

// ReplicateKeyRecord is by's ReplicateKey of primaryARN into the region of
// replicaARN, logged in the primary's region at at.
func ReplicateKeyRecord(eventID, primaryARN, replicaARN string, by Principal, at time.Time) []byte {
	primaryRegion, account, _ := parts(primaryARN)
	replicaRegion, _, replicaID := parts(replicaARN)
	return marshal(map[string]any{
		"eventVersion": "1.09", "userIdentity": by.identity(account),
		"eventTime": at.UTC().Format(time.RFC3339), "eventSource": "kms.amazonaws.com", "eventName": "ReplicateKey", "awsRegion": primaryRegion,
		"requestParameters": map[string]any{"keyId": primaryARN, "replicaRegion": replicaRegion},
		"responseElements": map[string]any{"replicaKeyMetadata": map[string]any{
			"AWSAccountId": account, "keyId": replicaID, "arn": replicaARN, "keyManager": "CUSTOMER", "keyState": "Creating",
			"origin": "AWS_KMS", "multiRegion": true,
			"multiRegionConfiguration": map[string]any{"multiRegionKeyType": "REPLICA", "primaryKey": map[string]any{"arn": primaryARN, "region": primaryRegion}},
		}},
		"eventID": eventID, "readOnly": false, "eventType": "AwsApiCall", "managementEvent": true,
		"resources":          []map[string]string{{"accountId": account, "type": "AWS::KMS::Key", "ARN": primaryARN}},
		"recipientAccountId": account, "eventCategory": "Management",
	})
}

func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// RegionOf returns the region of a record made here.
func RegionOf(record []byte) string {
	var h struct {
		Region string `json:"awsRegion"`
	}
	_ = json.Unmarshal(record, &h)
	return h.Region
}

// TrailRouter is an http.Handler in front of the CloudTrail stand-ins of
// several accounts, as localaws.AccountRouter is for KMS: it sends each
// request to the stand-in of the account whose access key signed it, which
// Resolver tells (moto, for its users' keys and its assumed roles'). So
// each account has its own event history and its own LookupEvents quota per
// region, as in AWS. A key of an account without a stand-in gets the 400
// UnrecognizedClientException.
type TrailRouter struct {
	Resolver localaws.AccountResolver
	Trails   map[string]*localaws.CloudTrail
}

// ServeHTTP implements http.Handler.
func (tr *TrailRouter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key, err := AccessKeyID(r)
	if err != nil {
		localaws.WriteKMSError(w, http.StatusBadRequest, "UnrecognizedClientException", "audittest: "+err.Error())
		return
	}
	account, err := tr.Resolver.AccountOf(r.Context(), key)
	if err != nil {
		localaws.WriteKMSError(w, http.StatusInternalServerError, "InternalFailure", "audittest: "+err.Error())
		return
	}
	ct, ok := tr.Trails[account]
	if !ok {
		localaws.WriteKMSError(w, http.StatusBadRequest, "UnrecognizedClientException",
			fmt.Sprintf("The security token included in the request is invalid. (audittest: access key %s is of account %s, which has no CloudTrail stand-in)", key, account))
		return
	}
	ct.ServeHTTP(w, r)
}

// AccessKeyID returns the access key id of a SigV4-signed request.
func AccessKeyID(r *http.Request) (string, error) {
	auth := r.Header.Get("Authorization")
	_, rest, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return "", fmt.Errorf("request has no SigV4 Authorization header")
	}
	cred, _, _ := strings.Cut(rest, ",")
	key, _, ok := strings.Cut(strings.TrimSpace(cred), "/")
	if !ok || key == "" {
		return "", fmt.Errorf("credential %q is not AKID/DATE/REGION/SERVICE/aws4_request", cred)
	}
	return key, nil
}
