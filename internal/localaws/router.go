package localaws

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// KMSContentType is the Content-Type of the awsJson1_1 protocol KMS speaks.
const KMSContentType = "application/x-amz-json-1.1"

// Wildcards accepted by RegionRouter.Count and FailFirst.
const (
	// AnyRegion matches every region, including a missing one.
	AnyRegion = "*"
	// AnyTarget matches every X-Amz-Target, including a missing one.
	AnyTarget = "*"
)

// maxInterceptBody bounds the request body RegionRouter buffers so that an
// InterceptFunc may read it; KMS requests are far smaller.
const maxInterceptBody = 1 << 20

// KMSTarget returns the X-Amz-Target header value of the KMS operation op,
// for example KMSTarget("TagResource") is "TrentService.TagResource".
func KMSTarget(op string) string { return "TrentService." + op }

// InterceptFunc inspects a request before RegionRouter proxies it. region is
// the region of the request's credential scope ("" when it has none) and
// target its X-Amz-Target header. It returns true when it wrote the response
// itself (for example with WriteKMSError), false to let the request through.
// It may read r.Body: the router restores the body before proxying.
type InterceptFunc func(w http.ResponseWriter, r *http.Request, region, target string) bool

// RegionRouter is an http.Handler that reverse-proxies each request to the
// backend of the region named in its SigV4 credential scope
// (Credential=AKID/20240101/us-east-1/kms/aws4_request), so one endpoint
// (AWS_ENDPOINT_URL_KMS) serves every region as real KMS's regional
// endpoints do. A request without a credential scope, or for a region
// without a backend, gets a KMS-shaped 400 UnrecognizedClientException naming
// the region. It counts requests per region and target and can run an
// InterceptFunc to inject faults. It is safe for concurrent use.
type RegionRouter struct {
	proxies   map[string]*httputil.ReverseProxy // immutable after construction
	backends  map[string]string                 // immutable after construction
	intercept atomic.Pointer[InterceptFunc]

	mu     sync.Mutex
	counts map[requestKey]int
}

// requestKey is what RegionRouter counts requests by.
type requestKey struct{ region, target string }

// NewRegionRouter returns a router over backends, which maps each region to
// the base URL of its KMS stand-in (such as "http://127.0.0.1:4599").
func NewRegionRouter(backends map[string]string) (*RegionRouter, error) {
	rr := &RegionRouter{
		proxies:  make(map[string]*httputil.ReverseProxy, len(backends)),
		backends: make(map[string]string, len(backends)),
		counts:   make(map[requestKey]int),
	}
	for region, raw := range backends {
		u, err := url.Parse(raw)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("new region router: backend %q of region %s is not an absolute URL", raw, region)
		}
		rr.backends[region] = raw
		rr.proxies[region] = newRegionProxy(region, u)
	}
	return rr, nil
}

// newRegionProxy returns the reverse proxy to one region's backend.
func newRegionProxy(region string, backend *url.URL) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(backend)
			pr.Out.Host = pr.In.Host // keep the signed Host header as the client sent it
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			WriteKMSError(w, http.StatusBadGateway, "KMSInternalException",
				fmt.Sprintf("localaws: the KMS stand-in for region %s at %s did not answer: %v", region, backend, err))
		},
	}
}

// Regions returns the regions the router has backends for, sorted.
func (rr *RegionRouter) Regions() []string {
	regions := make([]string, 0, len(rr.backends))
	for r := range rr.backends {
		regions = append(regions, r)
	}
	slices.Sort(regions)
	return regions
}

// Backend returns the base URL of region's backend.
func (rr *RegionRouter) Backend(region string) (string, bool) {
	u, ok := rr.backends[region]
	return u, ok
}

// SetIntercept installs f as the router's InterceptFunc, replacing any
// previous one; nil removes it. Requests already past the hook keep the
// function they saw.
func (rr *RegionRouter) SetIntercept(f InterceptFunc) {
	if f == nil {
		rr.intercept.Store(nil)
		return
	}
	rr.intercept.Store(&f)
}

// Count returns how many requests for target (an X-Amz-Target such as
// "TrentService.TagResource") in region the router has received since it
// was made or last reset. Every request counts, including intercepted and
// rejected ones. AnyRegion and AnyTarget match every region or target.
func (rr *RegionRouter) Count(region, target string) int {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if region != AnyRegion && target != AnyTarget {
		return rr.counts[requestKey{region, target}]
	}
	n := 0
	for k, c := range rr.counts {
		if (region == AnyRegion || k.region == region) && (target == AnyTarget || k.target == target) {
			n += c
		}
	}
	return n
}

// ResetCounts sets every count to zero.
func (rr *RegionRouter) ResetCounts() {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	clear(rr.counts)
}

// ServeHTTP implements http.Handler.
func (rr *RegionRouter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	region, scopeErr := CredentialScopeRegion(r)
	target := r.Header.Get("X-Amz-Target")

	rr.mu.Lock()
	rr.counts[requestKey{region, target}]++
	rr.mu.Unlock()

	if f := rr.intercept.Load(); f != nil {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxInterceptBody+1))
		if err != nil {
			WriteKMSError(w, http.StatusBadRequest, "SerializationException", fmt.Sprintf("localaws: read request body: %v", err))
			return
		}
		if len(body) > maxInterceptBody {
			WriteKMSError(w, http.StatusRequestEntityTooLarge, "ValidationException",
				fmt.Sprintf("localaws: request body over %d bytes", maxInterceptBody))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if (*f)(w, r, region, target) {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}

	if scopeErr != nil {
		WriteKMSError(w, http.StatusBadRequest, "UnrecognizedClientException",
			fmt.Sprintf("localaws: %v; this endpoint serves regions %s", scopeErr, strings.Join(rr.Regions(), ", ")))
		return
	}
	proxy, ok := rr.proxies[region]
	if !ok {
		WriteKMSError(w, http.StatusBadRequest, "UnrecognizedClientException",
			fmt.Sprintf("localaws: no KMS stand-in for region %q; this endpoint serves regions %s", region, strings.Join(rr.Regions(), ", ")))
		return
	}
	proxy.ServeHTTP(w, r)
}

// errNoCredentialScope is returned by CredentialScopeRegion for a request
// that carries no SigV4 credential.
var errNoCredentialScope = errors.New("request has no SigV4 credential scope (Authorization: AWS4-HMAC-SHA256 Credential=...), so it names no region")

// CredentialScopeRegion returns the region in the SigV4 credential scope of
// r: from the Authorization header, or from the X-Amz-Credential query
// parameter of a presigned request. The scope has the form
// AKID/20240101/us-east-1/kms/aws4_request.
func CredentialScopeRegion(r *http.Request) (string, error) {
	scope, err := credentialScope(r)
	return scope.region, err
}

// sigV4Scope is the credential of a SigV4-signed request.
type sigV4Scope struct{ accessKeyID, region, service string }

// credentialScope reads the credential of r (see CredentialScopeRegion).
func credentialScope(r *http.Request) (sigV4Scope, error) {
	cred := ""
	if auth := r.Header.Get("Authorization"); auth != "" {
		_, rest, ok := strings.Cut(auth, "Credential=")
		if !ok {
			return sigV4Scope{}, fmt.Errorf("authorization header has no Credential=: %w", errNoCredentialScope)
		}
		cred, _, _ = strings.Cut(rest, ",")
		cred = strings.TrimSpace(cred)
	} else {
		cred = r.URL.Query().Get("X-Amz-Credential")
	}
	if cred == "" {
		return sigV4Scope{}, errNoCredentialScope
	}
	parts := strings.Split(cred, "/")
	if len(parts) < 5 || parts[len(parts)-1] != "aws4_request" || parts[len(parts)-3] == "" {
		return sigV4Scope{}, fmt.Errorf("credential %q is not AKID/DATE/REGION/SERVICE/aws4_request", cred)
	}
	n := len(parts)
	return sigV4Scope{accessKeyID: strings.Join(parts[:n-4], "/"), region: parts[n-3], service: parts[n-2]}, nil
}

// kmsError is the body of an awsJson1_1 error response.
type kmsError struct {
	Type    string `json:"__type"`
	Message string `json:"message"`
}

// WriteKMSError writes an error the way KMS does on its awsJson1_1
// protocol: status, Content-Type application/x-amz-json-1.1, an
// X-Amzn-RequestId header and the body {"__type":code,"message":message}.
// KMS answers throttling with 400 ThrottlingException and internal failures
// with 500 KMSInternalException.
func WriteKMSError(w http.ResponseWriter, status int, code, message string) {
	body, err := json.Marshal(kmsError{Type: code, Message: message})
	if err != nil { // two strings always marshal; keep the response well-formed anyway
		body = []byte(`{"__type":"KMSInternalException"}`)
	}
	h := w.Header()
	h.Set("Content-Type", KMSContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Amzn-RequestId", newRequestID())
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// newRequestID returns a random version 4 UUID, the form of KMS request IDs.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Fault is a KMS error response to inject with an InterceptFunc.
type Fault struct {
	Status  int    // HTTP status
	Code    string // __type, such as "ThrottlingException"
	Message string // message
}

// Faults KMS really returns, with messages that say they were injected.
var (
	// ThrottlingFault is KMS's answer to a caller over its request quota
	// (retryable).
	ThrottlingFault = Fault{Status: http.StatusBadRequest, Code: "ThrottlingException", Message: "Rate exceeded (injected by localaws)"}
	// InternalFault is an internal KMS failure (retryable).
	InternalFault = Fault{Status: http.StatusInternalServerError, Code: "KMSInternalException", Message: "internal failure (injected by localaws)"}
	// DependencyTimeoutFault is a KMS dependency timing out (retryable).
	DependencyTimeoutFault = Fault{Status: http.StatusServiceUnavailable, Code: "DependencyTimeoutException", Message: "dependency timed out (injected by localaws)"}
	// AccessDeniedFault is a caller without permission (not retryable).
	AccessDeniedFault = Fault{Status: http.StatusBadRequest, Code: "AccessDeniedException", Message: "access denied (injected by localaws)"}
)

// Write writes f with WriteKMSError.
func (f Fault) Write(w http.ResponseWriter) { WriteKMSError(w, f.Status, f.Code, f.Message) }

// FailFirst returns an InterceptFunc that answers the first n requests for
// target in region with f and lets every other request through; n < 0 fails
// every matching request. region may be AnyRegion and target AnyTarget.
// Concurrent requests share the n failures.
func FailFirst(region, target string, n int, f Fault) InterceptFunc {
	var left atomic.Int64
	left.Store(int64(n))
	return func(w http.ResponseWriter, _ *http.Request, gotRegion, gotTarget string) bool {
		if (region != AnyRegion && region != gotRegion) || (target != AnyTarget && target != gotTarget) {
			return false
		}
		if n >= 0 && left.Add(-1) < 0 {
			return false
		}
		f.Write(w)
		return true
	}
}
