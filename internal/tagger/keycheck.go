package tagger

import (
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/kms-autotagger/kms-autotagger/internal/events"
)

// CreationTolerance is how far a key's CreationDate, as DescribeKey gives
// it, may be from the eventTime of the event that says it created the key.
// KMS records both within moments of the call; five minutes allows for
// clock skew between CloudTrail and KMS and still rejects an event that
// claims the creation of an older (or younger) key.
const CreationTolerance = 5 * time.Minute

// YoungKeyAge is how long after its creation event a key counts as just
// created: KMS may not find it everywhere yet (NotFoundException), and
// CloudTrail's event history, which lags EventBridge by minutes, may not
// hold its event yet. For a young key both are transient failures, left to
// Lambda's asynchronous retries (one and two minutes later).
const YoungKeyAge = 15 * time.Minute

// Error codes of the checks of an event against the key it names.
const (
	// CodeInconsistentEvent: the event's accounts or regions disagree.
	CodeInconsistentEvent = "InconsistentEvent"
	// CodeKeyNotCustomerManaged: KMS says the key is not customer managed.
	CodeKeyNotCustomerManaged = "KeyNotCustomerManaged"
	// CodeCreationDateMismatch: the key's CreationDate is not within
	// CreationTolerance of the event's time.
	CodeCreationDateMismatch = "CreationDateMismatch"
	// CodeReplicaMismatch: a ReplicateKey event names a key that KMS does not
	// know as a replica of the event's primary key.
	CodeReplicaMismatch = "ReplicaMismatch"
	// CodeCreationEventConflict: the key carries governance tags the tagger
	// wrote from another creation event, and CloudTrail's own record could
	// not settle which event is real.
	CodeCreationEventConflict = "CreationEventConflict"
	// CodeForgedCreationEvent: CloudTrail's own record confirms the event
	// the key's governance tags came from, not this one.
	CodeForgedCreationEvent = "ForgedCreationEvent"
	// CodeForgedTagsUncorrected: the key keeps forged or creator-passed
	// values of governance tags because the tagger could not write; the
	// dead letter names them and the original error.
	CodeForgedTagsUncorrected = "ForgedGovernanceTagsUncorrected"
)

// KeyFacts are what KMS itself says of a key (DescribeKey).
type KeyFacts struct {
	ARN                string
	KeyManager         string
	KeyState           string
	MultiRegionKeyType string
	PrimaryARN         string
	CreationDate       time.Time
}

// factsOf reads KeyFacts from DescribeKey's KeyMetadata.
func factsOf(md *kmstypes.KeyMetadata) KeyFacts {
	if md == nil {
		return KeyFacts{}
	}
	f := KeyFacts{
		ARN:          aws.ToString(md.Arn),
		KeyManager:   string(md.KeyManager),
		KeyState:     string(md.KeyState),
		CreationDate: aws.ToTime(md.CreationDate),
	}
	if mr := md.MultiRegionConfiguration; mr != nil {
		f.MultiRegionKeyType = string(mr.MultiRegionKeyType)
		if mr.PrimaryKey != nil {
			f.PrimaryARN = aws.ToString(mr.PrimaryKey.Arn)
		}
	}
	return f
}

// KeyCheckError is an event that KMS contradicts: the key it names is not
// the key it claims to have created.
type KeyCheckError struct {
	// Code is one of CodeKeyNotCustomerManaged, CodeCreationDateMismatch and
	// CodeReplicaMismatch.
	Code string
	// KeyARN is the key.
	KeyARN string
	// Detail says what KMS said and what the event said.
	Detail string
}

func (e *KeyCheckError) Error() string {
	return fmt.Sprintf("key %s contradicts its event (%s): %s", e.KeyARN, e.Code, e.Detail)
}

// CheckKey compares ev with md, what KMS's DescribeKey says of its key, as
// the handler does before its first write: see checkKey. The audit and the
// handler share it.
func CheckKey(ev *events.KeyEvent, md *kmstypes.KeyMetadata) (skip string, err error) {
	return checkKey(ev, factsOf(md))
}

// checkKey compares ev with what KMS says of its key. It returns a skip
// reason for the CreateKey KMS logs in a replica's region (the ReplicateKey
// event tags the replica), or a *KeyCheckError.
func checkKey(ev *events.KeyEvent, k KeyFacts) (skip string, err error) {
	fail := func(code, format string, args ...any) (string, error) {
		return "", &KeyCheckError{Code: code, KeyARN: ev.KeyARN, Detail: fmt.Sprintf(format, args...)}
	}
	if k.KeyManager != string(kmstypes.KeyManagerTypeCustomer) {
		return fail(CodeKeyNotCustomerManaged, "KMS says its key manager is %q", k.KeyManager)
	}
	if ev.EventName == events.EventNameCreateKey && k.MultiRegionKeyType == string(kmstypes.MultiRegionKeyTypeReplica) {
		return "the CreateKey KMS logs in a replica's region for ReplicateKey: the ReplicateKey event tags the replica", nil
	}
	if d := k.CreationDate.Sub(ev.EventTime).Abs(); k.CreationDate.IsZero() || d > CreationTolerance {
		return fail(CodeCreationDateMismatch, "KMS says it was created at %s, the event at %s (tolerance %v)",
			k.CreationDate.UTC().Format(time.RFC3339), ev.EventTime.UTC().Format(time.RFC3339), CreationTolerance)
	}
	if ev.EventName == events.EventNameReplicateKey &&
		(k.MultiRegionKeyType != string(kmstypes.MultiRegionKeyTypeReplica) || k.PrimaryARN != ev.PrimaryKeyARN) {
		return fail(CodeReplicaMismatch, "KMS says it is a %q key whose primary is %q, the event says a replica of %q",
			k.MultiRegionKeyType, k.PrimaryARN, ev.PrimaryKeyARN)
	}
	return "", nil
}

// young reports whether an event of eventTime is recent enough at now for
// its key to be just created (YoungKeyAge).
func young(eventTime, now time.Time) bool {
	return !eventTime.IsZero() && now.Sub(eventTime) < YoungKeyAge
}
