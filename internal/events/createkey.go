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
// responseElements.keyMetadata.
func parseCreateKey(rec *Record) (Decoded, error) {
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

	const arnField = "responseElements.keyMetadata.arn"
	key, err := rec.newKeyEvent(arnField, md.ARN, md)
	if err != nil {
		return d, err
	}
	if awsRegion := rec.AWSRegion; awsRegion != "" && awsRegion != key.Region {
		return d, rec.malformed("awsRegion", fmt.Sprintf("%q is not the region %q of %s", awsRegion, key.Region, arnField))
	}
	key.RequestTags = toTags(req.Tags)
	if key.MultiRegionKeyType == MultiRegionReplica {
		primary := md.MultiRegionConfiguration.PrimaryKey.ARN
		if primary != "" {
			if _, _, reason := parseKeyARN(primary); reason != "" {
				return d, rec.malformed("responseElements.keyMetadata.multiRegionConfiguration.primaryKey.arn", reason)
			}
		}
		key.PrimaryKeyARN = primary
	}
	d.Key = key

	switch {
	case key.KeyManager == KeyManagerAWS:
		d.Kind = KindSkip
		d.Reason = fmt.Sprintf("AWS managed key %s: its tags are managed by AWS", key.KeyARN)
	case key.MultiRegionKeyType == MultiRegionReplica && rec.UserIdentity.Type == IdentityAWSService:
		d.Kind = KindSkip
		d.Reason = fmt.Sprintf("replica key %s was created by %s for a ReplicateKey call; the replica is tagged from its ReplicateKey event, which names the creator", key.KeyARN, invokedByOrAWS(rec.UserIdentity))
	default:
		d.Kind = KindTag
	}
	return d, nil
}

// invokedByOrAWS names the service an AWSService identity stands for.
func invokedByOrAWS(u UserIdentity) string {
	if u.InvokedBy != "" {
		return u.InvokedBy
	}
	return "AWS"
}
