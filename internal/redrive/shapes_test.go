package redrive_test

import (
	"strings"
	"testing"

	"github.com/kms-autotagger/kms-autotagger/internal/redrive"
)

const ebEvent = `{"version":"0","id":"6a7e8feb-b491-4cf7-a9f1-bf3703467718","detail-type":"AWS API Call via CloudTrail","source":"aws.kms","account":"111122223333","time":"2024-01-09T18:52:34Z","region":"us-east-1","resources":[],"detail":{"eventName":"CreateKey","eventID":"e1"}}`

func TestRedriveDecode(t *testing.T) {
	ebAttrs := map[string]string{
		"ERROR_CODE": "NO_PERMISSIONS", "ERROR_MESSAGE": "not authorized", "RULE_ARN": ruleARN, "TARGET_ARN": fnARN,
		"EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts", "RETRY_ATTEMPTS": "185",
	}
	tests := []struct {
		name      string
		body      string
		attrs     map[string]string
		wantShape redrive.Shape
		wantEvent bool   // an event to redrive
		wantOrig  string // substring of OriginalError
		wantProb  string // substring of Problem
		wantKey   string
	}{
		{"handler record", `{"version":1,"kind":"kms-autotagger.dead-letter","eventId":"e1","eventName":"CreateKey","keyArn":"arn:aws:kms:us-east-1:111122223333:key/k","error":{"code":"KMSInvalidStateException","message":"tagging key: KMSInvalidStateException: is pending deletion.","class":"permanent"},"attempts":1,"event":` + ebEvent + `}`,
			nil, redrive.ShapeHandlerRecord, true, "KMSInvalidStateException: is pending deletion.", "", "arn:aws:kms:us-east-1:111122223333:key/k"},
		{"handler record of a text event", `{"version":1,"kind":"kms-autotagger.dead-letter","error":{"code":"MalformedEvent","message":"not JSON","class":"permanent"},"attempts":0,"eventText":"{\"version\":"}`,
			nil, redrive.ShapeHandlerRecord, false, "MalformedEvent: not JSON", "not JSON", ""},
		{"handler record without an event", `{"version":1,"kind":"kms-autotagger.dead-letter","error":{"code":"X","message":"y","class":"permanent"},"attempts":0}`,
			nil, redrive.ShapeHandlerRecord, false, "X: y", "no event", ""},
		{"handler record of a later version", `{"version":2,"kind":"kms-autotagger.dead-letter","event":` + ebEvent + `}`,
			nil, redrive.ShapeUnrecognized, false, "", "version 2", ""},
		{"lambda destination", `{"version":"1.0","timestamp":"2024-01-09T19:01:12.345Z","requestContext":{"requestId":"r","functionArn":"` + fnARN + `:$LATEST","condition":"EventAgeExceeded","approximateInvokeCount":2},"requestPayload":` + ebEvent + `,"responseContext":{"statusCode":200,"executedVersion":"$LATEST","functionError":"Unhandled"},"responsePayload":{"errorMessage":"transient failure","errorType":"wrapError"}}`,
			nil, redrive.ShapeLambdaDestination, true, "EventAgeExceeded after 2 invocations: Unhandled: wrapError: transient failure", "", ""},
		{"lambda destination without a response", `{"version":"1.0","timestamp":"t","requestContext":{"requestId":"r","functionArn":"f","condition":"EventAgeExceeded","approximateInvokeCount":0},"requestPayload":` + ebEvent + `}`,
			nil, redrive.ShapeLambdaDestination, true, "EventAgeExceeded", "", ""},
		{"lambda destination with a null payload", `{"version":"1.0","requestContext":{"functionArn":"f","condition":"RetriesExhausted"},"requestPayload":null}`,
			nil, redrive.ShapeLambdaDestination, false, "RetriesExhausted", "null", ""},
		{"lambda-like record of another version", `{"version":"2.0","requestContext":{"functionArn":"f"},"requestPayload":{}}`,
			nil, redrive.ShapeUnrecognized, false, "", "version 1.0", ""},
		{"undelivered event", ebEvent, ebAttrs, redrive.ShapeEventBridgeDLQ, true,
			"NO_PERMISSIONS: not authorized (MaximumRetryAttempts, 185 retries)", "", ""},
		{"undelivered non-event", `{"hello":"world"}`, ebAttrs, redrive.ShapeUnrecognized, false, "", "not an EventBridge event", ""},
		{"event without EventBridge attributes", ebEvent, map[string]string{"ErrorCode": "x"}, redrive.ShapeUnrecognized, false, "", "without the ERROR_CODE", ""},
		{"not JSON", "please tag key 1234", nil, redrive.ShapeUnrecognized, false, "", "not JSON", ""},
		{"JSON array", `[1,2]`, nil, redrive.ShapeUnrecognized, false, "", "not an object", ""},
		{"other object", `{"Records":[]}`, nil, redrive.ShapeUnrecognized, false, "", "not a kms-autotagger.dead-letter record", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := redrive.Decode(tt.body, tt.attrs)
			if l.Shape != tt.wantShape {
				t.Errorf("shape: got %s, want %s (problem %q)", l.Shape, tt.wantShape, l.Problem)
			}
			if got := l.Event != nil; got != tt.wantEvent {
				t.Errorf("has event: got %v, want %v", got, tt.wantEvent)
			}
			if tt.wantEvent && !strings.Contains(string(l.Event), `"detail-type"`) {
				t.Errorf("event: got %s, want the EventBridge event", l.Event)
			}
			if !strings.Contains(l.OriginalError, tt.wantOrig) {
				t.Errorf("original error: got %q, want it to contain %q", l.OriginalError, tt.wantOrig)
			}
			if tt.wantProb == "" && l.Problem != "" || !strings.Contains(l.Problem, tt.wantProb) {
				t.Errorf("problem: got %q, want %q", l.Problem, tt.wantProb)
			}
			if l.KeyARN != tt.wantKey {
				t.Errorf("key: got %q, want %q", l.KeyARN, tt.wantKey)
			}
		})
	}
}
