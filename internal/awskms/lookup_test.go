package awskms_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/kms-autotagger/kms-autotagger/internal/awskms"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// fakeSTS hands out credentials per role and counts the AssumeRole calls.
type fakeSTS struct {
	mu      sync.Mutex
	assumed []string
}

func (f *fakeSTS) AssumeRole(_ context.Context, in *sts.AssumeRoleInput, _ ...func(*sts.Options)) (*sts.AssumeRoleOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.assumed = append(f.assumed, aws.ToString(in.RoleArn))
	return &sts.AssumeRoleOutput{Credentials: &ststypes.Credentials{
		AccessKeyId: aws.String(fmt.Sprintf("ASIAMEMBER%d", len(f.assumed))), SecretAccessKey: aws.String("s"), SessionToken: aws.String("t"),
		Expiration: aws.Time(time.Now().Add(time.Hour)),
	}}, nil
}

func (f *fakeSTS) GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	return &sts.GetCallerIdentityOutput{Account: aws.String("111122223333")}, nil
}

// TestAccountConfig: the configuration of another account signs with the
// member role's credentials, cached with those of the account's KMS
// clients (one AssumeRole for both); the tagger's own account keeps the
// base configuration; the errors are KMSClient's.
func TestAccountConfig(t *testing.T) {
	base := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDHOME", "s", "")}
	fake := &fakeSTS{}
	a := awskms.NewAccountKMS(base, fake, awskms.AccountKMSOptions{HomeAccount: "111122223333", RoleName: "member", RolePath: "/kms-autotagger/"})
	ctx := context.Background()

	own, err := a.AccountConfig(ctx, "111122223333", "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := own.Credentials.Retrieve(ctx); c.AccessKeyID != "AKIDHOME" {
		t.Errorf("own account: got access key %s, want the base one", c.AccessKeyID)
	}
	cfg, err := a.AccountConfig(ctx, "444455556666", "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := cfg.Credentials.Retrieve(ctx)
	if err != nil || !strings.HasPrefix(c.AccessKeyID, "ASIAMEMBER") {
		t.Fatalf("member account: got %+v, %v; want the member role's credentials", c, err)
	}
	if _, err := a.KMSClient(ctx, "444455556666", "us-east-1"); err != nil {
		t.Fatal(err)
	}
	again, _ := a.AccountConfig(ctx, "444455556666", "us-west-2")
	if c2, _ := again.Credentials.Retrieve(ctx); c2.AccessKeyID != c.AccessKeyID {
		t.Errorf("second use: got access key %s, want the cached %s", c2.AccessKeyID, c.AccessKeyID)
	}
	if len(fake.assumed) != 1 || fake.assumed[0] != "arn:aws:iam::444455556666:role/kms-autotagger/member" {
		t.Errorf("AssumeRole: got %v, want one, of the member role", fake.assumed)
	}

	var accountErr *tagger.AccountError
	if _, err := a.AccountConfig(ctx, "not-an-account", "eu-west-1"); !errors.As(err, &accountErr) {
		t.Errorf("bad account: got %v, want an AccountError", err)
	}
	off := awskms.NewAccountKMS(base, fake, awskms.AccountKMSOptions{HomeAccount: "111122223333"})
	if _, err := off.AccountConfig(ctx, "444455556666", "eu-west-1"); !errors.As(err, &accountErr) || accountErr.RoleARN != "" {
		t.Errorf("cross-account off: got %v, want an AccountError with no role", err)
	}
	got, _ := (awskms.SingleAccount{Config: base}).AccountConfig(ctx, "444455556666", "eu-west-1")
	if c, _ := got.Credentials.Retrieve(ctx); c.AccessKeyID != "AKIDHOME" {
		t.Error("SingleAccount: want the one configuration for every account")
	}
}

// TestNewRateLimitAndLookupRetryer: a client of another service keeps to
// its own bucket, and an attempt that would wait past the deadline fails
// with a RateLimitError naming the service, which the lookup retryer does
// not retry.
func TestNewRateLimitAndLookupRetryer(t *testing.T) {
	var mu sync.Mutex
	var arrivals []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		n := len(arrivals)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if n == 1 {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"__type":"ThrottlingException","message":"Rate exceeded"}`)
			return
		}
		fmt.Fprint(w, "{}")
	}))
	t.Cleanup(srv.Close)
	client := kms.New(kms.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), Credentials: credentials.NewStaticCredentialsProvider("AKID", "S", ""),
		Retryer:    awskms.NewLookupRetryer(awskms.RetryOptions{MaxAttempts: 3, MaxBackoff: time.Millisecond}),
		APIOptions: []func(*middleware.Stack) error{awskms.NewRateLimit("CloudTrail", 5)},
	})
	ctx := context.Background()
	if _, err := client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("k")}); err != nil {
		t.Fatalf("throttled once: %v, want the retry to get through", err)
	}
	if len(arrivals) != 2 || arrivals[1].Sub(arrivals[0]) < 150*time.Millisecond {
		t.Errorf("attempts: got %d, %v apart; want 2, the retry waiting for its turn at 5 per second", len(arrivals), arrivals[len(arrivals)-1].Sub(arrivals[0]))
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, err := client.DescribeKey(short, &kms.DescribeKeyInput{KeyId: aws.String("k")})
	var limitErr *awskms.RateLimitError
	if !errors.As(err, &limitErr) || !strings.Contains(err.Error(), "waiting for the CloudTrail rate limit") || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("past the deadline: got %v, want a RateLimitError of CloudTrail", err)
	}
	if len(arrivals) != 2 {
		t.Errorf("attempts: got %d, want no third", len(arrivals))
	}
}
