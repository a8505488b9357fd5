package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// ErrNotJSON is wrapped by the error Decode and DecodeRecord return when the
// input is not JSON, or is JSON of the wrong shape (not an object, or a field
// of the wrong type).
var ErrNotJSON = errors.New("not JSON of the expected shape")

// ErrMalformed matches, through errors.Is, every *MalformedError.
var ErrMalformed = errors.New("malformed key event")

// MalformedError is returned for a CreateKey or ReplicateKey record that is
// valid JSON but lacks, or contradicts, a field the tagger needs.
type MalformedError struct {
	// EventName is the CloudTrail eventName: CreateKey or ReplicateKey.
	EventName string
	// Field is the path of the offending field in the CloudTrail record,
	// e.g. responseElements.keyMetadata.arn.
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

// parser decodes the CloudTrail record of one API call. Decode picks it by
// the EventBridge source and detail-type and the record's eventName;
// DecodeRecord by the record's eventSource and eventName.
type parser struct {
	source      string // EventBridge source
	detailType  string // EventBridge detail-type
	eventSource string // CloudTrail eventSource
	eventName   string // CloudTrail eventName
	parse       func(rec *Record) (Decoded, error)
}

// parsers lists every event this package decodes; anything else is KindIgnore.
var parsers = []parser{
	{SourceKMS, DetailTypeAPICall, EventSourceKMS, EventNameCreateKey, parseCreateKey},
	{SourceKMS, DetailTypeAPICall, EventSourceKMS, EventNameReplicateKey, parseReplicateKey},
	{SourceKMS, DetailTypeAPICall, EventSourceKMS, EventNameTagResource, parseTagResource},
	{SourceKMS, DetailTypeAPICall, EventSourceKMS, EventNameUntagResource, parseUntagResource},
}

// recordHead is the first pass over a CloudTrail record: just enough to pick
// a parser and to name the event if the second pass fails.
type recordHead struct {
	EventSource string `json:"eventSource"`
	EventName   string `json:"eventName"`
	EventID     string `json:"eventID"`
}

// Decode decodes one EventBridge event as delivered to the Lambda.
//
// An event that is not a CreateKey or ReplicateKey API call recorded by
// CloudTrail for KMS is KindIgnore with a Reason and a nil error. The error
// wraps ErrNotJSON when raw or its detail is not JSON of the expected shape,
// and is a *MalformedError (matching ErrMalformed) when a CreateKey or
// ReplicateKey record lacks what the tagger needs; in both cases the returned
// Decoded carries the EventID and EventName as far as they could be read.
func Decode(raw []byte) (Decoded, error) {
	return decode(raw, true)
}

// decode is Decode. With onePass, it reads an event that decodes whole in
// one pass, as nearly every event does (onepass.go); without, or when the
// event does not decode whole, it reads the envelope, then the record, then
// its parts, in steps. The results are the same either way.
func decode(raw []byte, onePass bool) (Decoded, error) {
	var env events.EventBridgeEvent
	var rec *Record
	var head recordHead
	if one := decodeEvent(raw, onePass); one != nil {
		env, rec = one.EventBridgeEvent, one.Detail.record()
		head = headOf(rec)
	} else if err := unmarshalObject("EventBridge event", raw, &env); err != nil {
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

	if rec == nil {
		rec, head = decodeRecordOnce(env.Detail, onePass)
	}
	if rec == nil {
		if err := unmarshalObject("detail of EventBridge event "+env.ID, env.Detail, &head); err != nil {
			return ignore.unknown(), err
		}
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

	d, err := decodeWith(match, head, env.Detail, rec)
	if d.EventID == "" {
		d.EventID = env.ID
	}
	return d, err
}

// DecodeRecord decodes one bare CloudTrail record, such as the CloudTrailEvent
// string that cloudtrail:LookupEvents returns. The parser is picked by the
// record's eventSource and eventName; results and errors are as for Decode.
func DecodeRecord(detail []byte) (Decoded, error) {
	return decodeRecord(detail, true)
}

// decodeRecord is DecodeRecord, reading the record's parts in its one pass
// with onePass, else in steps.
func decodeRecord(detail []byte, onePass bool) (Decoded, error) {
	rec, head := decodeRecordOnce(detail, onePass)
	if rec == nil {
		if err := unmarshalObject("CloudTrail record", detail, &head); err != nil {
			return Decoded{}, err
		}
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
			return decodeWith(p, head, detail, rec)
		}
	}
	if !knownSource {
		ignore.Reason = fmt.Sprintf("eventSource %q is not handled (want %s)", head.EventSource, EventSourceKMS)
	} else {
		ignore.Reason = fmt.Sprintf("eventName %q of %s is not handled (want %s)", head.EventName, head.EventSource, handledNames())
	}
	return ignore, nil
}

// decodeWith runs p on the whole record: rec when the first pass read it
// already, else detail, read now.
func decodeWith(p *parser, head recordHead, detail []byte, rec *Record) (Decoded, error) {
	if rec != nil {
		return p.parse(rec)
	}
	rec = new(Record)
	if err := unmarshalObject(p.eventName+" record "+head.EventID, detail, rec); err != nil {
		return Decoded{EventID: head.EventID, EventName: head.EventName}, err
	}
	return p.parse(rec)
}

// unknown drops the Kind and Reason of d, for returning alongside an error.
func (d Decoded) unknown() Decoded {
	d.Kind, d.Reason = 0, ""
	return d
}

// handledNames lists the eventNames in parsers, for ignore reasons.
func handledNames() string {
	names := make([]string, len(parsers))
	for i, p := range parsers {
		names[i] = p.eventName
	}
	return strings.Join(names, " or ")
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
