package awsenv_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kms-autotagger/kms-autotagger/internal/awsenv"
)

// lambdaEnv is what the Lambda runtime sets for a function in eu-west-1.
var lambdaEnv = map[string]string{
	"AWS_REGION":            "eu-west-1",
	"AWS_DEFAULT_REGION":    "eu-west-1",
	"AWS_ACCESS_KEY_ID":     "ASIAEXAMPLEEXAMPLE01",
	"AWS_SECRET_ACCESS_KEY": "secret",
	"AWS_SESSION_TOKEN":     "token",
}

// with returns lambdaEnv with the given changes; "-" removes a variable.
func with(kv ...string) map[string]string {
	env := make(map[string]string, len(lambdaEnv)+len(kv)/2)
	for k, v := range lambdaEnv {
		env[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "-" {
			delete(env, kv[i])
			continue
		}
		env[kv[i]] = kv[i+1]
	}
	return env
}

// setEnv makes env the whole AWS_ part of the process environment (the
// other variables stay), with shared files that are empty, so that
// LoadDefaultConfig reads nothing from this machine's ~/.aws.
func setEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "AWS_") {
			t.Setenv(name, "") // restored after the test
			os.Unsetenv(name)  // unset, not empty: the SDK's clients tell the two apart
		}
	}
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// resolved is what a client made from a configuration does with it: where
// its requests go, how they are retried, and as whom.
type resolved struct {
	Endpoints   map[string]string
	Region      string
	MaxAttempts int
	RetryMode   aws.RetryMode
	AppID       string
	Credentials aws.Credentials
}

// resolve makes the KMS, SQS, STS and CloudTrail clients the function makes
// from cfg and reads what they resolved, with the SDK's own endpoint
// resolvers.
func resolve(t *testing.T, cfg aws.Config) resolved {
	t.Helper()
	ctx := context.Background()
	r := resolved{Endpoints: map[string]string{}, Region: cfg.Region, MaxAttempts: cfg.RetryMaxAttempts, RetryMode: cfg.RetryMode, AppID: cfg.AppID}
	fips := func(s aws.FIPSEndpointState) *bool { return aws.Bool(s == aws.FIPSEndpointStateEnabled) }
	dual := func(s aws.DualStackEndpointState) *bool { return aws.Bool(s == aws.DualStackEndpointStateEnabled) }
	endpoint := func(service string, uri string, err error) {
		if err != nil {
			r.Endpoints[service] = "error: " + err.Error()
			return
		}
		r.Endpoints[service] = uri
	}
	{
		o := kms.NewFromConfig(cfg).Options()
		e, err := o.EndpointResolverV2.ResolveEndpoint(ctx, kms.EndpointParameters{Region: aws.String(o.Region), UseFIPS: fips(o.EndpointOptions.UseFIPSEndpoint), UseDualStack: dual(o.EndpointOptions.UseDualStackEndpoint), Endpoint: o.BaseEndpoint})
		endpoint("kms", e.URI.String(), err)
	}
	{
		o := sqs.NewFromConfig(cfg).Options()
		e, err := o.EndpointResolverV2.ResolveEndpoint(ctx, sqs.EndpointParameters{Region: aws.String(o.Region), UseFIPS: fips(o.EndpointOptions.UseFIPSEndpoint), UseDualStack: dual(o.EndpointOptions.UseDualStackEndpoint), Endpoint: o.BaseEndpoint})
		endpoint("sqs", e.URI.String(), err)
	}
	{
		o := sts.NewFromConfig(cfg).Options()
		e, err := o.EndpointResolverV2.ResolveEndpoint(ctx, sts.EndpointParameters{Region: aws.String(o.Region), UseFIPS: fips(o.EndpointOptions.UseFIPSEndpoint), UseDualStack: dual(o.EndpointOptions.UseDualStackEndpoint), Endpoint: o.BaseEndpoint})
		endpoint("sts", e.URI.String(), err)
	}
	{
		o := cloudtrail.NewFromConfig(cfg).Options()
		e, err := o.EndpointResolverV2.ResolveEndpoint(ctx, cloudtrail.EndpointParameters{Region: aws.String(o.Region), UseFIPS: fips(o.EndpointOptions.UseFIPSEndpoint), UseDualStack: dual(o.EndpointOptions.UseDualStackEndpoint), Endpoint: o.BaseEndpoint})
		endpoint("cloudtrail", e.URI.String(), err)
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatalf("retrieving credentials: %v", err)
	}
	r.Credentials = creds
	return r
}

// TestLoadMatchesLoadDefaultConfig sets each environment in turn and checks
// that Load and config.LoadDefaultConfig fail together, or give clients that
// resolve the same endpoints, Region, retries, application id and
// credentials.
func TestLoadMatchesLoadDefaultConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr bool
	}{
		{"lambda", lambdaEnv, false},
		{"only AWS_DEFAULT_REGION", with("AWS_REGION", "-", "AWS_DEFAULT_REGION", "ap-southeast-2"), false},
		{"AWS_REGION over AWS_DEFAULT_REGION", with("AWS_DEFAULT_REGION", "us-east-1"), false},
		{"no Region", with("AWS_REGION", "-", "AWS_DEFAULT_REGION", "-"), false},
		{"China partition", with("AWS_REGION", "cn-north-1"), false},
		{"GovCloud", with("AWS_REGION", "us-gov-west-1"), false},
		{"no session token", with("AWS_SESSION_TOKEN", "-"), false},
		{"older key names", with("AWS_ACCESS_KEY_ID", "-", "AWS_SECRET_ACCESS_KEY", "-", "AWS_ACCESS_KEY", "AKIAOLDER", "AWS_SECRET_KEY", "oldsecret"), false},
		{"AWS_ACCOUNT_ID", with("AWS_ACCOUNT_ID", "111122223333"), false},
		{"AWS_ENDPOINT_URL", with("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"), false},
		{"AWS_ENDPOINT_URL_KMS", with("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:8081"), false},
		{"service endpoints", with("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:8081", "AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:9324", "AWS_ENDPOINT_URL_STS", "http://127.0.0.1:8082", "AWS_ENDPOINT_URL_CLOUDTRAIL", "http://127.0.0.1:8083"), false},
		{"global and service endpoints", with("AWS_ENDPOINT_URL", "http://127.0.0.1:4566", "AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:9324"), false},
		{"empty service endpoints, as template.yaml declares them", with("AWS_ENDPOINT_URL_KMS", "", "AWS_ENDPOINT_URL_SQS", "", "AWS_ENDPOINT_URL_STS", "", "AWS_ENDPOINT_URL_CLOUDTRAIL", ""), false},
		{"empty global endpoint and a service endpoint", with("AWS_ENDPOINT_URL", "", "AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:8081"), false},
		{"ignore configured endpoints", with("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", "AWS_ENDPOINT_URL", "http://127.0.0.1:4566", "AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:8081"), false},
		{"ignore configured endpoints false", with("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "FALSE", "AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:8081"), false},
		{"FIPS", with("AWS_USE_FIPS_ENDPOINT", "true"), false},
		{"FIPS in GovCloud", with("AWS_USE_FIPS_ENDPOINT", "True", "AWS_REGION", "us-gov-east-1"), false},
		{"FIPS off", with("AWS_USE_FIPS_ENDPOINT", "false"), false},
		{"dual-stack", with("AWS_USE_DUALSTACK_ENDPOINT", "true"), false},
		{"FIPS and dual-stack", with("AWS_USE_FIPS_ENDPOINT", "true", "AWS_USE_DUALSTACK_ENDPOINT", "true"), false},
		{"FIPS with an endpoint URL", with("AWS_USE_FIPS_ENDPOINT", "true", "AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:8081"), false},
		{"retries", with("AWS_MAX_ATTEMPTS", "7", "AWS_RETRY_MODE", "adaptive"), false},
		{"application id", with("AWS_SDK_UA_APP_ID", "kms-autotagger"), false},
		{"bad FIPS value", with("AWS_USE_FIPS_ENDPOINT", "yes"), true},
		{"bad dual-stack value", with("AWS_USE_DUALSTACK_ENDPOINT", "1"), true},
		{"bad ignore value", with("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "maybe"), true},
		{"bad attempts", with("AWS_MAX_ATTEMPTS", "many"), true},
		{"bad retry mode", with("AWS_RETRY_MODE", "eager"), true},
		{"missing CA bundle", with("AWS_CA_BUNDLE", "/nonexistent/ca.pem"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, tt.env)
			got, err := awsenv.Load()
			want, wantErr := awsconfig.LoadDefaultConfig(context.Background())
			if (err != nil) != tt.wantErr || (wantErr != nil) != tt.wantErr {
				t.Fatalf("got error %v from Load and %v from LoadDefaultConfig, want errors: %v", err, wantErr, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if g, w := resolve(t, got), resolve(t, want); !reflect.DeepEqual(g, w) {
				t.Errorf("clients from Load resolve\n%+v\nwant, as from LoadDefaultConfig,\n%+v", g, w)
			}
		})
	}
}

// TestLoadRefuses covers where Load parts from LoadDefaultConfig on
// purpose: it refuses a setting it would otherwise ignore, and an
// environment without credentials, naming the variables.
func TestLoadRefuses(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string // in the error
	}{
		{"AWS_PROFILE", with("AWS_PROFILE", "admin"), []string{"AWS_PROFILE=admin", "shared files"}},
		{"AWS_DEFAULT_PROFILE", with("AWS_DEFAULT_PROFILE", "admin"), []string{"AWS_DEFAULT_PROFILE=admin"}},
		{"CA bundle without a certificate", with("AWS_CA_BUNDLE", os.DevNull), []string{"AWS_CA_BUNDLE=" + os.DevNull, "no PEM certificate"}},
		{"AWS_DEFAULTS_MODE", with("AWS_DEFAULTS_MODE", "auto"), []string{"AWS_DEFAULTS_MODE=auto"}},
		{"no credentials", with("AWS_ACCESS_KEY_ID", "-", "AWS_SECRET_ACCESS_KEY", "-"), []string{"no AWS credentials", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}},
		{"no secret", with("AWS_SECRET_ACCESS_KEY", "-"), []string{"no AWS credentials"}},
		{"container credentials", with("AWS_ACCESS_KEY_ID", "-", "AWS_SECRET_ACCESS_KEY", "-", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9000/creds"), []string{"no AWS credentials", "AWS_CONTAINER_CREDENTIALS_FULL_URI is set"}},
		{"web identity", with("AWS_ACCESS_KEY_ID", "-", "AWS_SECRET_ACCESS_KEY", "-", "AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"), []string{"AWS_WEB_IDENTITY_TOKEN_FILE is set"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, tt.env)
			_, err := awsenv.Load()
			if err == nil {
				t.Fatalf("got no error, want one containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got error %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

// TestCABundle calls a TLS endpoint whose certificate only AWS_CA_BUNDLE
// vouches for, through a KMS client from Load and one from
// LoadDefaultConfig: both reach it with the bundle that holds the
// certificate, neither with a bundle that holds another.
func TestCABundle(t *testing.T) {
	kmsServer := func() *httptest.Server {
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			_, _ = w.Write([]byte(`{"Keys":[],"Truncated":false}`))
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	trusted := kmsServer()
	bundle := func(der []byte) string {
		name := filepath.Join(t.TempDir(), "ca.pem")
		b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		if err := os.WriteFile(name, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return name
	}
	// another is a self-signed CA certificate of a key of its own.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "another CA"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	another, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		bundle string
		wantOK bool
	}{
		{"bundle with the server's certificate", bundle(trusted.Certificate().Raw), true},
		{"bundle with another certificate", bundle(another), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, with("AWS_CA_BUNDLE", tt.bundle, "AWS_ENDPOINT_URL_KMS", trusted.URL, "AWS_MAX_ATTEMPTS", "1"))
			got, err := awsenv.Load()
			if err != nil {
				t.Fatal(err)
			}
			want, err := awsconfig.LoadDefaultConfig(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for name, cfg := range map[string]aws.Config{"Load": got, "LoadDefaultConfig": want} {
				_, err := kms.NewFromConfig(cfg).ListKeys(context.Background(), &kms.ListKeysInput{})
				if (err == nil) != tt.wantOK {
					t.Errorf("%s: ListKeys: got error %v, want success: %v", name, err, tt.wantOK)
				}
			}
		})
	}
}
