package localaws

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// motoListeningLine is the line moto's server (werkzeug) prints once it
// listens; with port 0 it names the port the kernel picked.
var motoListeningLine = regexp.MustCompile(`Running on http://127\.0\.0\.1:(\d+)`)

// MotoOptions configures StartMoto.
type MotoOptions struct {
	// Account is the account that Credentials act in; DefaultAccount when
	// empty.
	Account string
	// Output, when set, receives a copy of the server's stdout and stderr.
	Output io.Writer
	// StartTimeout bounds the start; DefaultStartTimeout when zero.
	StartTimeout time.Duration
}

// Moto is a running moto server (the pinned Python package in
// tools/requirements.txt, from the venv `make tools` makes) on 127.0.0.1.
// One process serves every service moto implements, SQS, STS, EventBridge,
// S3, IAM, Organizations and CloudTrail's trail APIs among them, at one
// endpoint; an sts:AssumeRole into another account's role gives
// credentials that moto then serves as that account.
type Moto struct {
	proc    *process
	url     string
	account string
	creds   credentials.StaticCredentialsProvider
	dir     string

	closeOnce sync.Once
	closeErr  error
}

// StartMoto runs `python -m moto.server` from the tools venv on a port the
// kernel picks and waits until it answers. ctx bounds the start only; the
// server runs until Stop or Close.
//
// Every account's data lives in the server's memory and is lost when it
// stops.
func StartMoto(ctx context.Context, opts MotoOptions) (*Moto, error) {
	account := opts.Account
	if account == "" {
		account = DefaultAccount
	}
	if !accountPattern.MatchString(account) {
		return nil, fmt.Errorf("start moto: account %q is not 12 digits", account)
	}
	python, err := VenvPython()
	if err != nil {
		return nil, fmt.Errorf("start moto: %w", err)
	}
	dir, err := os.MkdirTemp("", "localaws-moto-")
	if err != nil {
		return nil, fmt.Errorf("start moto: %w", err)
	}
	var out io.Writer
	if opts.Output != nil {
		out = &prefixWriter{mu: new(sync.Mutex), w: opts.Output, prefix: "[moto] "}
	}
	p, match, err := startProcess(ctx, procSpec{
		name: "moto",
		path: python,
		args: []string{"-m", "moto.server", "-H", "127.0.0.1", "-p", "0"},
		// MOTO_ACCOUNT_ID would pin every request to one account and undo
		// AssumeRole's account switching, so it is never passed on.
		env:       mergeEnv(unsetEnv(os.Environ(), "MOTO_ACCOUNT_ID"), "PYTHONUNBUFFERED=1"),
		dir:       dir,
		logFile:   filepath.Join(dir, "moto.log"),
		output:    out,
		timeout:   opts.StartTimeout,
		readyLine: motoListeningLine,
		probe: func(ctx context.Context, m []string) error {
			return httpProbe(ctx, "http://"+hostPort(atoiOrZero(m[1]))+"/moto-api/data.json")
		},
	})
	if err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	m := &Moto{proc: p, url: "http://" + hostPort(atoiOrZero(match[1])), account: account, dir: dir}
	if m.creds, err = m.accountUser(ctx, account); err != nil {
		return nil, errors.Join(fmt.Errorf("start moto: %w", err), m.Close())
	}
	return m, nil
}

// motoAccessKey is the part of IAM's CreateAccessKey response accountUser reads.
type motoAccessKey struct {
	AccessKeyID     string `xml:"CreateAccessKeyResult>AccessKey>AccessKeyId"`
	SecretAccessKey string `xml:"CreateAccessKeyResult>AccessKey>SecretAccessKey"`
}

// accountUser creates an IAM user with an access key in account and returns
// the key. moto serves a request in the account whose IAM holds its access
// key (and in its built-in 123456789012 otherwise); the header
// x-moto-account-id, moto's documented way to address an account, places
// the user.
func (m *Moto) accountUser(ctx context.Context, account string) (credentials.StaticCredentialsProvider, error) {
	const user = "localaws"
	var key motoAccessKey
	for _, form := range []url.Values{
		{"Action": {"CreateUser"}, "UserName": {user}, "Version": {"2010-05-08"}},
		{"Action": {"CreateAccessKey"}, "UserName": {user}, "Version": {"2010-05-08"}},
	} {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.url+"/", strings.NewReader(form.Encode()))
		if err != nil {
			return credentials.StaticCredentialsProvider{}, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("x-moto-account-id", account)
		// moto picks the service from the credential scope of the signature.
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+localAccessKeyID+"/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return credentials.StaticCredentialsProvider{}, fmt.Errorf("IAM %s in account %s: %w", form.Get("Action"), account, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return credentials.StaticCredentialsProvider{}, fmt.Errorf("IAM %s in account %s: %s %s %v", form.Get("Action"), account, resp.Status, body, err)
		}
		if form.Get("Action") == "CreateAccessKey" {
			if err := xml.Unmarshal(body, &key); err != nil {
				return credentials.StaticCredentialsProvider{}, fmt.Errorf("IAM CreateAccessKey in account %s: %w", account, err)
			}
		}
	}
	if key.AccessKeyID == "" || key.SecretAccessKey == "" {
		return credentials.StaticCredentialsProvider{}, fmt.Errorf("IAM CreateAccessKey in account %s: no access key in the response", account)
	}
	return credentials.NewStaticCredentialsProvider(key.AccessKeyID, key.SecretAccessKey, ""), nil
}

// httpProbe succeeds once url answers a GET with a status below 500.
func httpProbe(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// URL returns the server's base URL, http://127.0.0.1:PORT: the value for
// AWS_ENDPOINT_URL_<SERVICE> of every service moto serves (or a client's
// BaseEndpoint).
func (m *Moto) URL() string { return m.url }

// Account returns the account moto serves for requests signed with
// Credentials.
func (m *Moto) Account() string { return m.account }

// Credentials returns the access key of an IAM user StartMoto created in
// Account, so that requests signed with it act in Account (moto checks no
// signatures, but finds the account by the access key).
func (m *Moto) Credentials() credentials.StaticCredentialsProvider { return m.creds }

// Config returns an aws.Config for region whose requests go to moto with
// Credentials, for the SDK clients of tests.
func (m *Moto) Config(region string) aws.Config {
	return aws.Config{Region: region, Credentials: m.Credentials(), BaseEndpoint: aws.String(m.url)}
}

// Stop stops the server, losing everything it held, so that tests can see
// how callers cope with the service being down: later requests fail to
// connect. It is safe to call more than once.
func (m *Moto) Stop() error { return m.proc.stop() }

// Close stops the server and removes its log. It is safe to call more than
// once, and after Stop.
func (m *Moto) Close() error {
	m.closeOnce.Do(func() {
		errs := []error{m.Stop()}
		if err := os.RemoveAll(m.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove moto files: %w", err))
		}
		m.closeErr = errors.Join(errs...)
	})
	return m.closeErr
}

// unsetEnv returns env without the entries of the given keys.
func unsetEnv(env []string, keys ...string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(keys, k) {
			out = append(out, kv)
		}
	}
	return out
}
