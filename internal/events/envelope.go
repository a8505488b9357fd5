package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
)

// ErrNotJSON is wrapped by the error Decode and DecodeRecord return when the
// input is not JSON, or is JSON of the wrong shape (not an object, or a field
// of the wrong type).
var ErrNotJSON = errors.New("not JSON of the expected shape")

// ErrMalformed matches, through errors.Is, every *MalformedError.
var ErrMalformed = errors.New("malformed key event")

// MalformedError is returned for a record of a handled call that is valid
// JSON but lacks, or contradicts, a field the tagger needs.
type MalformedError struct {
	// EventName is the CloudTrail eventName, one of the parser table's.
	EventName string
	// Field is the path of the offending field in the CloudTrail record,
	// e.g. responseElements.keyMetadata.arn; or "envelope account" or
	// "envelope region" for a field of the EventBridge event.
	Field string
	// Reason says what is wrong with Field, e.g. "missing".
	Reason string
}

// Error returns e.g. "malformed CreateKey event: responseElements.keyMetadata.arn: missing".
func (e *MalformedError) Error() string {
	return fmt.Sprintf("malformed %s event: %s: %s", e.EventName, e.Field, e.Reason)
}

// Is reports whether target is ErrMalformed.
func (e *MalformedError) Is(target error) bool {
	return target == ErrMalformed
}

// recordHead is what picks the parser from a CloudTrail record: its
// eventSource and eventName, and its eventID to name the event should the
// whole record not decode.
type recordHead struct {
	EventSource string `json:"eventSource"`
	EventName   string `json:"eventName"`
	EventID     string `json:"eventID"`
}

// Decode decodes one EventBridge event as delivered to the Lambda, in two
// steps: the envelope, as aws-lambda-go's events.EventBridgeEvent with the
// detail kept raw; then the detail, by the parser that the table in
// parsers.go gives for the envelope's source and detail-type and the
// record's eventName.
//
// An event that is not an API call of the table (a CreateKey, ReplicateKey,
// TagResource or UntagResource call recorded by CloudTrail for KMS) is
// KindIgnore with a Reason and a nil error. The error wraps ErrNotJSON when
// raw or its detail is not JSON of the expected shape, and is a
// *MalformedError (matching ErrMalformed) when a record lacks what the
// tagger needs, or the envelope of a handled call lacks its account or
// region; in both cases the returned Decoded carries the EventID and
// EventName as far as they could be read. It is an *InconsistentError
// (matching ErrInconsistent) when the envelope, the record and the key
// disagree on the account or the region (the rule is in the package
// documentation); the Decoded then also carries the Key or Change as read.
func Decode(raw []byte) (Decoded, error) {
	var env events.EventBridgeEvent
	if err := unmarshalObject("EventBridge event", raw, &env); err != nil {
		return Decoded{}, err
	}
	ignore := Decoded{Kind: KindIgnore, EventID: env.ID}

	var knownSource, knownType bool
	for _, p := range parsers {
		if p.source == env.Source {
			knownSource = true
			knownType = knownType || p.detailType == env.DetailType
		}
	}
	if !knownSource {
		ignore.Reason = fmt.Sprintf("source %q is not handled (want %s)", env.Source, SourceKMS)
		return ignore, nil
	}
	if !knownType {
		ignore.Reason = fmt.Sprintf("detail-type %q of source %s is not handled (want %q)", env.DetailType, env.Source, DetailTypeAPICall)
		return ignore, nil
	}

	var head recordHead
	if err := unmarshalObject("detail of EventBridge event "+env.ID, env.Detail, &head); err != nil {
		return ignore.unknown(), err
	}
	if head.EventID != "" {
		ignore.EventID = head.EventID
	}
	ignore.EventName = head.EventName

	var match *parser
	for i := range parsers {
		p := &parsers[i]
		if p.source == env.Source && p.detailType == env.DetailType && p.eventName == head.EventName {
			match = p
			break
		}
	}
	if match == nil {
		ignore.Reason = fmt.Sprintf("eventName %q of %s %q is not handled (want %s)", head.EventName, env.Source, env.DetailType, handledNames())
		return ignore, nil
	}
	if head.EventSource != match.eventSource {
		ignore.Reason = fmt.Sprintf("eventSource %q of %s %s is not %s", head.EventSource, env.Source, head.EventName, match.eventSource)
		return ignore, nil
	}

	// EventBridge always sets both; the record's are compared with them.
	switch {
	case env.AccountID == "":
		return ignore.unknown(), &MalformedError{EventName: head.EventName, Field: envelopeAccount, Reason: "missing from the EventBridge event"}
	case env.Region == "":
		return ignore.unknown(), &MalformedError{EventName: head.EventName, Field: envelopeRegion, Reason: "missing from the EventBridge event"}
	}

	d, err := decodeWith(match, head, env.Detail, &origin{account: env.AccountID, region: env.Region})
	if d.EventID == "" {
		d.EventID = env.ID
	}
	return d, err
}

// DecodeRecord decodes one bare CloudTrail record, such as the CloudTrailEvent
// string that cloudtrail:LookupEvents returns. The parser is picked by the
// record's eventSource and eventName; results and errors are as for Decode,
// except that with no envelope only the record's own accounts and regions
// are compared.
func DecodeRecord(detail []byte) (Decoded, error) {
	var head recordHead
	if err := unmarshalObject("CloudTrail record", detail, &head); err != nil {
		return Decoded{}, err
	}
	ignore := Decoded{Kind: KindIgnore, EventID: head.EventID, EventName: head.EventName}

	var knownSource bool
	for i := range parsers {
		p := &parsers[i]
		if p.eventSource != head.EventSource {
			continue
		}
		knownSource = true
		if p.eventName == head.EventName {
			return decodeWith(p, head, detail, nil)
		}
	}
	if !knownSource {
		ignore.Reason = fmt.Sprintf("eventSource %q is not handled (want %s)", head.EventSource, EventSourceKMS)
	} else {
		ignore.Reason = fmt.Sprintf("eventName %q of %s is not handled (want %s)", head.EventName, head.EventSource, handledNames())
	}
	return ignore, nil
}

// decodeWith reads the whole record and runs p on it; env is the envelope's
// account and region, nil for a bare record.
func decodeWith(p *parser, head recordHead, detail []byte, env *origin) (Decoded, error) {
	var rec Record
	if err := unmarshalObject(p.eventName+" record "+head.EventID, detail, &rec); err != nil {
		return Decoded{EventID: head.EventID, EventName: head.EventName}, err
	}
	return p.parse(&rec, env)
}

// unknown drops the Kind and Reason of d, for returning alongside an error.
func (d Decoded) unknown() Decoded {
	d.Kind, d.Reason = 0, ""
	return d
}

// unmarshalObject unmarshals data, which must be a JSON object, into v. what
// names data in the error, which wraps ErrNotJSON and json's own error.
func unmarshalObject(what string, data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w: %w", what, ErrNotJSON, err)
	}
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '{' {
		return fmt.Errorf("%s: %w: got %.20s, want an object", what, ErrNotJSON, t)
	}
	return nil
}

// unmarshalPart unmarshals an optional part of a record, such as
// requestParameters, into v. A missing or null part leaves v as it is.
func unmarshalPart(what string, data json.RawMessage, v any) error {
	if isNull(data) {
		return nil
	}
	return unmarshalObject(what, data, v)
}

// isNull reports whether data is absent or the JSON literal null.
func isNull(data json.RawMessage) bool {
	t := bytes.TrimSpace(data)
	return len(t) == 0 || string(t) == "null"
}
