package events

// UntagResourceRequest is requestParameters of an UntagResource record (the
// request parameters of UntagResource in the AWS KMS API Reference, as
// CloudTrail records them):
//
//	{"keyId": "1234abcd-12ab-34cd-56ef-1234567890ab", "tagKeys": ["CreatedBy"]}
type UntagResourceRequest struct {
	// KeyID is the key id or ARN the caller passed.
	KeyID string `json:"keyId"`
	// TagKeys are the keys of the tags the call removed.
	TagKeys []string `json:"tagKeys"`
}

// parseUntagResource decodes an UntagResource record into a TagChange.
func parseUntagResource(rec *Record, env *origin) (Decoded, error) {
	d := Decoded{EventID: rec.EventID, EventName: rec.EventName}
	if rec.ErrorCode != "" {
		return rec.failedTagChange(), nil
	}
	var req UntagResourceRequest
	if err := unmarshalPart("UntagResource requestParameters", rec.RequestParameters, &req); err != nil {
		return d, err
	}
	ch, err := rec.newTagChange(req.KeyID, env)
	if ch != nil {
		ch.Removed = req.TagKeys
		d.Change = ch
	}
	if err != nil {
		return d, err
	}
	d.Kind = KindTagChange
	return d, nil
}
