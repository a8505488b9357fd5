package events

import (
	"fmt"
	"time"
)

// TagResourceRequest is requestParameters of a TagResource record (the
// request parameters of TagResource in the AWS KMS API Reference, as
// CloudTrail records them):
//
//	{"keyId": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-...",
//	 "tags": [{"tagKey": "CreatedBy", "tagValue": "arn:aws:iam::111122223333:user/mallory"}]}
//
// keyId may be a key id or a key ARN; the record's resources list names the
// key's ARN either way.
type TagResourceRequest struct {
	// KeyID is the key id or ARN the caller passed.
	KeyID string `json:"keyId"`
	// Tags are the tags the call wrote.
	Tags []RequestTag `json:"tags"`
}

// parseTagResource decodes a TagResource record into a TagChange.
func parseTagResource(rec *Record, env *origin) (Decoded, error) {
	d := Decoded{EventID: rec.EventID, EventName: rec.EventName}
	if rec.ErrorCode != "" {
		return rec.failedTagChange(), nil
	}
	var req TagResourceRequest
	if err := unmarshalPart("TagResource requestParameters", rec.RequestParameters, &req); err != nil {
		return d, err
	}
	ch, err := rec.newTagChange(req.KeyID, env)
	if ch != nil {
		ch.Set = toTags(req.Tags)
		d.Change = ch
	}
	if err != nil {
		return d, err
	}
	d.Kind = KindTagChange
	return d, nil
}

// failedTagChange is the no-op result for a tag change that failed.
func (r *Record) failedTagChange() Decoded {
	return Decoded{
		Kind:      KindFailedCall,
		Reason:    fmt.Sprintf("%s failed with %s: no tag changed", r.EventName, r.ErrorCode),
		EventID:   r.EventID,
		EventName: r.EventName,
	}
}

// newTagChange checks what every tag change needs and returns it for the
// key the record names: the AWS::KMS::Key in resources, else keyId when it
// is an ARN. The accounts (recipientAccountId, the key ARN's, keyId's when
// it is an ARN) and the regions (awsRegion, the key ARN's, keyId's) must
// agree, and with env's; when they do not, the error is an
// *InconsistentError returned with the TagChange as read.
func (r *Record) newTagChange(keyID string, env *origin) (*TagChange, error) {
	if r.EventID == "" {
		return nil, r.malformed("eventID", "missing")
	}
	at, err := time.Parse(time.RFC3339, r.EventTime)
	if err != nil {
		return nil, r.malformed("eventTime", fmt.Sprintf("%q is not RFC 3339", r.EventTime))
	}
	if r.AWSRegion == "" {
		return nil, r.malformed("awsRegion", "missing")
	}
	field, keyARN := "requestParameters.keyId", keyID
	for i, res := range r.Resources {
		if res.Type == "AWS::KMS::Key" && res.ARN != "" {
			field, keyARN = fmt.Sprintf("resources[%d].ARN", i), res.ARN
			break
		}
	}
	if keyARN == "" {
		return nil, r.malformed(field, "missing")
	}
	a, id, reason := parseKeyARN(keyARN)
	if reason != "" {
		return nil, r.malformed(field, reason)
	}
	ch := &TagChange{
		EventID:   r.EventID,
		EventName: r.EventName,
		EventTime: at.UTC(),
		KeyARN:    keyARN,
		KeyID:     id,
		Region:    a.Region,
		Account:   a.AccountID,
		Partition: a.Partition,
		Actor:     r.UserIdentity.Creator(),
	}
	s := r.scope()
	s.keyARN(field, a.AccountID, a.Region)
	if field != "requestParameters.keyId" {
		s.requestKeyARN("requestParameters.keyId", keyID)
	}
	return ch, r.consistent(s, env)
}
