package awsenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go/logging"
)

// The variables Load reads; the names and rules are the SDK's
// (config.EnvConfig), which the Lambda runtime and `sam local invoke` set.
const (
	envAccessKeyID     = "AWS_ACCESS_KEY_ID"
	envAccessKey       = "AWS_ACCESS_KEY" // older spelling, read second
	envSecretAccessKey = "AWS_SECRET_ACCESS_KEY"
	envSecretKey       = "AWS_SECRET_KEY" // older spelling, read second
	envSessionToken    = "AWS_SESSION_TOKEN"
	envAccountID       = "AWS_ACCOUNT_ID"
	envRegion          = "AWS_REGION"
	envDefaultRegion   = "AWS_DEFAULT_REGION" // read when AWS_REGION is empty
	envEndpointURL     = "AWS_ENDPOINT_URL"   // every service; AWS_ENDPOINT_URL_<SERVICE> for one
	envIgnoreEndpoints = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"
	envUseFIPS         = "AWS_USE_FIPS_ENDPOINT"
	envUseDualStack    = "AWS_USE_DUALSTACK_ENDPOINT"
	envMaxAttempts     = "AWS_MAX_ATTEMPTS"
	envRetryMode       = "AWS_RETRY_MODE"
	envAppID           = "AWS_SDK_UA_APP_ID"
	envCABundle        = "AWS_CA_BUNDLE" // PEM file: the only authorities trusted
)

// refused are variables that change what config.LoadDefaultConfig does
// through a source Load does not read. Load refuses to start with one set
// rather than run with a configuration other than the one asked for.
var refused = []struct{ name, why string }{
	{"AWS_PROFILE", "profiles live in shared files, which the function does not read"},
	{"AWS_DEFAULT_PROFILE", "profiles live in shared files, which the function does not read"},
	{"AWS_DEFAULTS_MODE", "the function uses the SDK's legacy defaults"},
}

// credentialSources are variables naming a credential source other than the
// environment's keys; the SDK reads them only when the keys are absent, and
// Load then names them in its error.
var credentialSources = []string{
	"AWS_CONTAINER_CREDENTIALS_FULL_URI",
	"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	"AWS_WEB_IDENTITY_TOKEN_FILE",
}

// Load returns the AWS configuration the process environment describes:
// the Region, the static credentials Lambda sets from the execution role,
// and as sources for the SDK clients the endpoint, FIPS and dual-stack
// variables; retry mode, attempts, application id and a CA bundle too. It
// makes no network call. It fails, naming the variable, on a value the SDK
// would reject, on a variable from the refused list, and when there are no
// credentials in the environment.
func Load() (aws.Config, error) {
	for _, r := range refused {
		if v := os.Getenv(r.name); v != "" {
			return aws.Config{}, fmt.Errorf("%s=%s is set, but in Lambda the AWS configuration is read from the environment only: %s", r.name, v, r.why)
		}
	}
	src := source{}
	var err error
	if src.ignoreEndpoints, err = boolVar(envIgnoreEndpoints); err != nil {
		return aws.Config{}, err
	}
	if src.fips, err = stateVar(envUseFIPS, aws.FIPSEndpointStateEnabled, aws.FIPSEndpointStateDisabled); err != nil {
		return aws.Config{}, err
	}
	if src.dualStack, err = stateVar(envUseDualStack, aws.DualStackEndpointStateEnabled, aws.DualStackEndpointStateDisabled); err != nil {
		return aws.Config{}, err
	}
	cfg := aws.Config{
		Region:        first(envRegion, envDefaultRegion),
		Logger:        logging.NewStandardLogger(os.Stderr),
		AppID:         os.Getenv(envAppID),
		DefaultsMode:  aws.DefaultsModeLegacy,
		ConfigSources: []any{src},
	}
	if v := os.Getenv(envEndpointURL); v != "" && !(src.ignoreEndpoints != nil && *src.ignoreEndpoints) {
		cfg.BaseEndpoint = aws.String(v)
	}
	if v := os.Getenv(envMaxAttempts); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return aws.Config{}, fmt.Errorf("invalid value %s=%s: %w", envMaxAttempts, v, err)
		}
		cfg.RetryMaxAttempts = int(n)
	}
	if v := os.Getenv(envRetryMode); v != "" {
		if cfg.RetryMode, err = aws.ParseRetryMode(v); err != nil {
			return aws.Config{}, fmt.Errorf("invalid value %s=%s: %w", envRetryMode, v, err)
		}
	}
	if name := os.Getenv(envCABundle); name != "" {
		if cfg.HTTPClient, err = caBundleClient(name); err != nil {
			return aws.Config{}, err
		}
	}
	creds := aws.Credentials{
		AccessKeyID:     first(envAccessKeyID, envAccessKey),
		SecretAccessKey: first(envSecretAccessKey, envSecretKey),
		Source:          credentialsSource,
	}
	if !creds.HasKeys() {
		return aws.Config{}, missingCredentials()
	}
	creds.SessionToken = os.Getenv(envSessionToken)
	creds.AccountID = os.Getenv(envAccountID)
	cfg.Credentials = aws.NewCredentialsCache(credentials.StaticCredentialsProvider{Value: creds})
	return cfg, nil
}

// credentialsSource is the Source of the credentials Load returns, the name
// config.LoadDefaultConfig gives credentials read from the environment.
const credentialsSource = "EnvConfigCredentials"

// missingCredentials says there are no credentials in the environment, and
// which other source is configured, if one is.
func missingCredentials() error {
	msg := fmt.Sprintf("no AWS credentials in the environment: %s and %s, which Lambda sets from the function's execution role, are empty", envAccessKeyID, envSecretAccessKey)
	for _, name := range credentialSources {
		if os.Getenv(name) != "" {
			msg += fmt.Sprintf(" (%s is set, but in Lambda credentials are read from the environment only)", name)
			break
		}
	}
	return errors.New(msg)
}

// caBundleClient returns the SDK's default HTTP client trusting only the
// certificate authorities in the PEM file name, as LoadDefaultConfig makes
// it for AWS_CA_BUNDLE; unlike it, it fails at once when the file holds no
// certificate.
func caBundleClient(name string) (*awshttp.BuildableClient, error) {
	pem, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", envCABundle, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s=%s: no PEM certificate in the file", envCABundle, name)
	}
	return awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{}
		}
		tr.TLSClientConfig.RootCAs = pool
	}), nil
}

// first returns the value of the first of names that is set and not empty.
func first(names ...string) string {
	for _, name := range names {
		if v := os.Getenv(name); v != "" {
			return v
		}
	}
	return ""
}

// boolVar reads name as the SDK reads a boolean: true or false in any case;
// nil when unset or empty.
func boolVar(name string) (*bool, error) {
	v := os.Getenv(name)
	switch {
	case v == "":
		return nil, nil
	case strings.EqualFold(v, "true"):
		return aws.Bool(true), nil
	case strings.EqualFold(v, "false"):
		return aws.Bool(false), nil
	}
	return nil, fmt.Errorf("invalid value for environment variable, %s=%s, need true or false", name, v)
}

// stateVar reads name as a boolean into one of the SDK's three-state
// settings: on for true, off for false, the zero value (unset) when unset.
func stateVar[S ~uint](name string, on, off S) (S, error) {
	b, err := boolVar(name)
	switch {
	case err != nil || b == nil:
		return 0, err
	case *b:
		return on, nil
	}
	return off, nil
}

// source is the configuration source the SDK clients consult, through
// aws.Config.ConfigSources, for what they resolve per client: the
// service's own endpoint, FIPS and dual-stack endpoints. Its methods have
// the signatures of the SDK's config.EnvConfig methods of the same names.
type source struct {
	ignoreEndpoints *bool
	fips            aws.FIPSEndpointState
	dualStack       aws.DualStackEndpointState
}

// GetServiceBaseEndpoint returns AWS_ENDPOINT_URL_<SERVICE>, where SERVICE
// is the SDK's service id in upper case with spaces as underscores (KMS,
// SQS, STS, CLOUDTRAIL).
func (source) GetServiceBaseEndpoint(_ context.Context, sdkID string) (string, bool, error) {
	name := envEndpointURL + "_" + strings.ReplaceAll(strings.ToUpper(sdkID), " ", "_")
	v := os.Getenv(name)
	return v, v != "", nil
}

// GetIgnoreConfiguredEndpoints returns AWS_IGNORE_CONFIGURED_ENDPOINT_URLS:
// when true, no AWS_ENDPOINT_URL variable counts.
func (s source) GetIgnoreConfiguredEndpoints(context.Context) (bool, bool, error) {
	if s.ignoreEndpoints == nil {
		return false, false, nil
	}
	return *s.ignoreEndpoints, true, nil
}

// GetUseFIPSEndpoint returns AWS_USE_FIPS_ENDPOINT.
func (s source) GetUseFIPSEndpoint(context.Context) (aws.FIPSEndpointState, bool, error) {
	return s.fips, s.fips != aws.FIPSEndpointStateUnset, nil
}

// GetUseDualStackEndpoint returns AWS_USE_DUALSTACK_ENDPOINT.
func (s source) GetUseDualStackEndpoint(context.Context) (aws.DualStackEndpointState, bool, error) {
	return s.dualStack, s.dualStack != aws.DualStackEndpointStateUnset, nil
}
