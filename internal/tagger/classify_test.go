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

// credentialsErr is how a failure to assume a member role reaches the
// handler: from the credentials provider, through the credentials cache and
// the KMS client's signing step, inside the TagResource error.
func credentialsErr(inner error) error {
	account := &tagger.AccountError{Account: "444455556666", RoleARN: "arn:aws:iam::444455556666:role/kms-autotagger-member", Err: inner}
	return fmt.Errorf("tagging key k: %w", &smithy.OperationError{ServiceID: "KMS", OperationName: "TagResource",
		Err: fmt.Errorf("get identity: %w", fmt.Errorf("failed to refresh cached credentials, %w", account))})
}

func stsErr(code string, status int) error {
	return &smithy.OperationError{ServiceID: "STS", OperationName: "AssumeRole", Err: &awshttp.ResponseError{
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
		{"assume role denied", credentialsErr(stsErr("AccessDenied", 403)), tagger.Permanent, "AssumeRoleFailed"},
		{"assume role invalid", credentialsErr(stsErr("ValidationError", 400)), tagger.Permanent, "AssumeRoleFailed"},
		{"assume role bad credentials answer", credentialsErr(errors.New("validate credentials, missing AccessKeyId")), tagger.Permanent, "AssumeRoleFailed"},
		{"assume role throttled", credentialsErr(stsErr("Throttling", 400)), tagger.Transient, "Throttling"},
		{"assume role 5xx", credentialsErr(stsErr("InternalFailure", 500)), tagger.Transient, "InternalFailure"},
		{"assume role network", credentialsErr(&smithy.OperationError{Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}), tagger.Transient, "NetworkError"},
		{"assume role deadline", credentialsErr(context.DeadlineExceeded), tagger.Transient, "DeadlineExceeded"},
		{"cross-account off", fmt.Errorf("kms client for account 444455556666 region us-east-1: %w",
			&tagger.AccountError{Account: "444455556666", Err: errors.New("cross-account tagging is off")}), tagger.Permanent, "CrossAccountOff"},
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
