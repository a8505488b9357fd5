package tagger_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// scriptedKMS answers TagResource with the KMS JSON-protocol errors in
// script, one per request, then succeeds. It tests retry classification
// only; the integration tests use local-kms.
func scriptedKMS(t *testing.T, script ...string) (*kms.Client, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(calls.Add(1))
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if n > len(script) {
			w.WriteHeader(http.StatusOK)
			fmt.Fprint(w, "{}")
			return
		}
		status := http.StatusBadRequest
		if script[n-1] == "KMSInternalException" {
			status = http.StatusInternalServerError
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"__type":%q,"message":"scripted"}`, script[n-1])
	}))
	t.Cleanup(srv.Close)
	client := kms.New(kms.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		Retryer:      tagger.NewRetryer(tagger.RetryOptions{MaxAttempts: 4, MaxBackoff: time.Millisecond, NotFoundAttempts: 2}),
	})
	return client, &calls
}

func TestRetryer(t *testing.T) {
	repeat := func(code string, n int) []string {
		s := make([]string, n)
		for i := range s {
			s[i] = code
		}
		return s
	}
	tests := []struct {
		name      string
		script    []string
		wantCalls int32
		wantCode  string // "" for success
	}{
		{"internal then success", repeat("KMSInternalException", 2), 3, ""},
		{"throttling then success", repeat("ThrottlingException", 3), 4, ""},
		{"internal never recovers", repeat("KMSInternalException", 10), 4, "KMSInternalException"},
		{"limit exceeded not retried", repeat("LimitExceededException", 10), 1, "LimitExceededException"},
		{"invalid state not retried", repeat("KMSInvalidStateException", 10), 1, "KMSInvalidStateException"},
		{"not found retried briefly", repeat("NotFoundException", 10), 2, "NotFoundException"},
		{"not found then visible", repeat("NotFoundException", 1), 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, calls := scriptedKMS(t, tt.script...)
			_, err := client.TagResource(context.Background(), &kms.TagResourceInput{
				KeyId: aws.String(keyARN), Tags: []kmstypes.Tag{{TagKey: aws.String("k"), TagValue: aws.String("v")}},
			})
			if got := calls.Load(); got != tt.wantCalls {
				t.Errorf("calls: got %d, want %d", got, tt.wantCalls)
			}
			var code string
			if err != nil {
				_, code = tagger.Classify(err)
			}
			if code != tt.wantCode {
				t.Errorf("error code: got %q (err %v), want %q", code, err, tt.wantCode)
			}
		})
	}
}
