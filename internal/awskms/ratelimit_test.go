package awskms_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/kms-autotagger/kms-autotagger/internal/awskms"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// timedKMS answers TagResource on the KMS JSON protocol, with
// ThrottlingException for the first throttled requests and success after,
// and records when each request arrived.
type timedKMS struct {
	srv       *httptest.Server
	mu        sync.Mutex
	arrivals  []time.Time
	throttled int
}

func newTimedKMS(t *testing.T, throttled int) *timedKMS {
	t.Helper()
	k := &timedKMS{throttled: throttled}
	k.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.mu.Lock()
		k.arrivals = append(k.arrivals, time.Now())
		n := len(k.arrivals)
		k.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if n <= k.throttled {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"__type":"ThrottlingException","message":"Rate exceeded"}`)
			return
		}
		fmt.Fprint(w, "{}")
	}))
	t.Cleanup(k.srv.Close)
	return k
}

func (k *timedKMS) client(optFns ...func(*kms.Options)) *kms.Client {
	return kms.New(kms.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(k.srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		Retryer:      awskms.NewRetryer(awskms.RetryOptions{MaxAttempts: 5, MaxBackoff: time.Millisecond, NotFoundAttempts: 2}),
	}, optFns...)
}

func (k *timedKMS) times() []time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]time.Time(nil), k.arrivals...)
}

// keyARN is the key the scripted KMS servers are asked to tag.
const keyARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

func tagOnce(ctx context.Context, c *kms.Client) error {
	_, err := c.TagResource(ctx, &kms.TagResourceInput{
		KeyId: aws.String(keyARN), Tags: []kmstypes.Tag{{TagKey: aws.String("k"), TagValue: aws.String("v")}},
	})
	return err
}

// TestWithRateLimitSpacesAttempts: calls and the retries within them are
// spaced by the limit, as the server sees them.
func TestWithRateLimitSpacesAttempts(t *testing.T) {
	const perSecond = 20.0
	interval := time.Duration(float64(time.Second) / perSecond)
	tests := []struct {
		name      string
		calls     int
		throttled int // requests answered with ThrottlingException first
	}{
		{"calls", 6, 0},
		{"retries within one call", 1, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newTimedKMS(t, tt.throttled)
			c := k.client(awskms.WithRateLimit(perSecond))
			for range tt.calls {
				if err := tagOnce(context.Background(), c); err != nil {
					t.Fatalf("TagResource: %v", err)
				}
			}
			got := k.times()
			if want := tt.calls + tt.throttled; len(got) != want {
				t.Fatalf("requests: got %d, want %d", len(got), want)
			}
			// A bucket of one token sends n requests over at least n-1
			// intervals; generous, since the server sees them after
			// varying network and scheduling delays.
			span, want := got[len(got)-1].Sub(got[0]), time.Duration(len(got)-1)*interval
			if span < want*8/10 {
				t.Errorf("%d requests arrived within %v, want them spread over about %v", len(got), span, want)
			}
		})
	}
}

// TestWithRateLimitDeadline: an attempt whose turn would come after its
// deadline is not sent and not retried, and the failure is transient.
func TestWithRateLimitDeadline(t *testing.T) {
	k := newTimedKMS(t, 0)
	c := k.client(awskms.WithRateLimit(0.5))
	if err := tagOnce(context.Background(), c); err != nil {
		t.Fatalf("first TagResource: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := tagOnce(ctx, c)
	var limitErr *awskms.RateLimitError
	if !errors.As(err, &limitErr) || limitErr.PerSecond != 0.5 {
		t.Fatalf("second TagResource: got %v, want a *RateLimitError of 0.5 per second", err)
	}
	if class, code := tagger.Classify(err); class != tagger.Transient || code != tagger.CodeDeadlineExceeded {
		t.Errorf("Classify: got %v %s, want transient %s", class, code, tagger.CodeDeadlineExceeded)
	}
	if n := len(k.times()); n != 1 {
		t.Errorf("requests: got %d, want 1 (the second call must not be sent)", n)
	}
}

// TestWithRateLimitPerClient: every client gets its own bucket, and a
// limit of 0 (or less) limits nothing.
func TestWithRateLimitPerClient(t *testing.T) {
	tests := []struct {
		name     string
		shared   bool // both calls on one client
		limit    float64
		wantSent int
	}{
		{"two clients, one option", false, 0.5, 2},
		{"one client", true, 0.5, 1},
		{"no limit", true, 0, 2},
		{"negative is no limit", true, -1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newTimedKMS(t, 0)
			opt := awskms.WithRateLimit(tt.limit)
			a := k.client(opt)
			b := a
			if !tt.shared {
				b = k.client(opt)
			}
			if err := tagOnce(context.Background(), a); err != nil {
				t.Fatalf("first TagResource: %v", err)
			}
			// With a shared bucket of 0.5 per second the second call's turn
			// is 2 s away, past this deadline.
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = tagOnce(ctx, b)
			if got := len(k.times()); got != tt.wantSent {
				t.Errorf("requests sent: got %d, want %d", got, tt.wantSent)
			}
		})
	}
}

// TestWithRateLimitOnlyWrites: the limit is per write operation; the reads
// the handler makes before writing are not held back, and UntagResource
// has a bucket of its own.
func TestWithRateLimitOnlyWrites(t *testing.T) {
	k := newTimedKMS(t, 0)
	c := k.client(awskms.WithRateLimit(0.5))
	if err := tagOnce(context.Background(), c); err != nil {
		t.Fatalf("TagResource: %v", err)
	}
	// TagResource's next turn is 2 s away, past this deadline; the others
	// go at once.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyARN)}); err != nil {
		t.Errorf("DescribeKey: got %v, want no wait", err)
	}
	if _, err := c.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(keyARN)}); err != nil {
		t.Errorf("ListResourceTags: got %v, want no wait", err)
	}
	if _, err := c.UntagResource(ctx, &kms.UntagResourceInput{KeyId: aws.String(keyARN), TagKeys: []string{"k"}}); err != nil {
		t.Errorf("UntagResource: got %v, want its own bucket", err)
	}
	var limitErr *awskms.RateLimitError
	if err := tagOnce(ctx, c); !errors.As(err, &limitErr) {
		t.Errorf("second TagResource: got %v, want a *RateLimitError", err)
	}
	if got := len(k.times()); got != 4 {
		t.Errorf("requests sent: got %d, want 4", got)
	}
}
