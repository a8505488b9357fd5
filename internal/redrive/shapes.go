package redrive

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// Shape names the kind of message found in the dead-letter queue.
type Shape string

// The shapes Decode tells apart.
const (
	// ShapeHandlerRecord is the handler's own tagger.DeadLetter record.
	ShapeHandlerRecord Shape = "handler-record"
	// ShapeLambdaDestination is Lambda's on-failure destination record of an
	// asynchronous invocation.
	ShapeLambdaDestination Shape = "lambda-destination"
	// ShapeEventBridgeDLQ is an event EventBridge could not deliver to its
	// target.
	ShapeEventBridgeDLQ Shape = "eventbridge-dlq"
	// ShapeUnrecognized is any other message.
	ShapeUnrecognized Shape = "unrecognized"
)

// Names of the message attributes EventBridge sets on an event it sends to
// a rule target's dead-letter queue.
const (
	AttrEventBridgeRuleARN   = "RULE_ARN"
	AttrEventBridgeTargetARN = "TARGET_ARN"
	AttrEventBridgeErrorCode = "ERROR_CODE"
	AttrEventBridgeErrorMsg  = "ERROR_MESSAGE"
	// AttrEventBridgeExhausted is MaximumRetryAttempts or
	// MaximumEventAgeInSeconds when a retry limit ended the delivery.
	AttrEventBridgeExhausted = "EXHAUSTED_RETRY_CONDITION"
	// AttrEventBridgeRetries is the number of retries made.
	AttrEventBridgeRetries = "RETRY_ATTEMPTS"
)

// LambdaDestinationVersion is the version of the invocation record Lambda
// sends to an asynchronous invocation's destinations.
const LambdaDestinationVersion = "1.0"

// LambdaDestinationRecord is the invocation record Lambda sends to the
// on-failure destination of an asynchronous invocation once it gives up on
// an event.
//
// Example:
//
//	{"version":"1.0","timestamp":"2024-01-09T19:01:12.345Z",
//	 "requestContext":{"requestId":"e4b4...","functionArn":"arn:aws:lambda:us-east-1:111122223333:function:kms-autotagger:$LATEST",
//	  "condition":"RetriesExhausted","approximateInvokeCount":3},
//	 "requestPayload":{"version":"0","source":"aws.kms",...},
//	 "responseContext":{"statusCode":200,"executedVersion":"$LATEST","functionError":"Unhandled"},
//	 "responsePayload":{"errorMessage":"transient failure ...","errorType":"wrapError"}}
type LambdaDestinationRecord struct {
	Version        string               `json:"version"`
	Timestamp      string               `json:"timestamp"`
	RequestContext LambdaRequestContext `json:"requestContext"`
	// RequestPayload is the event the function was invoked with.
	RequestPayload  json.RawMessage       `json:"requestPayload"`
	ResponseContext LambdaResponseContext `json:"responseContext"`
	// ResponsePayload is what the last invocation returned: for a function
	// error, {"errorMessage":...,"errorType":...}.
	ResponsePayload json.RawMessage `json:"responsePayload,omitempty"`
}

// LambdaRequestContext says which invocation the record is about and why it
// was given up.
type LambdaRequestContext struct {
	RequestID   string `json:"requestId"`
	FunctionARN string `json:"functionArn"`
	// Condition is RetriesExhausted, EventAgeExceeded, ... (Success for an
	// on-success destination).
	Condition              string `json:"condition"`
	ApproximateInvokeCount int    `json:"approximateInvokeCount"`
}

// LambdaResponseContext describes the last invocation's response.
type LambdaResponseContext struct {
	StatusCode      int    `json:"statusCode"`
	ExecutedVersion string `json:"executedVersion"`
	// FunctionError is Handled or Unhandled when the function failed.
	FunctionError string `json:"functionError,omitempty"`
}

// Letter is one dead-letter message, decoded.
type Letter struct {
	Shape Shape
	// Event is the original event to hand to the handler; nil when there is
	// none that could succeed (see Problem).
	Event json.RawMessage
	// OriginalError is what put the message in the queue, as its producer
	// recorded it.
	OriginalError string
	// EventID, EventName and KeyARN are what the record itself says about
	// the event, when it says.
	EventID, EventName, KeyARN string
	// Problem says why the message cannot be redriven; empty when it can.
	Problem string
	// ProblemCode names the problem in one word, for a known shape whose
	// event can never succeed.
	ProblemCode string
}

// Decode tells which shape a message has from its body and its message
// attributes (name to string value), and extracts the original event.
func Decode(body string, attrs map[string]string) Letter {
	trimmed := bytes.TrimSpace([]byte(body))
	if !json.Valid(trimmed) {
		return unrecognized("the body is not JSON")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &fields); err != nil {
		return unrecognized("the body is JSON but not an object")
	}
	switch {
	case stringField(fields, "kind") == tagger.DeadLetterKind:
		return decodeHandlerRecord(trimmed)
	case fields["requestContext"] != nil && fields["requestPayload"] != nil:
		return decodeLambdaDestination(trimmed)
	case hasEventBridgeAttrs(attrs):
		return decodeEventBridgeDLQ(trimmed, fields, attrs)
	}
	if looksLikeEvent(fields) {
		return unrecognized("an EventBridge event without the " + AttrEventBridgeErrorCode + "/" + AttrEventBridgeRuleARN +
			" attributes EventBridge sets on the events it could not deliver")
	}
	return unrecognized("not a " + tagger.DeadLetterKind + " record, a Lambda destination record or an event EventBridge could not deliver")
}

func unrecognized(reason string) Letter {
	return Letter{Shape: ShapeUnrecognized, Problem: reason}
}

func decodeHandlerRecord(body []byte) Letter {
	var d tagger.DeadLetter
	if err := json.Unmarshal(body, &d); err != nil {
		return unrecognized(fmt.Sprintf("a %s record that does not decode: %v", tagger.DeadLetterKind, err))
	}
	if d.Version != tagger.DeadLetterVersion {
		return unrecognized(fmt.Sprintf("a %s record of version %d; this autotagger reads version %d",
			tagger.DeadLetterKind, d.Version, tagger.DeadLetterVersion))
	}
	l := Letter{
		Shape:         ShapeHandlerRecord,
		EventID:       d.EventID,
		EventName:     d.EventName,
		KeyARN:        d.KeyARN,
		OriginalError: joinNonEmpty(": ", d.Error.Code, apiMessage(d.Error.Code, d.Error.Message)),
	}
	switch {
	case len(d.Event) > 0 && !isJSONNull(d.Event):
		l.Event = d.Event
	case d.EventText != "":
		l.Problem = "the event was not JSON (the record keeps it as eventText): it can never succeed"
		l.ProblemCode = tagger.CodeMalformedEvent
	default:
		l.Problem = "the record holds no event"
		l.ProblemCode = tagger.CodeMalformedEvent
	}
	return l
}

// apiMessage returns the part of an error message after its last
// "CODE: ", which for an AWS API error is the service's own message (the
// SDK writes "...api error CODE: message"); the whole message otherwise.
func apiMessage(code, msg string) string {
	if code == "" {
		return msg
	}
	if i := strings.LastIndex(msg, code+": "); i >= 0 && i+len(code)+2 < len(msg) {
		return msg[i+len(code)+2:]
	}
	return msg
}

func decodeLambdaDestination(body []byte) Letter {
	var r LambdaDestinationRecord
	if err := json.Unmarshal(body, &r); err != nil {
		return unrecognized(fmt.Sprintf("a Lambda destination record that does not decode: %v", err))
	}
	if r.Version != LambdaDestinationVersion || r.RequestContext.FunctionARN == "" {
		return unrecognized(fmt.Sprintf("has requestContext and requestPayload but is not a Lambda destination record of version %s with a functionArn",
			LambdaDestinationVersion))
	}
	l := Letter{Shape: ShapeLambdaDestination, OriginalError: lambdaError(r)}
	if isJSONNull(r.RequestPayload) {
		l.Problem = "the record's requestPayload is null: there is no event to redrive"
		l.ProblemCode = tagger.CodeMalformedEvent
		return l
	}
	l.Event = r.RequestPayload
	return l
}

// lambdaError summarises why Lambda gave up: condition, invocations, and the
// error of the last one.
func lambdaError(r LambdaDestinationRecord) string {
	head := r.RequestContext.Condition
	if n := r.RequestContext.ApproximateInvokeCount; n > 0 {
		head = joinNonEmpty(" ", head, fmt.Sprintf("after %d invocations", n))
	}
	var payload struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}
	var detail string
	if len(r.ResponsePayload) > 0 && json.Unmarshal(r.ResponsePayload, &payload) == nil {
		detail = joinNonEmpty(": ", payload.ErrorType, payload.ErrorMessage)
	}
	return joinNonEmpty(": ", head, r.ResponseContext.FunctionError, detail)
}

func decodeEventBridgeDLQ(body []byte, fields map[string]json.RawMessage, attrs map[string]string) Letter {
	if !looksLikeEvent(fields) {
		return unrecognized("has EventBridge dead-letter attributes but the body is not an EventBridge event")
	}
	orig := joinNonEmpty(": ", attrs[AttrEventBridgeErrorCode], attrs[AttrEventBridgeErrorMsg])
	var extra []string
	if c := attrs[AttrEventBridgeExhausted]; c != "" {
		extra = append(extra, c)
	}
	if n := attrs[AttrEventBridgeRetries]; n != "" {
		extra = append(extra, n+" retries")
	}
	if len(extra) > 0 {
		orig += " (" + strings.Join(extra, ", ") + ")"
	}
	return Letter{Shape: ShapeEventBridgeDLQ, Event: body, OriginalError: orig}
}

func hasEventBridgeAttrs(attrs map[string]string) bool {
	for _, name := range []string{AttrEventBridgeErrorCode, AttrEventBridgeRuleARN, AttrEventBridgeTargetARN} {
		if _, ok := attrs[name]; ok {
			return true
		}
	}
	return false
}

// looksLikeEvent reports whether an object has the envelope of an
// EventBridge event.
func looksLikeEvent(fields map[string]json.RawMessage) bool {
	return fields["detail-type"] != nil && fields["source"] != nil && fields["detail"] != nil
}

func stringField(fields map[string]json.RawMessage, name string) string {
	var s string
	if raw, ok := fields[name]; ok && json.Unmarshal(raw, &s) == nil {
		return s
	}
	return ""
}

func isJSONNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

func joinNonEmpty(sep string, parts ...string) string {
	var kept []string
	for _, p := range parts {
		if p != "" {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, sep)
}
