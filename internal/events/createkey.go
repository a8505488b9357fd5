package events

import "fmt"

// CreateKeyRequest is requestParameters of a CreateKey record (the request
// parameters of CreateKey in the AWS KMS API Reference, as CloudTrail
// records them), trimmed to the fields this package reads:
//
//	{
//	  "description": "payments data key",
//	  "keySpec": "SYMMETRIC_DEFAULT",
//	  "keyUsage": "ENCRYPT_DECRYPT",
//	  "origin": "AWS_KMS",
//	  "multiRegion": false,
//	  "bypassPolicyLockoutSafetyCheck": false,
//	  "tags": [{"tagKey": "team", "tagValue": "payments"}]
//	}
type CreateKeyRequest struct {
	// Description is the requested description.
	Description string `json:"description"`
	// KeySpec is the requested key spec.
	KeySpec string `json:"keySpec"`
	// KeyUsage is the requested key usage.
	KeyUsage string `json:"keyUsage"`
	// Origin is the requested key material origin.
	Origin string `json:"origin"`
	// MultiRegion is true when a multi-Region primary key was requested.
	MultiRegion bool `json:"multiRegion"`
	// Tags are the tags the caller passed, in order.
	Tags []RequestTag `json:"tags"`
}

// CreateKeyResponse is responseElements of a CreateKey record (the response
// elements of CreateKey in the AWS KMS API Reference):
//
//	{"keyMetadata": {"AWSAccountId": "111122223333", "keyId": "...", "arn": "arn:aws:kms:...", ...}}
type CreateKeyResponse struct {
	// KeyMetadata describes the new key.
	KeyMetadata *KeyMetadata `json:"keyMetadata"`
}

// parseCreateKey decodes a CreateKey record: the key is
// responseElements.keyMetadata. Its accounts (recipientAccountId, the key
// ARN's, keyMetadata's AWSAccountId, a replica's primary key ARN's) and its
// regions (awsRegion, the key ARN's) must agree, and with env's.
//
// A CreateKey of a REPLICA key is the one KMS logs in the replica's region
// for a ReplicateKey call: it is KindSkip whoever userIdentity names, since
// the replica is tagged from the ReplicateKey, logged in the primary's
// region, whose caller is the creator. userIdentity is the event's own
// text, and these records carry various shapes of it (an AWSService, just
// an accountId and invokedBy, or a principal), so it decides nothing here.
func parseCreateKey(rec *Record, env *origin) (Decoded, error) {
	d := Decoded{EventID: rec.EventID, EventName: rec.EventName}
	if rec.ErrorCode != "" {
		return rec.failedCall(), nil
	}

	var req CreateKeyRequest
	if err := unmarshalPart("CreateKey requestParameters", rec.RequestParameters, &req); err != nil {
		return d, err
	}
	var resp CreateKeyResponse
	if err := unmarshalPart("CreateKey responseElements", rec.ResponseElements, &resp); err != nil {
		return d, err
	}
	if isNull(rec.ResponseElements) {
		return d, rec.malformed("responseElements", "missing, and no errorCode says the call failed")
	}
	md := resp.KeyMetadata
	if md == nil {
		return d, rec.malformed("responseElements.keyMetadata", "missing")
	}

	const (
		mdField      = "responseElements.keyMetadata"
		arnField     = mdField + ".arn"
		primaryField = mdField + ".multiRegionConfiguration.primaryKey.arn"
	)
	key, err := rec.newKeyEvent(arnField, md.ARN, md)
	if err != nil {
		return d, err
	}
	s := rec.scope()
	s.keyARN(arnField, key.Account, key.Region)
	s.metadataAccount(mdField, md)
	key.RequestTags = toTags(req.Tags)
	if key.MultiRegionKeyType == MultiRegionReplica {
		primary := md.MultiRegionConfiguration.PrimaryKey.ARN
		if primary != "" {
			a, _, reason := parseKeyARN(primary)
			if reason != "" {
				return d, rec.malformed(primaryField, reason)
			}
			// The primary is in the replica's account, but another region.
			s.keyARNAccount(primaryField, a.AccountID)
		}
		key.PrimaryKeyARN = primary
	}
	d.Key = key
	if err := rec.consistent(s, env); err != nil {
		return d, err
	}

	switch {
	case key.KeyManager == KeyManagerAWS:
		d.Kind = KindSkip
		d.Reason = fmt.Sprintf("AWS managed key %s: its tags are managed by AWS", key.KeyARN)
	case key.MultiRegionKeyType == MultiRegionReplica:
		d.Kind = KindSkip
		d.Reason = fmt.Sprintf("replica key %s: a CreateKey of a REPLICA is the one KMS logs in the replica's region for a ReplicateKey call; the replica is tagged from that ReplicateKey event, logged in the primary's region, which names the creator", key.KeyARN)
	default:
		d.Kind = KindTag
	}
	return d, nil
}
