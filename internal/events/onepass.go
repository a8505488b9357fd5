package events

import (
	"encoding/json"

	"github.com/aws/aws-lambda-go/events"
)

// The event in one pass.
//
// Decode reads an event in two steps, as its documentation says: the
// EventBridge envelope with the detail kept raw, then the CloudTrail record,
// whose requestParameters and responseElements each parser reads again into
// its own model. That is four passes of encoding/json over most of the
// event, and the most costly thing the handler does besides its one KMS
// call (docs/PERFORMANCE.md). So Decode first tries to read the whole event
// in one pass into typedEvent, whose parts are the unions below of every
// parser's models; when that pass fails, for any reason, Decode takes the
// two steps, which give the error. When it succeeds, the two steps would
// have read the same values, because every field of every model is a field
// of the union with the same name and type (TestUnionsHoldEveryModel), so
// the parsers get the same models either way (TestOnePassAgreesWithTwoSteps,
// FuzzOnePass).

// requestUnion is requestParameters of every record a parser reads: the
// fields of CreateKeyRequest, ReplicateKeyRequest, TagResourceRequest and
// UntagResourceRequest.
type requestUnion struct {
	KeyID                          string          `json:"keyId"`
	Description                    string          `json:"description"`
	KeySpec                        string          `json:"keySpec"`
	KeyUsage                       string          `json:"keyUsage"`
	Origin                         string          `json:"origin"`
	MultiRegion                    bool            `json:"multiRegion"`
	ReplicaRegion                  string          `json:"replicaRegion"`
	BypassPolicyLockoutSafetyCheck bool            `json:"bypassPolicyLockoutSafetyCheck"`
	Policy                         json.RawMessage `json:"policy"`
	Tags                           []RequestTag    `json:"tags"`
	TagKeys                        []string        `json:"tagKeys"`
}

// responseUnion is responseElements of every record a parser reads: the
// fields of CreateKeyResponse and ReplicateKeyResponse.
type responseUnion struct {
	KeyMetadata        *KeyMetadata    `json:"keyMetadata"`
	ReplicaKeyMetadata *KeyMetadata    `json:"replicaKeyMetadata"`
	ReplicaPolicy      json.RawMessage `json:"replicaPolicy"`
	ReplicaTags        []RequestTag    `json:"replicaTags"`
}

// parts are requestParameters and responseElements of a record read in one
// pass; nil when the part is absent or null.
type parts struct {
	req  *requestUnion
	resp *responseUnion
}

// typedRecord is a CloudTrail record with its parts decoded: encoding/json
// gives a JSON name to the least nested field that has it, so the two fields
// here take requestParameters and responseElements from Record's raw ones.
type typedRecord struct {
	Record
	RequestParameters *requestUnion  `json:"requestParameters"`
	ResponseElements  *responseUnion `json:"responseElements"`
}

// typedEvent is a whole EventBridge event with its detail decoded, the
// same way.
type typedEvent struct {
	events.EventBridgeEvent
	Detail *typedRecord `json:"detail"`
}

// record returns the Record of t, carrying its decoded parts.
func (t *typedRecord) record() *Record {
	t.Record.parts = &parts{req: t.RequestParameters, resp: t.ResponseElements}
	return &t.Record
}

// decodeEvent reads raw in one pass. It returns nil when raw is not an
// object with a detail object that decodes whole, and without onePass; the
// steps then say why, or read what this pass could not.
func decodeEvent(raw []byte, onePass bool) *typedEvent {
	if !onePass {
		return nil
	}
	e := new(typedEvent)
	if unmarshalObject("EventBridge event", raw, e) != nil || e.Detail == nil {
		return nil
	}
	return e
}

// decodeRecordOnce reads a CloudTrail record whole, its parts too with
// onePass, and returns it with its head; nil when it does not decode whole,
// in which case the caller reads the head alone and goes on in steps, with
// the same results and errors: the head's fields are the Record's fields of
// the same names, decoded by the same rules.
func decodeRecordOnce(detail []byte, onePass bool) (*Record, recordHead) {
	if !onePass {
		rec := new(Record)
		if unmarshalObject("CloudTrail record", detail, rec) != nil {
			return nil, recordHead{}
		}
		return rec, headOf(rec)
	}
	t := new(typedRecord)
	if unmarshalObject("CloudTrail record", detail, t) != nil {
		return nil, recordHead{}
	}
	return t.record(), headOf(&t.Record)
}

// headOf is the head of rec.
func headOf(rec *Record) recordHead {
	return recordHead{EventSource: rec.EventSource, EventName: rec.EventName, EventID: rec.EventID}
}

// readRequest returns the record's requestParameters as the model T: from
// the union, with model, when the record was read in one pass; else decoded
// now, what naming them in an error. Absent or null, they are T's zero value.
func readRequest[T any](rec *Record, what string, model func(*requestUnion) T) (T, error) {
	var v T
	if rec.parts != nil {
		if rec.parts.req != nil {
			v = model(rec.parts.req)
		}
		return v, nil
	}
	return v, unmarshalPart(what, rec.RequestParameters, &v)
}

// readResponse is readRequest for responseElements; present reports whether
// they are there and not null.
func readResponse[T any](rec *Record, what string, model func(*responseUnion) T) (v T, present bool, err error) {
	if rec.parts != nil {
		if rec.parts.resp != nil {
			v = model(rec.parts.resp)
		}
		return v, rec.parts.resp != nil, nil
	}
	return v, !isNull(rec.ResponseElements), unmarshalPart(what, rec.ResponseElements, &v)
}
