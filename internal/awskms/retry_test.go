package awskms_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/kms-autotagger/kms-autotagger/internal/awskms"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// retryOptions are the options of every retryer in these tests.
var retryOptions = awskms.RetryOptions{MaxAttempts: 4, MaxBackoff: time.Millisecond, NotFoundAttempts: 2}

// plainRetryer is the SDK's standard retryer with the same attempts and
// backoff: each of NewRetryer's additions is tested by a case it fails.
func plainRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = retryOptions.MaxAttempts
		o.MaxBackoff = retryOptions.MaxBackoff
	})
}

// statusOf is the HTTP status KMS answers each error code with (KMS API
// reference, "Errors" of TagResource).
var statusOf = map[string]int{
	"KMSInternalException":       http.StatusInternalServerError,
	"DependencyTimeoutException": http.StatusServiceUnavailable,
}

// scriptedKMS answers TagResource with the KMS JSON-protocol errors in
// script, one per request, then succeeds; forever, when forever is set, it
// answers the last entry. It tests retry classification only; the
// integration tests use local-kms.
func scriptedKMS(t *testing.T, retryer aws.Retryer, forever bool, script []string, optFns ...func(*kms.Options)) (*kms.Client, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(calls.Add(1))
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if n > len(script) && !forever {
			w.WriteHeader(http.StatusOK)
			fmt.Fprint(w, "{}")
			return
		}
		code := script[min(n, len(script))-1]
		status, ok := statusOf[code]
		if !ok {
			status = http.StatusBadRequest
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"__type":%q,"message":"scripted"}`, code)
	}))
	t.Cleanup(srv.Close)
	client := kms.New(kms.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		Retryer:      retryer,
	}, optFns...)
	return client, &calls
}

// tagWithRetryer makes one TagResource call and returns its error code ("" for
// success).
func tagWithRetryer(ctx context.Context, client *kms.Client) (string, error) {
	_, err := client.TagResource(ctx, &kms.TagResourceInput{
		KeyId: aws.String(keyARN), Tags: []kmstypes.Tag{{TagKey: aws.String("k"), TagValue: aws.String("v")}},
	})
	if err == nil {
		return "", nil
	}
	_, code := tagger.Classify(err)
	return code, err
}

func repeat(code string, n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = code
	}
	return s
}

func TestRetryer(t *testing.T) {
	tests := []struct {
		name      string
		script    []string
		wantCalls int32
		wantCode  string // "" for success
		// plainCalls is what the plain standard retryer does with the same
		// script; it differs from wantCalls exactly where NewRetryer adds
		// something.
		plainCalls int32
	}{
		// The standard retryer's own behaviour, kept.
		{"internal (500) then success", repeat("KMSInternalException", 2), 3, "", 3},
		{"dependency timeout (503) then success", repeat("DependencyTimeoutException", 1), 2, "", 2},
		{"throttling then success", repeat("ThrottlingException", 3), 4, "", 4},
		{"internal never recovers", repeat("KMSInternalException", 10), 4, "KMSInternalException", 4},
		{"invalid state not retried", repeat("KMSInvalidStateException", 10), 1, "KMSInvalidStateException", 1},
		// NewRetryer's additions.
		{"limit exceeded not retried", repeat("LimitExceededException", 10), 1, "LimitExceededException", 4},
		{"not found retried briefly", repeat("NotFoundException", 10), 2, "NotFoundException", 1},
		{"not found then visible", repeat("NotFoundException", 1), 2, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, calls := scriptedKMS(t, awskms.NewRetryer(retryOptions), false, tt.script)
			code, err := tagWithRetryer(context.Background(), client)
			if got := calls.Load(); got != tt.wantCalls {
				t.Errorf("calls: got %d, want %d", got, tt.wantCalls)
			}
			if code != tt.wantCode {
				t.Errorf("error code: got %q (err %v), want %q", code, err, tt.wantCode)
			}

			plain, plainCalls := scriptedKMS(t, plainRetryer(), false, tt.script)
			_, _ = tagWithRetryer(context.Background(), plain)
			if got := plainCalls.Load(); got != tt.plainCalls {
				t.Errorf("calls with the plain standard retryer: got %d, want %d", got, tt.plainCalls)
			}
		})
	}
}

// TestRetryerHasNoRetryQuota makes calls that never succeed, 20 in a row on
// one client: every call gets all its attempts. The plain standard
// retryer's quota (500 tokens, 14 a retry) runs out after a dozen calls,
// and later calls get one attempt.
func TestRetryerHasNoRetryQuota(t *testing.T) {
	const ops = 20
	for _, tt := range []struct {
		name    string
		retryer aws.Retryer
		check   func(t *testing.T, calls int32)
	}{
		{"NewRetryer", awskms.NewRetryer(retryOptions), func(t *testing.T, calls int32) {
			if want := int32(ops * retryOptions.MaxAttempts); calls != want {
				t.Errorf("calls: got %d, want %d (every call retried to MaxAttempts)", calls, want)
			}
		}},
		{"plain standard", plainRetryer(), func(t *testing.T, calls int32) {
			if limit := int32(ops * retryOptions.MaxAttempts); calls >= limit {
				t.Errorf("calls: got %d, want fewer than %d (the retry quota runs out)", calls, limit)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			client, calls := scriptedKMS(t, tt.retryer, true, []string{"KMSInternalException"})
			for range ops {
				if code, _ := tagWithRetryer(context.Background(), client); code == "" {
					t.Fatal("TagResource succeeded, want KMSInternalException")
				}
			}
			tt.check(t, calls.Load())
		})
	}
}

// TestRetryerDoesNotRetryRateLimit spends the one token of a client-side
// rate limit of one call a minute, then makes a call whose turn would come
// after its deadline: it fails after one attempt with the *RateLimitError.
// The plain standard retryer takes the context.DeadlineExceeded it wraps for
// a temporary error and tries again, to MaxAttempts.
func TestRetryerDoesNotRetryRateLimit(t *testing.T) {
	for _, tt := range []struct {
		name         string
		retryer      aws.Retryer
		wantAttempts int32
	}{
		{"NewRetryer", awskms.NewRetryer(retryOptions), 1},
		{"plain standard", plainRetryer(), int32(retryOptions.MaxAttempts)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var attempts atomic.Int32
			countAttempts := func(o *kms.Options) {
				o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
					return s.Finalize.Insert(middleware.FinalizeMiddlewareFunc("CountAttempts",
						func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
							attempts.Add(1)
							return next.HandleFinalize(ctx, in)
						}), "Retry", middleware.After)
				})
			}
			client, _ := scriptedKMS(t, tt.retryer, false, nil, awskms.WithRateLimit(1.0/60), countAttempts)
			if code, err := tagWithRetryer(context.Background(), client); code != "" {
				t.Fatalf("first call: %v", err)
			}
			attempts.Store(0)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, err := tagWithRetryer(ctx, client)
			var limitErr *awskms.RateLimitError
			if !errors.As(err, &limitErr) {
				t.Fatalf("second call: got %v, want a *RateLimitError", err)
			}
			if got := attempts.Load(); got != tt.wantAttempts {
				t.Errorf("attempts: got %d, want %d", got, tt.wantAttempts)
			}
		})
	}
}
