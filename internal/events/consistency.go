package events

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInconsistent matches, through errors.Is, every *InconsistentError.
var ErrInconsistent = errors.New("inconsistent key event")

// InconsistentError is returned for a record of a handled call, or an
// EventBridge event around one, whose fields disagree on the account or the
// region the call was made in: the event is not acted on. Decode and
// DecodeRecord return it with the Decoded's EventID, EventName and, as far
// as they could be read, Key or Change set, so that the key can be named.
type InconsistentError struct {
	// EventName is the CloudTrail eventName, one of the parser table's.
	EventName string
	// Field names the field the other disagrees with: "envelope account" or
	// "envelope region" for the EventBridge envelope, else the path of the
	// field in the CloudTrail record, with " (account)" or " (region)" for
	// that part of an ARN, e.g. "responseElements.keyMetadata.arn (account)".
	Field string
	// Value is Field's value.
	Value string
	// Other names the field that disagrees with Field, in the same form.
	Other string
	// OtherValue is Other's value.
	OtherValue string
}

// Error returns e.g. `inconsistent CreateKey event: envelope account
// "111122223333" but responseElements.keyMetadata.arn (account) "444455556666"`.
// The values are quoted, since they are the event's own text.
func (e *InconsistentError) Error() string {
	return fmt.Sprintf("inconsistent %s event: %s %q but %s %q", e.EventName, e.Field, e.Value, e.Other, e.OtherValue)
}

// Is reports whether target is ErrInconsistent.
func (e *InconsistentError) Is(target error) bool {
	return target == ErrInconsistent
}

// Names of the EventBridge envelope's fields in errors.
const (
	envelopeAccount = "envelope account"
	envelopeRegion  = "envelope region"
)

// origin is what the EventBridge envelope says of where an event comes from:
// its account and region fields. DecodeRecord, which has no envelope, passes
// a nil *origin.
type origin struct {
	account, region string
}

// claim is one field's value for the account or the region of an event.
// An empty value is a field the record does not have: it is not compared.
type claim struct {
	field, value string
}

// scope collects what the fields of one record say of the account and the
// region of the call, for consistent to compare.
type scope struct {
	// accounts must all be equal; the first is recipientAccountId.
	accounts []claim
	// regions must all be equal; the first is awsRegion.
	regions []claim
	// pairs are compared two by two, apart from regions: for ReplicateKey,
	// the replica's region with replicaRegion, neither being the region the
	// call was logged in.
	pairs [][2]claim
}

// scope starts the scope of r with its own recipientAccountId and awsRegion.
func (r *Record) scope() *scope {
	return &scope{
		accounts: []claim{{"recipientAccountId", r.RecipientAccountID}},
		regions:  []claim{{"awsRegion", r.AWSRegion}},
	}
}

// keyARN adds the account and region of the key ARN at field.
func (s *scope) keyARN(field, account, region string) {
	s.accounts = append(s.accounts, claim{field + " (account)", account})
	s.regions = append(s.regions, claim{field + " (region)", region})
}

// keyARNAccount adds only the account of the key ARN at field, for a key
// outside the region the call was logged in (a ReplicateKey's replica, the
// primary key of a replica's CreateKey).
func (s *scope) keyARNAccount(field, account string) {
	s.accounts = append(s.accounts, claim{field + " (account)", account})
}

// metadataAccount adds the account field of md, at parent, in each spelling
// the record used. md may be nil.
func (s *scope) metadataAccount(parent string, md *KeyMetadata) {
	if md == nil {
		return
	}
	s.accounts = append(s.accounts,
		claim{parent + ".AWSAccountId", md.AWSAccountID},
		claim{parent + ".aWSAccountId", md.OldAWSAccountID})
}

// requestKeyARN adds the account and region of the key ARN at field when
// keyID, a key id or key ARN as the caller passed it, is a key ARN. The key
// a request names is in the region the call was made to.
func (s *scope) requestKeyARN(field, keyID string) {
	if !strings.HasPrefix(keyID, "arn:") {
		return
	}
	if a, _, reason := parseKeyARN(keyID); reason == "" {
		s.keyARN(field, a.AccountID, a.Region)
	}
}

// consistent returns an *InconsistentError for the first disagreement in s,
// comparing each account and each region with the first one present, then
// each pair; and then, when env is set, the envelope's account and region
// with the record's. The record is checked before the envelope, so that a
// record decodes to the same error on its own (DecodeRecord) as inside its
// event (Decode).
func (r *Record) consistent(s *scope, env *origin) error {
	account, err := r.agree(s.accounts)
	if err != nil {
		return err
	}
	region, err := r.agree(s.regions)
	if err != nil {
		return err
	}
	for _, p := range s.pairs {
		if p[0].value != "" && p[1].value != "" && p[0].value != p[1].value {
			return r.inconsistent(p[0], p[1])
		}
	}
	if env == nil {
		return nil
	}
	switch {
	case account.value != "" && env.account != account.value:
		return r.inconsistent(claim{envelopeAccount, env.account}, account)
	case region.value != "" && env.region != region.value:
		return r.inconsistent(claim{envelopeRegion, env.region}, region)
	}
	return nil
}

// agree returns the first claim present in claims, or an *InconsistentError
// when a later one disagrees with it.
func (r *Record) agree(claims []claim) (claim, error) {
	var first claim
	for _, c := range claims {
		switch {
		case c.value == "":
		case first.value == "":
			first = c
		case c.value != first.value:
			return first, r.inconsistent(first, c)
		}
	}
	return first, nil
}

// inconsistent returns the *InconsistentError of a and b in r.
func (r *Record) inconsistent(a, b claim) *InconsistentError {
	return &InconsistentError{EventName: r.EventName, Field: a.field, Value: a.value, Other: b.field, OtherValue: b.value}
}
