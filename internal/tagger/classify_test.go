package tagger_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/kms-autotagger/kms-autotagger/internal/events"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

func apiErr(code string, status int) error {
	return &smithy.OperationError{ServiceID: "KMS", OperationName: "TagResource", Err: &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
			Err: &smithy.GenericAPIError{Code: code, Message: "m"}},
	}}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		wantClass tagger.Class
		wantCode  string
	}{
		{"internal", apiErr("KMSInternalException", 500), tagger.Transient, "KMSInternalException"},
		{"dependency timeout", apiErr("DependencyTimeoutException", 503), tagger.Transient, "DependencyTimeoutException"},
		{"throttling", apiErr("ThrottlingException", 400), tagger.Transient, "ThrottlingException"},
		{"unknown 5xx", apiErr("SomethingNew", 502), tagger.Transient, "SomethingNew"},
		{"invalid state", apiErr("KMSInvalidStateException", 400), tagger.Permanent, "KMSInvalidStateException"},
		{"tag exception", apiErr("TagException", 400), tagger.Permanent, "TagException"},
		{"limit exceeded", apiErr("LimitExceededException", 400), tagger.Permanent, "LimitExceededException"},
		{"invalid arn", apiErr("InvalidArnException", 400), tagger.Permanent, "InvalidArnException"},
		{"access denied", apiErr("AccessDeniedException", 400), tagger.Permanent, "AccessDeniedException"},
		{"not found", apiErr("NotFoundException", 400), tagger.Permanent, "NotFoundException"},
		{"wrapped twice", fmt.Errorf("tagging key k: %w", fmt.Errorf("x: %w", apiErr("NotFoundException", 400))), tagger.Permanent, "NotFoundException"},
		{"malformed event", fmt.Errorf("decoding: %w", &events.MalformedError{EventName: "CreateKey", Field: "responseElements.keyMetadata.arn"}), tagger.Permanent, "MalformedEvent"},
		{"deadline", fmt.Errorf("tagging: %w", context.DeadlineExceeded), tagger.Transient, "DeadlineExceeded"},
		{"connection reset", &smithy.OperationError{Err: &net.OpError{Op: "read", Err: errors.New("connection reset by peer")}}, tagger.Transient, "NetworkError"},
		{"unnamed", errors.New("something odd"), tagger.Transient, "Unknown"},
		{"no response (status 0)", &smithy.OperationError{Err: &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 0}}, Err: errors.New("request send failed")}}}, tagger.Transient, "Unknown"},
		{"4xx without code", &smithy.OperationError{Err: &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 403}}, Err: errors.New("forbidden")}}}, tagger.Permanent, "Unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			class, code := tagger.Classify(tt.err)
			if class != tt.wantClass || code != tt.wantCode {
				t.Errorf("got %v %q, want %v %q", class, code, tt.wantClass, tt.wantCode)
			}
		})
	}
}
