package events

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
)

// Record is one CloudTrail record: the detail of an EventBridge "AWS API Call
// via CloudTrail" event, or the CloudTrailEvent string of a
// cloudtrail:LookupEvents result. Its shape is that of the CloudTrail record
// contents reference, trimmed to the fields this package reads:
//
//	{
//	  "eventVersion": "1.09",
//	  "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice", ...},
//	  "eventTime": "2024-01-09T18:52:34Z",
//	  "eventSource": "kms.amazonaws.com",
//	  "eventName": "CreateKey",
//	  "awsRegion": "eu-west-1",
//	  "requestParameters": {"keySpec": "SYMMETRIC_DEFAULT", ...},
//	  "responseElements": {"keyMetadata": {...}},
//	  "requestID": "0f6a4b1e-2c3d-4e5f-8a9b-0c1d2e3f4a5b",
//	  "eventID": "5d1f0e3a-7b2c-4d8e-9f60-1a2b3c4d5e6f",
//	  "resources": [{"accountId": "111122223333", "type": "AWS::KMS::Key", "ARN": "arn:aws:kms:eu-west-1:111122223333:key/..."}],
//	  "recipientAccountId": "111122223333"
//	}
//
// requestParameters and responseElements depend on eventName and are kept
// raw, for the eventName's parser to read into its own models (createkey.go,
// replicatekey.go, tagresource.go, untagresource.go); responseElements is
// null when the call failed (errorCode set).
type Record struct {
	// EventVersion is the record format version, e.g. 1.08 or 1.09.
	EventVersion string `json:"eventVersion"`
	// UserIdentity is who made the call.
	UserIdentity UserIdentity `json:"userIdentity"`
	// EventTime is when the call completed, RFC 3339 in UTC.
	EventTime string `json:"eventTime"`
	// EventSource is the service endpoint, e.g. kms.amazonaws.com.
	EventSource string `json:"eventSource"`
	// EventName is the API action, e.g. CreateKey.
	EventName string `json:"eventName"`
	// AWSRegion is the region the call was made to.
	AWSRegion string `json:"awsRegion"`
	// SourceIPAddress is the caller's address, or the calling service.
	SourceIPAddress string `json:"sourceIPAddress"`
	// UserAgent is the caller's agent string.
	UserAgent string `json:"userAgent"`
	// ErrorCode is set when the call failed, e.g. AccessDeniedException.
	ErrorCode string `json:"errorCode"`
	// ErrorMessage describes ErrorCode.
	ErrorMessage string `json:"errorMessage"`
	// RequestParameters are the request's parameters, raw.
	RequestParameters json.RawMessage `json:"requestParameters"`
	// ResponseElements are the response's elements, raw; null on failure.
	ResponseElements json.RawMessage `json:"responseElements"`
	// RequestID is the service's id of the request.
	RequestID string `json:"requestID"`
	// EventID is CloudTrail's unique id of the record.
	EventID string `json:"eventID"`
	// EventType is e.g. AwsApiCall.
	EventType string `json:"eventType"`
	// RecipientAccountID is the account that received the record.
	RecipientAccountID string `json:"recipientAccountId"`
	// Resources are the resources the call acted on.
	Resources []Resource `json:"resources"`
}

// Resource is one entry of a CloudTrail record's resources list:
//
//	{"accountId": "111122223333", "type": "AWS::KMS::Key", "ARN": "arn:aws:kms:us-east-1:111122223333:key/mrk-..."}
type Resource struct {
	// ARN is the resource's ARN.
	ARN string `json:"ARN"`
	// AccountID is the account that owns the resource.
	AccountID string `json:"accountId"`
	// Type is the CloudFormation-style type, e.g. AWS::KMS::Key.
	Type string `json:"type"`
}

// KeyMetadata is the KMS KeyMetadata structure (the KMS API's DescribeKey,
// CreateKey and ReplicateKey responses) as CloudTrail records it in
// responseElements, trimmed to the fields this package reads:
//
//	{
//	  "AWSAccountId": "111122223333",
//	  "keyId": "mrk-8d3c2b1a0f9e4d7c6b5a49382716f5e4",
//	  "arn": "arn:aws:kms:us-east-1:111122223333:key/mrk-8d3c2b1a0f9e4d7c6b5a49382716f5e4",
//	  "creationDate": "Jan 9, 2024, 6:52:34 PM",
//	  "keyState": "Enabled",
//	  "origin": "AWS_KMS",
//	  "keyManager": "CUSTOMER",
//	  "multiRegion": true,
//	  "multiRegionConfiguration": {"multiRegionKeyType": "PRIMARY", "primaryKey": {...}, "replicaKeys": []}
//	}
//
// Older records spell the account field aWSAccountId; both are accepted.
type KeyMetadata struct {
	// AWSAccountID is the account that owns the key, as newer records
	// spell the field; Account reads either spelling.
	AWSAccountID string `json:"AWSAccountId"`
	// OldAWSAccountID is the same field as older records spell it. The two
	// names differ only in case, so encoding/json gives each its exact
	// match.
	OldAWSAccountID string `json:"aWSAccountId"`
	// KeyID is the key id, e.g. a UUID or mrk-... for a multi-Region key.
	KeyID string `json:"keyId"`
	// ARN is the key ARN.
	ARN string `json:"arn"`
	// CreationDate is the creation time as CloudTrail displays it, e.g.
	// "Jan 9, 2024, 6:52:34 PM"; kept as text, never parsed.
	CreationDate DisplayDate `json:"creationDate"`
	// Description is the key's description.
	Description string `json:"description"`
	// KeyUsage is e.g. ENCRYPT_DECRYPT.
	KeyUsage string `json:"keyUsage"`
	// KeySpec is e.g. SYMMETRIC_DEFAULT.
	KeySpec string `json:"keySpec"`
	// KeyState is e.g. Enabled, PendingImport or Creating.
	KeyState string `json:"keyState"`
	// Origin is AWS_KMS, EXTERNAL, AWS_CLOUDHSM or EXTERNAL_KEY_STORE.
	Origin string `json:"origin"`
	// KeyManager is CUSTOMER or AWS.
	KeyManager string `json:"keyManager"`
	// MultiRegion is true for a multi-Region key.
	MultiRegion bool `json:"multiRegion"`
	// MultiRegionConfiguration is set for a multi-Region key.
	MultiRegionConfiguration MultiRegionConfiguration `json:"multiRegionConfiguration"`
}

// Account returns the account field, in whichever spelling the record used.
func (m *KeyMetadata) Account() string {
	if m.AWSAccountID != "" {
		return m.AWSAccountID
	}
	return m.OldAWSAccountID
}

// MultiRegionConfiguration is the KMS MultiRegionConfiguration structure:
//
//	{
//	  "multiRegionKeyType": "REPLICA",
//	  "primaryKey": {"arn": "arn:aws:kms:us-east-1:111122223333:key/mrk-...", "region": "us-east-1"},
//	  "replicaKeys": [{"arn": "arn:aws:kms:eu-west-1:111122223333:key/mrk-...", "region": "eu-west-1"}]
//	}
type MultiRegionConfiguration struct {
	// MultiRegionKeyType is PRIMARY or REPLICA.
	MultiRegionKeyType string `json:"multiRegionKeyType"`
	// PrimaryKey is the primary key of the set.
	PrimaryKey MultiRegionKey `json:"primaryKey"`
	// ReplicaKeys are the replicas of the set.
	ReplicaKeys []MultiRegionKey `json:"replicaKeys"`
}

// MultiRegionKey is the KMS MultiRegionKey structure:
//
//	{"arn": "arn:aws:kms:us-east-1:111122223333:key/mrk-...", "region": "us-east-1"}
type MultiRegionKey struct {
	// ARN is the key ARN.
	ARN string `json:"arn"`
	// Region is the key's region.
	Region string `json:"region"`
}

// DisplayDate is a date kept as the text CloudTrail wrote, e.g.
// "Jan 9, 2024, 6:52:34 PM". A JSON string is kept unquoted; any other JSON
// value (a number of epoch seconds, say) is kept as its literal text, and
// null as "".
type DisplayDate string

// UnmarshalJSON keeps data as text; it fails only on an invalid string.
func (d *DisplayDate) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		*d = DisplayDate(s)
		return nil
	}
	if string(data) == "null" {
		*d = ""
		return nil
	}
	*d = DisplayDate(data)
	return nil
}

// RequestTag is one tag as KMS requests carry it in requestParameters.tags
// (the KMS Tag structure, with CloudTrail's tagKey/tagValue spelling):
//
//	{"tagKey": "team", "tagValue": "payments"}
type RequestTag struct {
	// TagKey is the tag key.
	TagKey string `json:"tagKey"`
	// TagValue is the tag value.
	TagValue string `json:"tagValue"`
}

// toTags converts request tags, keeping their order; nil when there are none.
func toTags(in []RequestTag) []Tag {
	if len(in) == 0 {
		return nil
	}
	out := make([]Tag, len(in))
	for i, t := range in {
		out[i] = Tag{Key: t.TagKey, Value: t.TagValue}
	}
	return out
}

// failedCall is the no-op result for a call that failed (errorCode set).
func (r *Record) failedCall() Decoded {
	return Decoded{
		Kind:      KindFailedCall,
		Reason:    fmt.Sprintf("%s failed with %s: no key was created", r.EventName, r.ErrorCode),
		EventID:   r.EventID,
		EventName: r.EventName,
	}
}

// malformed returns a *MalformedError for field of r.
func (r *Record) malformed(field, reason string) *MalformedError {
	return &MalformedError{EventName: r.EventName, Field: field, Reason: reason}
}

// newKeyEvent checks what every key event needs (eventID, eventTime,
// awsRegion, the key ARN at arnField, md's keyId if any) and returns the
// KeyEvent for the key keyARN names, filled from r and md. md may be nil.
// Whether accounts and regions agree is for the caller's scope to check.
func (r *Record) newKeyEvent(arnField, keyARN string, md *KeyMetadata) (*KeyEvent, error) {
	if r.EventID == "" {
		return nil, r.malformed("eventID", "missing")
	}
	if r.EventTime == "" {
		return nil, r.malformed("eventTime", "missing")
	}
	at, err := time.Parse(time.RFC3339, r.EventTime)
	if err != nil {
		return nil, r.malformed("eventTime", fmt.Sprintf("%q is not RFC 3339", r.EventTime))
	}
	if r.AWSRegion == "" {
		return nil, r.malformed("awsRegion", "missing")
	}
	if keyARN == "" {
		return nil, r.malformed(arnField, "missing")
	}
	a, keyID, reason := parseKeyARN(keyARN)
	if reason != "" {
		return nil, r.malformed(arnField, reason)
	}
	ke := &KeyEvent{
		EventID:     r.EventID,
		EventName:   r.EventName,
		EventTime:   at.UTC(),
		EventRegion: r.AWSRegion,
		KeyARN:      keyARN,
		KeyID:       keyID,
		Region:      a.Region,
		Account:     a.AccountID,
		Partition:   a.Partition,
		Creator:     r.UserIdentity.Creator(),
	}
	if md == nil {
		return ke, nil
	}
	parent := strings.TrimSuffix(arnField, ".arn")
	if md.KeyID != "" && md.KeyID != keyID {
		return nil, r.malformed(parent+".keyId", fmt.Sprintf("%q is not the key id %q of the key ARN", md.KeyID, keyID))
	}
	ke.KeyManager = md.KeyManager
	ke.Origin = md.Origin
	ke.MultiRegionKeyType = md.MultiRegionConfiguration.MultiRegionKeyType
	return ke, nil
}

// parseKeyARN parses s as a KMS key ARN and returns it with its key id. A
// non-empty reason says why s is not a KMS key ARN.
func parseKeyARN(s string) (a arn.ARN, keyID, reason string) {
	a, err := arn.Parse(s)
	switch {
	case err != nil:
		return a, "", fmt.Sprintf("%q is not an ARN: %v", s, err)
	case a.Partition == "":
		return a, "", fmt.Sprintf("%q has no partition", s)
	case a.Service != "kms":
		return a, "", fmt.Sprintf("%q is an ARN of service %q, not kms", s, a.Service)
	case a.Region == "":
		return a, "", fmt.Sprintf("%q has no region", s)
	case a.AccountID == "":
		return a, "", fmt.Sprintf("%q has no account", s)
	case !strings.HasPrefix(a.Resource, "key/"):
		return a, "", fmt.Sprintf("%q names resource %q, not key/<key-id>", s, a.Resource)
	}
	keyID = strings.TrimPrefix(a.Resource, "key/")
	if keyID == "" || strings.ContainsAny(keyID, "/: \t\r\n") {
		return a, "", fmt.Sprintf("%q has an invalid key id %q", s, keyID)
	}
	return a, keyID, ""
}
