package events

import "time"

// Names of the EventBridge and CloudTrail fields this package dispatches on.
// The EventName constants name the entries of the parser table (parsers.go),
// which is the one list of the events handled: use CreationEventNames and
// TagChangeEventNames for a list.
const (
	// SourceKMS is the EventBridge source of events emitted for KMS.
	SourceKMS = "aws.kms"
	// DetailTypeAPICall is the EventBridge detail-type of API calls recorded by CloudTrail.
	DetailTypeAPICall = "AWS API Call via CloudTrail"
	// EventSourceKMS is the CloudTrail eventSource of KMS API calls.
	EventSourceKMS = "kms.amazonaws.com"
	// EventNameCreateKey is the CloudTrail eventName of kms:CreateKey.
	EventNameCreateKey = "CreateKey"
	// EventNameReplicateKey is the CloudTrail eventName of kms:ReplicateKey.
	EventNameReplicateKey = "ReplicateKey"
	// EventNameTagResource is the CloudTrail eventName of kms:TagResource.
	EventNameTagResource = "TagResource"
	// EventNameUntagResource is the CloudTrail eventName of kms:UntagResource.
	EventNameUntagResource = "UntagResource"
)

// Key managers as KMS reports them in KeyMetadata.KeyManager.
const (
	KeyManagerCustomer = "CUSTOMER"
	KeyManagerAWS      = "AWS"
)

// Multi-Region key types as KMS reports them in MultiRegionConfiguration.
const (
	MultiRegionPrimary = "PRIMARY"
	MultiRegionReplica = "REPLICA"
)

// CloudTrail userIdentity types this package distinguishes.
const (
	IdentityIAMUser            = "IAMUser"
	IdentityAssumedRole        = "AssumedRole"
	IdentityFederatedUser      = "FederatedUser"
	IdentityRoot               = "Root"
	IdentityAWSService         = "AWSService"
	IdentityAWSAccount         = "AWSAccount"
	IdentityIdentityCenterUser = "IdentityCenterUser"
)

// Kind says what a decoded event asks of the tagger.
type Kind int

const (
	// KindTag is a key event to tag: Decoded.Key is set.
	KindTag Kind = iota + 1
	// KindIgnore is an event that is not ours (another source, detail-type or
	// eventName). It is a no-op.
	KindIgnore
	// KindFailedCall is a handled call that failed (errorCode set): no key
	// was created, no tag changed. It is a no-op.
	KindFailedCall
	// KindSkip is a key event that must not be tagged: an AWS managed key, or
	// the CreateKey that AWS logs in a replica's region on behalf of a
	// ReplicateKey call (any CreateKey of a REPLICA, whatever its
	// userIdentity). Decoded.Key is set when the key could be read.
	KindSkip
)

// String returns the lower-case name of the kind, as used in logs.
func (k Kind) String() string {
	switch k {
	case KindTag:
		return "tag"
	case KindIgnore:
		return "ignore"
	case KindFailedCall:
		return "failed-call"
	case KindSkip:
		return "skip"
	case KindTagChange:
		return "tag-change"
	default:
		return "unknown"
	}
}

// Decoded is the result of decoding one event.
type Decoded struct {
	// Kind says what to do with the event.
	Kind Kind
	// Reason explains a KindIgnore, KindFailedCall or KindSkip in a sentence.
	Reason string
	// EventID is the CloudTrail eventID, or the EventBridge id when the
	// detail has none.
	EventID string
	// EventName is the CloudTrail eventName, empty when unknown.
	EventName string
	// Key is the key the event is about; set for KindTag and, where it can be
	// read, KindSkip, and alongside an *InconsistentError.
	Key *KeyEvent
	// Change is the tag change of a KindTagChange; also set alongside an
	// *InconsistentError.
	Change *TagChange
}

// Tag is one tag as a creator passed it in the request.
type Tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Creator is the principal that made the API call, from CloudTrail's
// userIdentity.
type Creator struct {
	// Type is userIdentity.type: IAMUser, AssumedRole, FederatedUser, Root,
	// AWSService, AWSAccount, IdentityCenterUser, ...
	Type string `json:"type"`
	// PrincipalARN is userIdentity.arn; empty for an AWS service.
	PrincipalARN string `json:"principalArn,omitempty"`
	// PrincipalID is userIdentity.principalId.
	PrincipalID string `json:"principalId,omitempty"`
	// AccountID is userIdentity.accountId.
	AccountID string `json:"accountId,omitempty"`
	// IssuerARN is sessionContext.sessionIssuer.arn: the role of an
	// AssumedRole session, or the IAM user of a FederatedUser session.
	IssuerARN string `json:"issuerArn,omitempty"`
	// InvokedBy is userIdentity.invokedBy, the AWS service that made the call
	// on the principal's behalf (e.g. cloudformation.amazonaws.com).
	InvokedBy string `json:"invokedBy,omitempty"`
	// IdentityStoreUser is "<identityStoreArn>/user/<userId>" for an IAM
	// Identity Center user recorded with onBehalfOf.
	IdentityStoreUser string `json:"identityStoreUser,omitempty"`
	// UserName is userIdentity.userName: the IAM user's name (IAMUser),
	// the account's alias (Root).
	UserName string `json:"userName,omitempty"`
	// SourceIdentity is userIdentity.sessionContext.sourceIdentity, the STS
	// source identity of a role session, which role chaining keeps.
	SourceIdentity string `json:"sourceIdentity,omitempty"`
}

// KeyEvent is the one key an event says was created: where, when and by whom.
type KeyEvent struct {
	// EventID is the CloudTrail eventID.
	EventID string `json:"eventId"`
	// EventName is CreateKey or ReplicateKey.
	EventName string `json:"eventName"`
	// EventTime is the CloudTrail eventTime, in UTC.
	EventTime time.Time `json:"eventTime"`
	// EventRegion is the region the call was logged in (awsRegion).
	EventRegion string `json:"eventRegion"`
	// KeyARN is the ARN of the key to tag: the new key, or the replica.
	KeyARN string `json:"keyArn"`
	// KeyID is the key id part of KeyARN.
	KeyID string `json:"keyId"`
	// Region is the key's own region, from KeyARN. For ReplicateKey this is
	// the replica region, not EventRegion.
	Region string `json:"region"`
	// Account is the account that owns the key, from KeyARN.
	Account string `json:"account"`
	// Partition is the ARN partition of the key (aws, aws-cn, aws-us-gov...).
	Partition string `json:"partition"`
	// KeyManager is CUSTOMER or AWS; empty when the record does not say.
	KeyManager string `json:"keyManager,omitempty"`
	// Origin is AWS_KMS, EXTERNAL, AWS_CLOUDHSM or EXTERNAL_KEY_STORE.
	Origin string `json:"origin,omitempty"`
	// MultiRegionKeyType is PRIMARY, REPLICA or empty for a single-Region key.
	MultiRegionKeyType string `json:"multiRegionKeyType,omitempty"`
	// PrimaryKeyARN is the primary key of a replica; empty otherwise.
	PrimaryKeyARN string `json:"primaryKeyArn,omitempty"`
	// Creator is who made the call.
	Creator Creator `json:"creator"`
	// RequestTags are the tags the creator passed in the request, in order.
	RequestTags []Tag `json:"requestTags,omitempty"`
	// Evidence says where the event came from, for the CreatedByEvidence
	// tag: empty for the EventBridge event itself; the code that reads a
	// record elsewhere sets it ("history" for CloudTrail's event history,
	// "trail-archive" for the trail's log files in S3). Decode never sets
	// it.
	Evidence string `json:"evidence,omitempty"`
}

// KindTagChange is a TagResource or UntagResource call that succeeded:
// Decoded.Change is set. The tamper repair decides whether it touched
// governance tags.
const KindTagChange Kind = KindSkip + 1

// TagChange is a successful TagResource or UntagResource call on a key.
type TagChange struct {
	// EventID is the CloudTrail eventID.
	EventID string `json:"eventId"`
	// EventName is TagResource or UntagResource.
	EventName string `json:"eventName"`
	// EventTime is the CloudTrail eventTime, in UTC.
	EventTime time.Time `json:"eventTime"`
	// KeyARN is the key whose tags changed.
	KeyARN string `json:"keyArn"`
	// KeyID is the key id part of KeyARN.
	KeyID string `json:"keyId"`
	// Region, Account and Partition are those of KeyARN.
	Region    string `json:"region"`
	Account   string `json:"account"`
	Partition string `json:"partition"`
	// Actor is who changed the tags.
	Actor Creator `json:"actor"`
	// Set are the tags a TagResource call wrote.
	Set []Tag `json:"set,omitempty"`
	// Removed are the tag keys an UntagResource call removed.
	Removed []string `json:"removed,omitempty"`
}
