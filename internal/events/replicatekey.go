package events

import (
	"encoding/json"
	"fmt"
	"strings"
)

// ReplicateKeyRequest is requestParameters of a ReplicateKey record (the
// request parameters of ReplicateKey in the AWS KMS API Reference, as
// CloudTrail records them):
//
//	{
//	  "keyId": "arn:aws:kms:us-east-1:111122223333:key/mrk-...",
//	  "replicaRegion": "eu-west-1",
//	  "description": "payments data key (eu-west-1)",
//	  "bypassPolicyLockoutSafetyCheck": false,
//	  "tags": [{"tagKey": "team", "tagValue": "payments"}]
//	}
type ReplicateKeyRequest struct {
	// KeyID is the primary key as the caller named it: key id or key ARN.
	KeyID string `json:"keyId"`
	// ReplicaRegion is the region of the new replica.
	ReplicaRegion string `json:"replicaRegion"`
	// Description is the requested description of the replica.
	Description string `json:"description"`
	// Tags are the tags the caller passed for the replica, in order.
	Tags []RequestTag `json:"tags"`
	// BypassPolicyLockoutSafetyCheck is the request flag of that name.
	BypassPolicyLockoutSafetyCheck bool `json:"bypassPolicyLockoutSafetyCheck"`
	// Policy is the requested key policy, raw.
	Policy json.RawMessage `json:"policy"`
}

// ReplicateKeyResponse is responseElements of a ReplicateKey record (the
// response elements of ReplicateKey in the AWS KMS API Reference):
//
//	{
//	  "replicaKeyMetadata": {"arn": "arn:aws:kms:eu-west-1:111122223333:key/mrk-...", "multiRegionConfiguration": {...}, ...},
//	  "replicaPolicy": "{\n  \"Version\" : \"2012-10-17\", ...}",
//	  "replicaTags": [{"tagKey": "team", "tagValue": "payments"}]
//	}
type ReplicateKeyResponse struct {
	// ReplicaKeyMetadata describes the new replica.
	ReplicaKeyMetadata *KeyMetadata `json:"replicaKeyMetadata"`
	// ReplicaPolicy is the replica's key policy, raw.
	ReplicaPolicy json.RawMessage `json:"replicaPolicy"`
	// ReplicaTags are the replica's tags as KMS returned them.
	ReplicaTags []RequestTag `json:"replicaTags"`
}

// parseReplicateKey decodes a ReplicateKey record. The record is logged in
// the primary key's region, but the key to tag is the replica:
// responseElements.replicaKeyMetadata.arn, in requestParameters.replicaRegion.
// So the regions that must agree, and with env's, are awsRegion and those of
// the primary key ARNs (requestParameters.keyId when it is an ARN, and the
// primary found by primaryKeyARN); the replica ARN's region is compared with
// replicaRegion alone. Every account must agree: recipientAccountId, the
// replica ARN's, replicaKeyMetadata's AWSAccountId and the primary ARNs'.
func parseReplicateKey(rec *Record, env *origin) (Decoded, error) {
	d := Decoded{EventID: rec.EventID, EventName: rec.EventName}
	if rec.ErrorCode != "" {
		return rec.failedCall(), nil
	}

	var req ReplicateKeyRequest
	if err := unmarshalPart("ReplicateKey requestParameters", rec.RequestParameters, &req); err != nil {
		return d, err
	}
	var resp ReplicateKeyResponse
	if err := unmarshalPart("ReplicateKey responseElements", rec.ResponseElements, &resp); err != nil {
		return d, err
	}
	if isNull(rec.ResponseElements) {
		return d, rec.malformed("responseElements", "missing, and no errorCode says the call failed")
	}

	const (
		mdField  = "responseElements.replicaKeyMetadata"
		arnField = mdField + ".arn"
	)
	md := resp.ReplicaKeyMetadata
	var replicaARN string
	if md != nil {
		replicaARN = md.ARN
	}
	key, err := rec.newKeyEvent(arnField, replicaARN, md)
	if err != nil {
		return d, err
	}
	primaryField, primary, err := primaryKeyARN(rec, &req, md)
	if err != nil {
		return d, err
	}
	key.PrimaryKeyARN = primary
	if key.MultiRegionKeyType == "" {
		key.MultiRegionKeyType = MultiRegionReplica
	}
	key.RequestTags = toTags(req.Tags)
	d.Key = key

	s := rec.scope()
	s.keyARNAccount(arnField, key.Account)
	s.metadataAccount(mdField, md)
	s.requestKeyARN("requestParameters.keyId", req.KeyID)
	if primary != "" && primary != req.KeyID {
		a, _, _ := parseKeyARN(primary) // primaryKeyARN parsed it
		s.keyARN(primaryField, a.AccountID, a.Region)
	}
	s.pairs = append(s.pairs, [2]claim{{"requestParameters.replicaRegion", req.ReplicaRegion}, {arnField + " (region)", key.Region}})
	if err := rec.consistent(s, env); err != nil {
		return d, err
	}

	if key.KeyManager == KeyManagerAWS {
		d.Kind = KindSkip
		d.Reason = fmt.Sprintf("AWS managed key %s: its tags are managed by AWS", key.KeyARN)
		return d, nil
	}
	d.Kind = KindTag
	return d, nil
}

// primaryKeyARN finds the primary key of a ReplicateKey, and the field that
// names it: the replica's multiRegionConfiguration, else the first
// resources[] key ARN in the region the call was logged in, else
// requestParameters.keyId when it is a key ARN. It returns "" when none
// says.
func primaryKeyARN(rec *Record, req *ReplicateKeyRequest, md *KeyMetadata) (field, keyARN string, err error) {
	if md != nil && md.MultiRegionConfiguration.PrimaryKey.ARN != "" {
		const field = "responseElements.replicaKeyMetadata.multiRegionConfiguration.primaryKey.arn"
		primary := md.MultiRegionConfiguration.PrimaryKey.ARN
		if _, _, reason := parseKeyARN(primary); reason != "" {
			return "", "", rec.malformed(field, reason)
		}
		return field, primary, nil
	}
	for i, res := range rec.Resources {
		if a, _, reason := parseKeyARN(res.ARN); reason == "" && a.Region == rec.AWSRegion {
			return fmt.Sprintf("resources[%d].ARN", i), res.ARN, nil
		}
	}
	if strings.HasPrefix(req.KeyID, "arn:") {
		if _, _, reason := parseKeyARN(req.KeyID); reason == "" {
			return "requestParameters.keyId", req.KeyID, nil
		}
	}
	return "", "", nil
}
