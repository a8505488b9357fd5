package cfn_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
)

// The templates and samples, from this package's directory.
const (
	templatePath  = "../../template.yaml"
	forwarderPath = "../../deploy/region-forwarder.yaml"
	memberPath    = "../../deploy/member-role.yaml"
	busPolicyPath = "../../deploy/central-bus-policy.yaml"
	scpPath       = "../../deploy/governance-scp.yaml"
	keyPolicyPath = "../../deploy/key-policy-statement.yaml"
	eventsDir     = "../../events"
	samTransform  = "../../tools/samtransform.py"
)

// The accounts and region the stacks are deployed in.
const (
	// centralAccount is the tagger's account, the one of the samples in
	// events/ and the one moto's credentials act in.
	centralAccount = localaws.DefaultAccount
	// memberAccount is another account of the organization.
	memberAccount = "444455556666"
	// homeRegion is the tagger's region.
	homeRegion = "us-east-1"
)

// codeKey is the S3 key of the placeholder function code, in the bucket
// codeBucket of each account.
const codeKey = "kms-autotagger/bootstrap.zip"

func codeBucket(account string) string { return "kms-autotagger-code-" + account }

// shared holds what the tests of this binary share: one moto server and one
// translator process, each started by the first test that needs it and
// stopped by TestMain.
var shared struct {
	motoOnce sync.Once
	moto     *localaws.Moto
	motoErr  error

	sam samTranslator

	mu      sync.Mutex
	code    map[string]string // account -> base64 SHA-256 of the uploaded code
	stacks  map[string]*stack // stackSpec.key() -> its stack
	created int               // stacks created, for their names
	buses   int               // buses of routers, for their names
}

func TestMain(m *testing.M) {
	code := m.Run()
	var errs []error
	if shared.moto != nil {
		errs = append(errs, shared.moto.Close())
	}
	errs = append(errs, shared.sam.close())
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(os.Stderr, "cfn tests:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// motoServer returns the shared moto server, starting it on first use.
func motoServer(t testing.TB) *localaws.Moto {
	t.Helper()
	shared.motoOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared.moto, shared.motoErr = localaws.StartMoto(ctx, localaws.MotoOptions{})
	})
	if shared.motoErr != nil {
		t.Fatalf("start moto: %v", shared.motoErr)
	}
	return shared.moto
}

// accountHeader sends every request as one of account, with the header moto
// documents for choosing the account of a request.
type accountHeader struct {
	account string
	next    http.RoundTripper
}

func (h accountHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("x-moto-account-id", h.account)
	return h.next.RoundTrip(r)
}

// awsConfig returns a configuration for clients of moto acting in account
// and region.
func awsConfig(t testing.TB, account, region string) aws.Config {
	t.Helper()
	cfg := motoServer(t).Config(region)
	cfg.HTTPClient = &http.Client{Transport: accountHeader{account: account, next: http.DefaultTransport}}
	return cfg
}

// placeholderCode returns a zip holding a bootstrap that is never run: the
// function's code as `sam package` would have uploaded it.
func placeholderCode(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	f, err := w.Create("bootstrap")
	if err == nil {
		_, err = f.Write([]byte("#!/bin/sh\necho placeholder\n"))
	}
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// codeURI is where `sam package` would have put the function's code for a
// stack in account.
func codeURI(account string) string { return "s3://" + codeBucket(account) + "/" + codeKey }

// uploadCode puts the placeholder code at codeURI(account) in moto once per
// account and returns the code's SHA-256 as Lambda reports it (base64).
func uploadCode(t testing.TB, account string) (sha string) {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if sha, ok := shared.code[account]; ok {
		return sha
	}
	ctx := context.Background()
	client := s3.NewFromConfig(awsConfig(t, account, homeRegion), func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(codeBucket(account))}); err != nil {
		t.Fatalf("create the code bucket in %s: %v", account, err)
	}
	code := placeholderCode(t)
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(codeBucket(account)), Key: aws.String(codeKey), Body: bytes.NewReader(code),
	}); err != nil {
		t.Fatalf("upload the code in %s: %v", account, err)
	}
	sum := sha256.Sum256(code)
	sha = base64.StdEncoding.EncodeToString(sum[:])
	if shared.code == nil {
		shared.code = map[string]string{}
	}
	shared.code[account] = sha
	return sha
}
