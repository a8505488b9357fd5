package tagger

import (
	"encoding/json"
	"errors"
	"time"
)

// DeadLetterVersion is the version of the DeadLetter record format. It
// changes only when a field changes meaning or goes away.
const DeadLetterVersion = 1

// DeadLetterKind marks a message body as a record of this tool, so that a
// redrive can tell it from the other shapes that share the queue.
const DeadLetterKind = "kms-autotagger.dead-letter"

// Names of the SQS message attributes set on every dead letter.
const (
	AttrErrorCode = "ErrorCode"
	AttrEventName = "EventName"
	AttrVersion   = "RecordVersion"
)

// ErrNoDeadLetterQueue is returned when a permanent failure must be
// dead-lettered but no queue is configured: the handler then returns an
// error, so Lambda keeps the event.
var ErrNoDeadLetterQueue = errors.New("no dead-letter queue configured (DEAD_LETTER_QUEUE_URL)")

// DeadLetter is the record written to the dead-letter queue for an event
// that failed permanently. It holds what an operator needs to act and what a
// redrive needs to try again: the original event, untouched.
//
// Example:
//
//	{"version":1,"kind":"kms-autotagger.dead-letter","time":"2024-01-09T18:52:40Z",
//	 "requestId":"8c1f...","eventId":"c2ac...","eventName":"CreateKey",
//	 "keyArn":"arn:aws:kms:us-east-1:111122223333:key/1234abcd-...","region":"us-east-1",
//	 "account":"111122223333","tags":[{"key":"CreatedBy","value":"arn:aws:iam::111122223333:user/alice"}],
//	 "error":{"code":"KMSInvalidStateException","message":"... is pending deletion.","class":"permanent"},
//	 "attempts":1,"event":{"version":"0","source":"aws.kms",...}}
type DeadLetter struct {
	Version   int       `json:"version"`
	Kind      string    `json:"kind"`
	Time      time.Time `json:"time"`
	RequestID string    `json:"requestId,omitempty"`
	EventID   string    `json:"eventId,omitempty"`
	EventName string    `json:"eventName,omitempty"`
	KeyARN    string    `json:"keyArn,omitempty"`
	Region    string    `json:"region,omitempty"`
	Account   string    `json:"account,omitempty"`
	Tags      []Tag     `json:"tags,omitempty"`
	// Forged are the forged or creator-passed governance tag values the key
	// keeps (error code ForgedGovernanceTagsUncorrected).
	Forged   []Tag           `json:"forged,omitempty"`
	Error    DeadLetterError `json:"error"`
	Attempts int             `json:"attempts"`
	// Event is the event as the handler received it, when it is JSON.
	Event json.RawMessage `json:"event,omitempty"`
	// EventText is the event as the handler received it, when it is not
	// JSON.
	EventText string `json:"eventText,omitempty"`
}

// DeadLetterError says why the event failed.
type DeadLetterError struct {
	// Code is the AWS error code, or one of this package's codes.
	Code string `json:"code"`
	// Message is the short reason: the API's own message where there is one.
	Message string `json:"message"`
	// Detail is the whole error, with the context of every step.
	Detail string `json:"detail,omitempty"`
	// Class is "permanent".
	Class string `json:"class"`
}
