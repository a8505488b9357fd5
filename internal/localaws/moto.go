package localaws

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// motoListeningLine is the line moto's server (werkzeug) prints once it
// listens; with port 0 it names the port the kernel picked.
var motoListeningLine = regexp.MustCompile(`Running on http://127\.0\.0\.1:(\d+)`)

// MotoDefaultAccount is the account moto serves a request in when it knows
// none for the request's access key (moto's DEFAULT_ACCOUNT_ID).
const MotoDefaultAccount = "123456789012"

// AnyService matches every service in Moto.Calls.
const AnyService = "*"

// maxProxiedBody bounds the request body Moto's proxy reads; SQS messages,
// the largest requests, are at most 1 MiB.
const maxProxiedBody = 8 << 20

// maxRecordedBody is how much of a JSON request's body a MotoCall keeps.
const maxRecordedBody = 4 << 10

// MotoOptions configures StartMoto.
type MotoOptions struct {
	// Account is the account that Credentials act in; DefaultAccount when
	// empty.
	Account string
	// SingleAccount makes every request act in Account, whatever
	// credentials sign it (moto's MOTO_ACCOUNT_ID), for a stand-in of one
	// account's services that any client may call, as the SDK's default
	// credentials of a test or the Lambda emulator sign. An AssumeRole
	// then gives credentials that act in Account too: leave it false for
	// account switching.
	SingleAccount bool
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
//
// Clients reach moto through a reverse proxy on 127.0.0.1 (URL) that
// records every request (Calls), lets a test answer requests itself
// (SetHook) to inject the faults moto does not produce, and mends one
// gap of moto's CloudTrail (see StartMoto). It is safe for concurrent use.
type Moto struct {
	proc    *process
	backend string // moto's own URL, for the calls localaws makes itself
	url     string // the proxy's URL
	server  *http.Server
	client  *http.Client // to moto, for the proxy and localaws's own calls
	account string
	creds   credentials.StaticCredentialsProvider
	dir     string
	hook    atomic.Pointer[MotoHook]

	mu       sync.Mutex
	calls    []MotoCall
	accounts map[string]string // access key id -> account, as moto answered

	stopProxy sync.Once
	proxyErr  error
	closeOnce sync.Once
	closeErr  error
}

// MotoCall is the record of one request Moto's proxy received.
type MotoCall struct {
	// Time is when the request arrived.
	Time time.Time
	// Service, Region and AccessKeyID are those of the request's SigV4
	// credential scope, such as "sts", "us-east-1" and "AKIA..."; empty
	// without one.
	Service, Region, AccessKeyID string
	// Operation is the operation named by the X-Amz-Target header (the
	// part after its last dot, as "DescribeTrails") or by the Action
	// parameter of a Query-protocol request (as "AssumeRole"); empty for
	// REST requests such as S3's.
	Operation string
	// Params is the form of a Query-protocol request (STS, IAM), nil for
	// other protocols.
	Params url.Values
	// Body is the start (at most 4 KiB) of the body of any other request,
	// such as the JSON of CloudTrail's and SQS's.
	Body []byte
	// Status is the HTTP status of the answer, and ErrorCode the error
	// code of an error answer (the JSON __type or the XML Code).
	Status    int
	ErrorCode string
}

// MotoHook sees every request Moto's proxy receives, before moto does,
// with its record so far (Status and ErrorCode not yet set). It answers it:
// by next.ServeHTTP(w, r), which passes it on to moto, or by writing an
// answer itself (WriteQueryError, WriteKMSError), or both, giving moto's
// answer to a recorder and writing a changed one. r.Body may be read: next
// reads the body as it arrived.
type MotoHook func(w http.ResponseWriter, r *http.Request, call MotoCall, next http.Handler)

// StartMoto runs `python -m moto.server` from the tools venv on a port the
// kernel picks, waits until it answers, and starts the proxy in front of
// it. ctx bounds the start only; the server runs until Stop or Close.
//
// Every account's data lives in the server's memory and is lost when it
// stops.
//
// The proxy mends one gap of moto 5.2.1 (TestMotoShadowTrail): moto finds
// the trail of GetEventSelectors only among the trails homed in the region
// the request is signed for, and answers TrailNotFoundException for the ARN
// of a multi-Region trail homed elsewhere (a shadow trail), where CloudTrail
// reads a shadow trail by its ARN in any region it covers, as moto's own
// GetTrailStatus does. The proxy sends such a request to moto signed for
// the ARN's region, when moto's GetTrailStatus finds the trail in the
// region of the request (the call is recorded with the region it was
// signed for).
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
	// MOTO_ACCOUNT_ID pins every request to one account and undoes
	// AssumeRole's account switching, so it is set only for SingleAccount
	// and never passed on from the environment.
	env := mergeEnv(unsetEnv(os.Environ(), "MOTO_ACCOUNT_ID"), "PYTHONUNBUFFERED=1")
	if opts.SingleAccount {
		env = append(env, "MOTO_ACCOUNT_ID="+account)
	}
	p, match, err := startProcess(ctx, procSpec{
		name:      "moto",
		path:      python,
		args:      []string{"-m", "moto.server", "-H", "127.0.0.1", "-p", "0"},
		env:       env,
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
	m := &Moto{
		proc:     p,
		backend:  "http://" + hostPort(atoiOrZero(match[1])),
		client:   &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
		account:  account,
		dir:      dir,
		accounts: map[string]string{},
	}
	if err := m.startProxy(); err != nil {
		return nil, errors.Join(fmt.Errorf("start moto: %w", err), m.Close())
	}
	if opts.SingleAccount {
		// Any key acts in account; spare moto loading IAM for one.
		m.creds = credentials.NewStaticCredentialsProvider(localAccessKeyID, localSecretAccessKey, "")
		return m, nil
	}
	if m.creds, err = m.NewUser(ctx, account, "localaws"); err != nil {
		return nil, errors.Join(fmt.Errorf("start moto: %w", err), m.Close())
	}
	return m, nil
}

// startProxy starts the recording proxy in front of moto on 127.0.0.1.
func (m *Moto) startProxy() error {
	backend, err := url.Parse(m.backend)
	if err != nil {
		return err
	}
	next := &httputil.ReverseProxy{
		Transport: m.client.Transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(backend)
			pr.Out.Host = pr.In.Host // moto builds queue URLs from the Host the client sent
			m.mendShadowTrailSelectors(pr.Out)
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, fmt.Sprintf("localaws: moto at %s did not answer: %v", backend, err), http.StatusBadGateway)
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("start the moto proxy: %w", err)
	}
	m.url = "http://" + ln.Addr().String()
	m.server = &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { m.serve(w, r, next) }),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = m.server.Serve(ln) }() // returns http.ErrServerClosed on Stop
	return nil
}

// serve records one request and has the hook, or moto, answer it.
func (m *Moto) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	call := MotoCall{Time: time.Now()}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxProxiedBody+1))
	if err != nil || len(body) > maxProxiedBody {
		http.Error(w, fmt.Sprintf("localaws: moto proxy: request body unreadable or over %d bytes: %v", maxProxiedBody, err), http.StatusBadRequest)
		return
	}
	if scope, err := credentialScope(r); err == nil {
		call.Service, call.Region, call.AccessKeyID = scope.service, scope.region, scope.accessKeyID
	}
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		call.Operation = target[strings.LastIndex(target, ".")+1:]
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if form, err := url.ParseQuery(string(body)); err == nil {
			call.Params = form
			if call.Operation == "" {
				call.Operation = form.Get("Action")
			}
		}
	} else if len(body) > 0 {
		call.Body = slices.Clone(body[:min(len(body), maxRecordedBody)])
	}
	rec := &answerRecorder{ResponseWriter: w}
	defer func() {
		call.Status, call.ErrorCode = rec.status, rec.errorCode()
		m.mu.Lock()
		defer m.mu.Unlock()
		m.calls = append(m.calls, call)
	}()
	// next reads the body as it arrived, whatever the hook read of it.
	forward := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		next.ServeHTTP(w, r)
	})
	r.Body = io.NopCloser(bytes.NewReader(body))
	if h := m.hook.Load(); h != nil {
		(*h)(rec, r, call, forward)
		return
	}
	forward.ServeHTTP(rec, r)
}

// shadowTrailARN matches the body of a GetEventSelectors request that names
// a trail by ARN, capturing the ARN's region.
var shadowTrailARN = regexp.MustCompile(`"TrailName"\s*:\s*("arn:[a-z-]+:cloudtrail:([a-z0-9-]+):\d{12}:trail/[^"]+")`)

// mendShadowTrailSelectors signs a GetEventSelectors request naming a
// shadow trail by ARN for the ARN's region (see StartMoto): when moto's
// GetTrailStatus finds the trail in the region the request is signed for,
// which it does for the multi-Region trails homed elsewhere. moto checks no
// signatures, but takes the region from the credential scope.
func (m *Moto) mendShadowTrailSelectors(r *http.Request) {
	if !strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".GetEventSelectors") || r.Body == nil {
		return
	}
	body, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	match := shadowTrailARN.FindSubmatch(body)
	if err != nil || match == nil {
		return
	}
	scope, err := credentialScope(r)
	home := string(match[2])
	if err != nil || scope.service != "cloudtrail" || scope.region == home {
		return
	}
	status, err := http.NewRequestWithContext(r.Context(), http.MethodPost, m.backend+"/", bytes.NewReader([]byte(`{"Name":`+string(match[1])+`}`)))
	if err != nil {
		return
	}
	status.Header.Set("Content-Type", KMSContentType) // awsJson1_1, as CloudTrail speaks it
	status.Header.Set("X-Amz-Target", CloudTrailTarget("GetTrailStatus"))
	status.Header.Set("Authorization", r.Header.Get("Authorization"))
	resp, err := m.client.Do(status)
	if err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		auth := r.Header.Get("Authorization")
		r.Header.Set("Authorization", strings.Replace(auth, "/"+scope.region+"/cloudtrail/", "/"+home+"/cloudtrail/", 1))
	}
}

// Calls returns the records of the requests for op (an operation name such
// as "AssumeRole", or AnyOperation) of service (such as "sts", or
// AnyService) that the proxy received since the start or ResetCalls, in
// the order they arrived. The calls localaws makes itself (NewUser,
// AccountOf) are not among them.
func (m *Moto) Calls(service, op string) []MotoCall {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []MotoCall
	for _, c := range m.calls {
		if (service == AnyService || c.Service == service) && (op == AnyOperation || c.Operation == op) {
			out = append(out, c)
		}
	}
	return out
}

// ResetCalls forgets every recorded request.
func (m *Moto) ResetCalls() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = nil
}

// SetHook installs h as the proxy's hook, replacing any previous one; nil
// removes it, so that moto answers every request.
func (m *Moto) SetHook(h MotoHook) {
	if h == nil {
		m.hook.Store(nil)
		return
	}
	m.hook.Store(&h)
}

// motoAccessKey is the part of IAM's CreateAccessKey response NewUser reads.
type motoAccessKey struct {
	AccessKeyID     string `xml:"CreateAccessKeyResult>AccessKey>AccessKeyId"`
	SecretAccessKey string `xml:"CreateAccessKeyResult>AccessKey>SecretAccessKey"`
}

// NewUser creates the IAM user name with an access key in account and
// returns the key: requests signed with it act in account, and
// sts:GetCallerIdentity answers arn:aws:iam::ACCOUNT:user/NAME. moto serves
// a request in the account whose IAM holds its access key (and in
// MotoDefaultAccount otherwise); the header x-moto-account-id, moto's
// documented way to address an account, places the user.
func (m *Moto) NewUser(ctx context.Context, account, name string) (credentials.StaticCredentialsProvider, error) {
	var key motoAccessKey
	for _, form := range []url.Values{
		{"Action": {"CreateUser"}, "UserName": {name}, "Version": {"2010-05-08"}},
		{"Action": {"CreateAccessKey"}, "UserName": {name}, "Version": {"2010-05-08"}},
	} {
		body, err := m.query(ctx, account, "iam", localAccessKeyID, form)
		if err != nil {
			return credentials.StaticCredentialsProvider{}, err
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

// CreateBucket creates the S3 bucket name in region, owned by Account, for
// the services that need one, such as CloudTrail's CreateTrail. The call
// goes to moto directly, not through the proxy.
func (m *Moto) CreateBucket(ctx context.Context, region, name string) error {
	var body io.Reader
	if region != "us-east-1" {
		body = strings.NewReader("<CreateBucketConfiguration><LocationConstraint>" + region + "</LocationConstraint></CreateBucketConfiguration>")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, m.backend+"/"+url.PathEscape(name), body)
	if err != nil {
		return err
	}
	creds, _ := m.creds.Retrieve(ctx) // static credentials never fail
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+creds.AccessKeyID+"/20260101/"+region+"/s3/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := m.client.Do(req)
	if err != nil {
		return fmt.Errorf("S3 CreateBucket %s: %w", name, err)
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("S3 CreateBucket %s: %s %s %v", name, resp.Status, answer, err)
	}
	return nil
}

// callerAccount is the part of STS's GetCallerIdentity response AccountOf
// reads.
type callerAccount struct {
	Account string `xml:"GetCallerIdentityResult>Account"`
}

// AccountOf returns the account of accessKeyID as moto answers
// sts:GetCallerIdentity signed with it: the account of the IAM user or
// the assumed role the key belongs to, or MotoDefaultAccount for a key
// moto did not issue. The answer for a key moto knows is kept. The call
// goes to moto directly, not through the proxy.
func (m *Moto) AccountOf(ctx context.Context, accessKeyID string) (string, error) {
	m.mu.Lock()
	account, ok := m.accounts[accessKeyID]
	m.mu.Unlock()
	if ok {
		return account, nil
	}
	body, err := m.query(ctx, "", "sts", accessKeyID, url.Values{"Action": {"GetCallerIdentity"}, "Version": {"2011-06-15"}})
	if err != nil {
		return "", err
	}
	var out callerAccount
	if err := xml.Unmarshal(body, &out); err != nil || !accountPattern.MatchString(out.Account) {
		return "", fmt.Errorf("STS GetCallerIdentity for %s: no account in %q (%v)", accessKeyID, body, err)
	}
	if out.Account != MotoDefaultAccount {
		m.mu.Lock()
		m.accounts[accessKeyID] = out.Account
		m.mu.Unlock()
	}
	return out.Account, nil
}

// query makes a Query-protocol call of service directly to moto, signed
// (moto checks no signatures) with accessKeyID and, when account is set,
// addressed to account with x-moto-account-id. It returns the body of a
// 200 answer.
func (m *Moto) query(ctx context.Context, account, service, accessKeyID string, form url.Values) ([]byte, error) {
	what := fmt.Sprintf("%s %s", strings.ToUpper(service), form.Get("Action"))
	if account != "" {
		what += " in account " + account
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.backend+"/", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if account != "" {
		req.Header.Set("x-moto-account-id", account)
	}
	// moto picks the service from the credential scope of the signature.
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+accessKeyID+"/20260101/us-east-1/"+service+"/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := m.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s %s %v", what, resp.Status, body, err)
	}
	return body, nil
}

// httpProbe succeeds once url answers a GET with a status below 500.
func httpProbe(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Close = true // leave no connection for the server to wait for at exit
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

// URL returns the proxy's base URL, http://127.0.0.1:PORT: the value for
// AWS_ENDPOINT_URL_<SERVICE> of every service moto serves (or a client's
// BaseEndpoint).
func (m *Moto) URL() string { return m.url }

// Account returns the account moto serves for requests signed with
// Credentials.
func (m *Moto) Account() string { return m.account }

// Credentials returns the access key of an IAM user StartMoto created in
// Account, so that requests signed with it act in Account (moto checks no
// signatures, but finds the account by the access key); with SingleAccount,
// where every key acts in Account, static credentials of no user.
func (m *Moto) Credentials() credentials.StaticCredentialsProvider { return m.creds }

// Config returns an aws.Config for region whose requests go to moto with
// Credentials, for the SDK clients of tests.
func (m *Moto) Config(region string) aws.Config {
	return aws.Config{Region: region, Credentials: m.Credentials(), BaseEndpoint: aws.String(m.url)}
}

// Stop stops the proxy and the server, losing everything it held, so that
// tests can see how callers cope with the service being down: later
// requests fail to connect. It is safe to call more than once.
func (m *Moto) Stop() error {
	m.stopProxy.Do(func() {
		if m.server != nil {
			if err := m.server.Close(); err != nil {
				m.proxyErr = fmt.Errorf("close the moto proxy: %w", err)
			}
		}
	})
	// moto's server waits at exit for the threads of open connections.
	m.client.CloseIdleConnections()
	return errors.Join(m.proxyErr, m.proc.stop())
}

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

// WriteQueryError writes an error the way the services of the AWS Query
// protocol (STS, IAM) do: status, Content-Type text/xml, an
// X-Amzn-RequestId header and an ErrorResponse with the fault's Type
// (Sender for a status below 500, else Receiver), Code and Message. STS
// answers an unknown access key with 403 InvalidClientTokenId, a denied
// AssumeRole with 403 AccessDenied and throttling with 400 Throttling.
func WriteQueryError(w http.ResponseWriter, status int, code, message string) {
	type queryError struct {
		XMLName   xml.Name `xml:"ErrorResponse"`
		Type      string   `xml:"Error>Type"`
		Code      string   `xml:"Error>Code"`
		Message   string   `xml:"Error>Message"`
		RequestID string   `xml:"RequestId"`
	}
	e := queryError{Type: "Sender", Code: code, Message: message, RequestID: newRequestID()}
	if status >= 500 {
		e.Type = "Receiver"
	}
	body, err := xml.Marshal(e)
	if err != nil { // strings always marshal; keep the response well-formed anyway
		body = []byte(`<ErrorResponse><Error><Code>InternalFailure</Code></Error></ErrorResponse>`)
	}
	h := w.Header()
	h.Set("Content-Type", "text/xml")
	h.Set("X-Amzn-RequestId", e.RequestID)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// answerRecorder keeps the status and the start of the body of an answer,
// so that the error code can be recorded, whoever wrote the answer.
type answerRecorder struct {
	http.ResponseWriter
	status int
	head   []byte
}

// WriteHeader records the status.
func (a *answerRecorder) WriteHeader(status int) {
	if a.status == 0 {
		a.status = status
	}
	a.ResponseWriter.WriteHeader(status)
}

// Write keeps the first 1 KiB of the body.
func (a *answerRecorder) Write(b []byte) (int, error) {
	if a.status == 0 {
		a.status = http.StatusOK
	}
	if room := 1024 - len(a.head); room > 0 {
		a.head = append(a.head, b[:min(room, len(b))]...)
	}
	return a.ResponseWriter.Write(b)
}

// xmlErrorCode finds the Code of an XML error answer.
var xmlErrorCode = regexp.MustCompile(`<Code>([^<]+)</Code>`)

// errorCode returns the code of an error answer: the __type of a JSON body
// without its namespace (as "QueueDoesNotExist" of
// "com.amazonaws.sqs#QueueDoesNotExist"), or the Code of an XML one; ""
// for a success or a body that is neither.
func (a *answerRecorder) errorCode() string {
	if a.status < http.StatusBadRequest {
		return ""
	}
	var e kmsError
	if json.Unmarshal(a.head, &e) == nil && e.Type != "" {
		return e.Type[strings.LastIndex(e.Type, "#")+1:]
	}
	if m := xmlErrorCode.FindSubmatch(a.head); m != nil {
		return string(m[1])
	}
	return ""
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
