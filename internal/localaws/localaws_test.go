package localaws_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws/localawstest"
)

// Seeded key IDs of the KMS tests, one per region.
const (
	keyUSEast1 = "0f6a8d3e-1b2c-4d5e-8f90-a1b2c3d4e5f6"
	keyEUWest1 = "7c1e2d3f-4a5b-4c6d-9e8f-0a1b2c3d4e5f"
)

// signedRequest returns a KMS-shaped request whose Authorization header
// carries a credential scope for region ("" for no Authorization header).
func signedRequest(t *testing.T, url, region, target, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Content-Type", localaws.KMSContentType)
	req.Header.Set("X-Amz-Target", target)
	if region != "" {
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/"+region+
			"/kms/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=abc123")
	}
	return req
}

// kmsErrorBody is the body of a KMS error response.
type kmsErrorBody struct {
	Type    string `json:"__type"`
	Message string `json:"message"`
}

func TestCredentialScopeRegion(t *testing.T) {
	tests := []struct {
		name    string
		auth    string
		query   string
		want    string
		wantErr bool
	}{
		{name: "header", auth: "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=00", want: "us-east-1"},
		{name: "header without spaces", auth: "AWS4-HMAC-SHA256 Credential=AKID/20240101/eu-west-1/kms/aws4_request,SignedHeaders=host,Signature=00", want: "eu-west-1"},
		{name: "presigned query", query: "X-Amz-Credential=AKID%2F20240101%2Fap-south-1%2Fkms%2Faws4_request", want: "ap-south-1"},
		{name: "no credential", wantErr: true},
		{name: "authorization without credential", auth: "Bearer token", wantErr: true},
		{name: "short scope", auth: "AWS4-HMAC-SHA256 Credential=AKID/us-east-1/kms, Signature=00", wantErr: true},
		{name: "empty region", auth: "AWS4-HMAC-SHA256 Credential=AKID/20240101//kms/aws4_request, Signature=00", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "http://kms.local/?"+tt.query, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			got, err := localaws.CredentialScopeRegion(req)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("CredentialScopeRegion() = %q, nil; want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("CredentialScopeRegion() error: %v", err)
			}
			if got != tt.want {
				t.Errorf("CredentialScopeRegion() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWriteKMSError(t *testing.T) {
	requestID := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	tests := []struct {
		name  string
		fault localaws.Fault
		want  localaws.Fault
	}{
		{name: "throttling", fault: localaws.ThrottlingFault, want: localaws.Fault{Status: 400, Code: "ThrottlingException"}},
		{name: "internal", fault: localaws.InternalFault, want: localaws.Fault{Status: 500, Code: "KMSInternalException"}},
		{name: "dependency timeout", fault: localaws.DependencyTimeoutFault, want: localaws.Fault{Status: 503, Code: "DependencyTimeoutException"}},
		{name: "access denied", fault: localaws.AccessDeniedFault, want: localaws.Fault{Status: 400, Code: "AccessDeniedException"}},
		{name: "custom", fault: localaws.Fault{Status: 400, Code: "NotFoundException", Message: `key "x" not found`}, want: localaws.Fault{Status: 400, Code: "NotFoundException", Message: `key "x" not found`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			localaws.WriteKMSError(rec, tt.fault.Status, tt.fault.Code, tt.fault.Message)
			if rec.Code != tt.want.Status {
				t.Errorf("status: got %d, want %d", rec.Code, tt.want.Status)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/x-amz-json-1.1" {
				t.Errorf("Content-Type: got %q, want %q", got, "application/x-amz-json-1.1")
			}
			if got := rec.Header().Get("X-Amzn-RequestId"); !requestID.MatchString(got) {
				t.Errorf("X-Amzn-RequestId: got %q, want a version 4 UUID", got)
			}
			var body map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if len(body) != 2 || body["__type"] != tt.want.Code || body["message"] != tt.fault.Message {
				t.Errorf("body: got %v, want exactly __type %q and message %q", body, tt.want.Code, tt.fault.Message)
			}
			if tt.want.Message != "" && body["message"] != tt.want.Message {
				t.Errorf("message: got %q, want %q", body["message"], tt.want.Message)
			}
		})
	}
}

// newTestRouter returns a router over two httptest backends that answer
// with their region and the body they received.
func newTestRouter(t *testing.T) (*localaws.RegionRouter, *httptest.Server) {
	t.Helper()
	backends := map[string]string{}
	for _, region := range []string{"us-east-1", "eu-west-1"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", localaws.KMSContentType)
			_ = json.NewEncoder(w).Encode(map[string]string{"backend": region, "body": string(body), "target": r.Header.Get("X-Amz-Target")})
		}))
		t.Cleanup(srv.Close)
		backends[region] = srv.URL
	}
	rr, err := localaws.NewRegionRouter(backends)
	if err != nil {
		t.Fatalf("NewRegionRouter: %v", err)
	}
	front := httptest.NewServer(rr)
	t.Cleanup(front.Close)
	return rr, front
}

func TestRegionRouter(t *testing.T) {
	rr, front := newTestRouter(t)
	if got, want := strings.Join(rr.Regions(), ","), "eu-west-1,us-east-1"; got != want {
		t.Fatalf("Regions() = %s, want %s", got, want)
	}
	tests := []struct {
		name        string
		region      string
		target      string
		wantStatus  int
		wantBackend string // "" for an error response
		wantCode    string
		wantInMsg   string
	}{
		{name: "us-east-1", region: "us-east-1", target: "TrentService.DescribeKey", wantStatus: 200, wantBackend: "us-east-1"},
		{name: "eu-west-1", region: "eu-west-1", target: "TrentService.TagResource", wantStatus: 200, wantBackend: "eu-west-1"},
		{name: "unknown region", region: "ap-south-1", target: "TrentService.DescribeKey", wantStatus: 400, wantCode: "UnrecognizedClientException", wantInMsg: `"ap-south-1"`},
		{name: "no credential", region: "", target: "TrentService.ListKeys", wantStatus: 400, wantCode: "UnrecognizedClientException", wantInMsg: "credential scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.DefaultClient.Do(signedRequest(t, front.URL, tt.region, tt.target, `{"KeyId":"k"}`))
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status: got %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantBackend != "" {
				var got map[string]string
				if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
					t.Fatalf("decode: %v", err)
				}
				if got["backend"] != tt.wantBackend || got["body"] != `{"KeyId":"k"}` || got["target"] != tt.target {
					t.Errorf("backend saw %v, want backend %s, body {\"KeyId\":\"k\"}, target %s", got, tt.wantBackend, tt.target)
				}
				return
			}
			var got kmsErrorBody
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if got.Type != tt.wantCode || !strings.Contains(got.Message, tt.wantInMsg) {
				t.Errorf("error: got %+v, want __type %s and a message containing %s", got, tt.wantCode, tt.wantInMsg)
			}
		})
	}
	counts := []struct {
		region, target string
		want           int
	}{
		{"us-east-1", "TrentService.DescribeKey", 1},
		{"eu-west-1", "TrentService.TagResource", 1},
		{"eu-west-1", "TrentService.DescribeKey", 0},
		{"ap-south-1", "TrentService.DescribeKey", 1},
		{"", "TrentService.ListKeys", 1},
		{localaws.AnyRegion, "TrentService.DescribeKey", 2},
		{"eu-west-1", localaws.AnyTarget, 1},
		{localaws.AnyRegion, localaws.AnyTarget, 4},
	}
	for _, c := range counts {
		if got := rr.Count(c.region, c.target); got != c.want {
			t.Errorf("Count(%q, %q) = %d, want %d", c.region, c.target, got, c.want)
		}
	}
	rr.ResetCounts()
	if got := rr.Count(localaws.AnyRegion, localaws.AnyTarget); got != 0 {
		t.Errorf("Count after ResetCounts = %d, want 0", got)
	}
}

func TestRegionRouterIntercept(t *testing.T) {
	tag := localaws.KMSTarget("TagResource")
	if tag != "TrentService.TagResource" {
		t.Fatalf("KMSTarget(TagResource) = %q, want TrentService.TagResource", tag)
	}
	// Each step sends one request; the intercept is set before the first step
	// of a case.
	type step struct {
		region, target string
		wantStatus     int
		wantCode       string // "" when the backend must answer
	}
	tests := []struct {
		name      string
		intercept localaws.InterceptFunc
		steps     []step
	}{
		{
			name:      "fail first throttles once then passes",
			intercept: localaws.FailFirst(localaws.AnyRegion, tag, 1, localaws.ThrottlingFault),
			steps: []step{
				{"us-east-1", "TrentService.DescribeKey", 200, ""},
				{"eu-west-1", tag, 400, "ThrottlingException"},
				{"eu-west-1", tag, 200, ""},
				{"us-east-1", tag, 200, ""},
			},
		},
		{
			name:      "fail always in one region",
			intercept: localaws.FailFirst("us-east-1", localaws.AnyTarget, -1, localaws.InternalFault),
			steps: []step{
				{"us-east-1", tag, 500, "KMSInternalException"},
				{"us-east-1", "TrentService.DescribeKey", 500, "KMSInternalException"},
				{"eu-west-1", tag, 200, ""},
			},
		},
		{
			name: "intercept reading the body lets it through whole",
			intercept: func(w http.ResponseWriter, r *http.Request, region, target string) bool {
				b, _ := io.ReadAll(r.Body)
				return !bytes.Contains(b, []byte(`"KeyId":"k"`)) // passes our requests only
			},
			steps: []step{{"us-east-1", tag, 200, ""}},
		},
		{
			name: "intercept sees region of unknown backend",
			intercept: func(w http.ResponseWriter, r *http.Request, region, target string) bool {
				if region != "ap-south-1" {
					return false
				}
				localaws.WriteKMSError(w, 400, "NotFoundException", "intercepted "+region)
				return true
			},
			steps: []step{{"ap-south-1", tag, 400, "NotFoundException"}, {"eu-west-1", tag, 200, ""}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr, front := newTestRouter(t)
			rr.SetIntercept(tt.intercept)
			for i, s := range tt.steps {
				resp, err := http.DefaultClient.Do(signedRequest(t, front.URL, s.region, s.target, `{"KeyId":"k"}`))
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != s.wantStatus {
					t.Errorf("step %d (%s %s): status got %d, want %d; body %s", i, s.region, s.target, resp.StatusCode, s.wantStatus, body)
				}
				if s.wantCode == "" {
					var got map[string]string
					if err := json.Unmarshal(body, &got); err != nil || got["body"] != `{"KeyId":"k"}` {
						t.Errorf("step %d: backend answer got %s, want the request body echoed", i, body)
					}
					continue
				}
				var got kmsErrorBody
				if err := json.Unmarshal(body, &got); err != nil || got.Type != s.wantCode {
					t.Errorf("step %d: error body got %s, want __type %s", i, body, s.wantCode)
				}
			}
			rr.SetIntercept(nil)
			resp, err := http.DefaultClient.Do(signedRequest(t, front.URL, "us-east-1", tag, `{}`))
			if err != nil {
				t.Fatalf("after SetIntercept(nil): %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("after SetIntercept(nil): status got %d, want 200", resp.StatusCode)
			}
		})
	}
}

func TestNewRegionRouterRejectsBadBackend(t *testing.T) {
	for _, raw := range []string{"127.0.0.1:4599", "/relative", "http://"} {
		if _, err := localaws.NewRegionRouter(map[string]string{"us-east-1": raw}); err == nil {
			t.Errorf("NewRegionRouter(%q) error = nil, want an error", raw)
		}
	}
}

func TestToolPath(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "aws-lambda-rie"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "local-kms"), []byte("not executable"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(localaws.ToolsBinEnv, dir)
	tests := []struct {
		name      string
		tool      string
		wantErrIn []string // empty: no error
	}{
		{name: "present", tool: localaws.RIETool},
		{name: "not executable", tool: localaws.LocalKMSTool, wantErrIn: []string{"local-kms", "not an executable", "run `make tools`"}},
		{name: "missing", tool: "no-such-tool", wantErrIn: []string{"no-such-tool not found in " + dir, "run `make tools`"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := localaws.ToolPath(tt.tool)
			if len(tt.wantErrIn) == 0 {
				if err != nil || got != filepath.Join(dir, tt.tool) {
					t.Errorf("ToolPath(%s) = %q, %v; want %q, nil", tt.tool, got, err, filepath.Join(dir, tt.tool))
				}
				return
			}
			if err == nil {
				t.Fatalf("ToolPath(%s) = %q, nil; want an error", tt.tool, got)
			}
			for _, s := range tt.wantErrIn {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("ToolPath(%s) error %q does not contain %q", tt.tool, err, s)
				}
			}
		})
	}
	if err := localaws.CheckTools(); err == nil || !strings.Contains(err.Error(), "local-kms") {
		t.Errorf("CheckTools() = %v, want an error naming local-kms", err)
	}
}

func TestRepoRoot(t *testing.T) {
	root, err := localaws.RepoRoot()
	if err != nil {
		t.Fatalf("RepoRoot: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "internal", "localaws", "doc.go")); err != nil {
		t.Errorf("RepoRoot() = %s, which has no internal/localaws/doc.go: %v", root, err)
	}
}

func TestStartKMSRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name      string
		opts      localaws.KMSOptions
		wantErrIn string
	}{
		{name: "no regions", opts: localaws.KMSOptions{}, wantErrIn: "no regions"},
		{name: "bad region", opts: localaws.KMSOptions{Regions: []string{"useast1"}}, wantErrIn: `"useast1"`},
		{name: "duplicate region", opts: localaws.KMSOptions{Regions: []string{"us-east-1", "us-east-1"}}, wantErrIn: "twice"},
		{name: "bad account", opts: localaws.KMSOptions{Regions: []string{"us-east-1"}, Account: "123"}, wantErrIn: `"123"`},
		{name: "seed outside regions", opts: localaws.KMSOptions{Regions: []string{"us-east-1"}, Seeds: map[string][]localaws.SeedKey{"eu-west-1": {{KeyID: "k"}}}}, wantErrIn: "eu-west-1"},
		{name: "seed without id", opts: localaws.KMSOptions{Regions: []string{"us-east-1"}, Seeds: map[string][]localaws.SeedKey{"us-east-1": {{Description: "d"}}}}, wantErrIn: "no KeyID"},
		{name: "duplicate seed", opts: localaws.KMSOptions{Regions: []string{"us-east-1"}, Seeds: map[string][]localaws.SeedKey{"us-east-1": {{KeyID: "k"}, {KeyID: "k"}}}}, wantErrIn: "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := localaws.StartKMS(context.Background(), tt.opts)
			if err == nil {
				k.Close()
				t.Fatalf("StartKMS(%+v) error = nil, want one containing %q", tt.opts, tt.wantErrIn)
			}
			if !strings.Contains(err.Error(), tt.wantErrIn) {
				t.Errorf("StartKMS error %q does not contain %q", err, tt.wantErrIn)
			}
		})
	}
}

func TestStartErrorQuotesProcessOutput(t *testing.T) {
	dir := t.TempDir()
	script := "#!/bin/sh\necho \"fake local-kms: region $KMS_REGION cannot start\" >&2\nexit 3\n"
	if err := os.WriteFile(filepath.Join(dir, localaws.LocalKMSTool), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(localaws.ToolsBinEnv, dir)
	k, err := localaws.StartKMS(context.Background(), localaws.KMSOptions{Regions: []string{"eu-west-1"}})
	if err == nil {
		k.Close()
		t.Fatal("StartKMS with a failing local-kms: error = nil, want one")
	}
	for _, want := range []string{"local-kms (eu-west-1)", "exit status 3", "fake local-kms: region eu-west-1 cannot start"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("StartKMS error %q does not contain %q", err, want)
		}
	}
}

// startKMS starts the real KMS stand-in, failing the test (never skipping)
// when it cannot.
func startKMS(t *testing.T, opts localaws.KMSOptions) *localaws.KMS {
	t.Helper()
	start := time.Now()
	k, err := localaws.StartKMS(context.Background(), opts)
	if err != nil {
		t.Fatalf("StartKMS: %v", err)
	}
	t.Logf("KMS stand-in (%d regions) ready in %v at %s", len(opts.Regions), time.Since(start).Round(time.Millisecond), k.URL())
	t.Cleanup(func() {
		if err := k.Close(); err != nil {
			t.Errorf("KMS Close: %v", err)
		}
	})
	return k
}

// apiErrorCode returns the error code of err, or "" when err is not an
// API error.
func apiErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// noRetry disables the SDK's retries.
func noRetry(o *kms.Options) { o.Retryer = aws.NopRetryer{} }

func TestKMS(t *testing.T) {
	var out localawstest.SyncBuffer
	k := startKMS(t, localaws.KMSOptions{
		Regions: []string{"us-east-1", "eu-west-1"},
		Seeds: map[string][]localaws.SeedKey{
			"us-east-1": {{KeyID: keyUSEast1, Description: "seeded in us-east-1"}},
			"eu-west-1": {{KeyID: keyEUWest1}},
		},
		Output: &out,
	})
	ctx := context.Background()
	if !strings.HasPrefix(k.URL(), "http://127.0.0.1:") {
		t.Errorf("URL() = %s, want http://127.0.0.1:PORT", k.URL())
	}
	if got := k.Account(); got != localaws.DefaultAccount {
		t.Errorf("Account() = %s, want %s", got, localaws.DefaultAccount)
	}

	t.Run("DescribeKey is routed by credential scope", func(t *testing.T) {
		tests := []struct {
			region, keyID string
			wantFound     bool
			wantDesc      string
		}{
			{"us-east-1", keyUSEast1, true, "seeded in us-east-1"},
			{"us-east-1", keyEUWest1, false, ""},
			{"eu-west-1", keyEUWest1, true, ""},
			{"eu-west-1", keyUSEast1, false, ""},
		}
		for _, tt := range tests {
			t.Run(tt.region+"/"+tt.keyID, func(t *testing.T) {
				out, err := k.Client(tt.region, noRetry).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(tt.keyID)})
				if !tt.wantFound {
					if code := apiErrorCode(err); code != "NotFoundException" {
						t.Fatalf("DescribeKey: got error %v (code %q), want NotFoundException", err, code)
					}
					return
				}
				if err != nil {
					t.Fatalf("DescribeKey: %v", err)
				}
				md := out.KeyMetadata
				if got, want := aws.ToString(md.Arn), k.KeyARN(tt.region, tt.keyID); got != want {
					t.Errorf("Arn: got %s, want %s", got, want)
				}
				if got := aws.ToString(md.Description); got != tt.wantDesc {
					t.Errorf("Description: got %q, want %q", got, tt.wantDesc)
				}
				if md.KeyState != kmstypes.KeyStateEnabled {
					t.Errorf("KeyState: got %s, want Enabled", md.KeyState)
				}
			})
		}
		target := localaws.KMSTarget("DescribeKey")
		for _, region := range []string{"us-east-1", "eu-west-1"} {
			if got := k.Router().Count(region, target); got != 2 {
				t.Errorf("Count(%s, %s) = %d, want 2 (readiness probes must not count)", region, target, got)
			}
		}
	})

	t.Run("TagResource and ListResourceTags round trip", func(t *testing.T) {
		client := k.Client("eu-west-1", noRetry)
		tags := []kmstypes.Tag{{TagKey: aws.String("owner"), TagValue: aws.String("team-a")}, {TagKey: aws.String("cost-center"), TagValue: aws.String("42")}}
		if _, err := client.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(k.KeyARN("eu-west-1", keyEUWest1)), Tags: tags}); err != nil {
			t.Fatalf("TagResource: %v", err)
		}
		out, err := client.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(keyEUWest1)})
		if err != nil {
			t.Fatalf("ListResourceTags: %v", err)
		}
		got := map[string]string{}
		for _, tag := range out.Tags {
			got[aws.ToString(tag.TagKey)] = aws.ToString(tag.TagValue)
		}
		if len(got) != 2 || got["owner"] != "team-a" || got["cost-center"] != "42" {
			t.Errorf("tags: got %v, want map[cost-center:42 owner:team-a]", got)
		}
		tag := localaws.KMSTarget("TagResource")
		if n := k.Router().Count("eu-west-1", tag); n != 1 {
			t.Errorf("Count(eu-west-1, TagResource) = %d, want 1", n)
		}
		if n := k.Router().Count("us-east-1", tag); n != 0 {
			t.Errorf("Count(us-east-1, TagResource) = %d, want 0", n)
		}
	})

	t.Run("injected faults reach the SDK as API errors", func(t *testing.T) {
		tag := localaws.KMSTarget("TagResource")
		tests := []struct {
			name  string
			fault localaws.Fault
		}{
			{"internal", localaws.InternalFault},
			{"throttling", localaws.ThrottlingFault},
			{"access denied", localaws.AccessDeniedFault},
		}
		client := k.Client("us-east-1", func(o *kms.Options) {
			o.Retryer = retry.AddWithMaxAttempts(retry.NewStandard(), 1)
		})
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				k.Router().SetIntercept(localaws.FailFirst("us-east-1", tag, -1, tt.fault))
				defer k.Router().SetIntercept(nil)
				_, err := client.TagResource(ctx, &kms.TagResourceInput{
					KeyId: aws.String(keyUSEast1),
					Tags:  []kmstypes.Tag{{TagKey: aws.String("fault"), TagValue: aws.String(tt.name)}},
				})
				if code := apiErrorCode(err); code != tt.fault.Code {
					t.Fatalf("TagResource: got error %v (code %q), want code %s", err, code, tt.fault.Code)
				}
				var re interface{ HTTPStatusCode() int }
				if !errors.As(err, &re) || re.HTTPStatusCode() != tt.fault.Status {
					t.Errorf("TagResource: HTTP status of %v is not %d", err, tt.fault.Status)
				}
			})
		}
		out, err := client.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(keyUSEast1)})
		if err != nil {
			t.Fatalf("ListResourceTags: %v", err)
		}
		if len(out.Tags) != 0 {
			t.Errorf("tags after failed TagResource calls: got %d, want none", len(out.Tags))
		}
	})

	t.Run("SDK retries an injected throttle", func(t *testing.T) {
		tag := localaws.KMSTarget("TagResource")
		k.Router().ResetCounts()
		k.Router().SetIntercept(localaws.FailFirst("us-east-1", tag, 1, localaws.ThrottlingFault))
		defer k.Router().SetIntercept(nil)
		client := k.Client("us-east-1", func(o *kms.Options) {
			o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
				so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
			})
		})
		if _, err := client.TagResource(ctx, &kms.TagResourceInput{
			KeyId: aws.String(keyUSEast1),
			Tags:  []kmstypes.Tag{{TagKey: aws.String("retried"), TagValue: aws.String("yes")}},
		}); err != nil {
			t.Fatalf("TagResource with one injected throttle: %v", err)
		}
		if n := k.Router().Count("us-east-1", tag); n != 2 {
			t.Errorf("Count(us-east-1, TagResource) = %d, want 2 (throttled, then retried)", n)
		}
	})

	t.Run("region without a stand-in", func(t *testing.T) {
		_, err := k.Client("ap-south-1", noRetry).ListKeys(ctx, &kms.ListKeysInput{})
		if code := apiErrorCode(err); code != "UnrecognizedClientException" || !strings.Contains(err.Error(), "ap-south-1") {
			t.Errorf("ListKeys in ap-south-1: got %v (code %q), want UnrecognizedClientException naming ap-south-1", err, code)
		}
	})

	if got := out.String(); !strings.Contains(got, "[local-kms us-east-1] ") || !strings.Contains(got, "[local-kms eu-west-1] ") || !strings.Contains(got, "Local KMS started") {
		t.Errorf("Output: got %q, want lines of both regions, prefixed, including Local KMS started", got)
	}
}

func TestKMSCloseStopsEverything(t *testing.T) {
	k, err := localaws.StartKMS(context.Background(), localaws.KMSOptions{Regions: []string{"us-west-2"}, Account: "444455556666"})
	if err != nil {
		t.Fatalf("StartKMS: %v", err)
	}
	backend, ok := k.Router().Backend("us-west-2")
	if !ok {
		t.Fatal("Router().Backend(us-west-2) not found")
	}
	if got, want := k.KeyARN("us-west-2", "k"), "arn:aws:kms:us-west-2:444455556666:key/k"; got != want {
		t.Errorf("KeyARN = %s, want %s", got, want)
	}
	if err := k.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := k.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	client := &http.Client{Timeout: 2 * time.Second}
	for _, u := range []string{k.URL(), backend} {
		if resp, err := client.Post(u, localaws.KMSContentType, strings.NewReader("{}")); err == nil {
			resp.Body.Close()
			t.Errorf("POST %s after Close: got status %d, want a connection error", u, resp.StatusCode)
		}
	}
}

func TestSQS(t *testing.T) {
	var out localawstest.SyncBuffer
	start := time.Now()
	s, err := localaws.StartSQS(context.Background(), localaws.SQSOptions{Output: &out})
	if err != nil {
		t.Fatalf("StartSQS: %v", err)
	}
	t.Logf("SQS stand-in ready in %v at %s", time.Since(start).Round(time.Millisecond), s.URL())
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("SQS Close: %v", err)
		}
	})
	ctx := context.Background()

	queueURL, err := s.CreateQueue(ctx, "autotagger-dlq")
	if err != nil {
		t.Fatalf("CreateQueue: %v", err)
	}
	if want := s.URL() + "/" + localaws.DefaultAccount + "/autotagger-dlq"; queueURL != want {
		t.Errorf("queue URL: got %s, want %s", queueURL, want)
	}
	client := s.Client(func(o *sqs.Options) { o.Retryer = aws.NopRetryer{} })
	// The dead letters' bodies and attributes, as the tagger sends them.
	attrs := map[string]sqstypes.MessageAttributeValue{
		"ErrorCode": {DataType: aws.String("String"), StringValue: aws.String("KeyPendingDeletion")},
		"Version":   {DataType: aws.String("Number"), StringValue: aws.String("1")},
		"EventName": {DataType: aws.String("String"), StringValue: aws.String("CreateKey — clé")},
	}
	tests := []struct {
		name  string
		body  string
		attrs map[string]sqstypes.MessageAttributeValue
	}{
		{"json", `{"keyArn":"arn:aws:kms:us-east-1:111122223333:key/k","reason":"AccessDenied"}`, nil},
		{"unicode", "clé — 鍵", nil},
		{"attributes", "{\"error\":{\"code\":\"KeyPendingDeletion\",\"message\":\"<&> \\\" \\u0001\"}}\n  ", attrs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(tt.body), MessageAttributes: tt.attrs}); err != nil {
				t.Fatalf("SendMessage: %v", err)
			}
			got, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 1, WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"}})
			if err != nil {
				t.Fatalf("ReceiveMessage: %v", err)
			}
			if len(got.Messages) != 1 || aws.ToString(got.Messages[0].Body) != tt.body {
				t.Fatalf("ReceiveMessage: got %d messages %+v, want one with body %q", len(got.Messages), got.Messages, tt.body)
			}
			gotAttrs := got.Messages[0].MessageAttributes
			if len(gotAttrs) != len(tt.attrs) {
				t.Errorf("attributes: got %d, want %d", len(gotAttrs), len(tt.attrs))
			}
			for name, want := range tt.attrs {
				if g := gotAttrs[name]; aws.ToString(g.StringValue) != aws.ToString(want.StringValue) || aws.ToString(g.DataType) != aws.ToString(want.DataType) {
					t.Errorf("attribute %s: got %s %q, want %s %q", name, aws.ToString(g.DataType), aws.ToString(g.StringValue), aws.ToString(want.DataType), aws.ToString(want.StringValue))
				}
			}
			if _, err := client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: got.Messages[0].ReceiptHandle}); err != nil {
				t.Errorf("DeleteMessage: %v", err)
			}
		})
	}

	// Any credentials act in the stand-in's account, as the SDK's defaults
	// of the tests and of the Lambda emulator sign.
	other := sqs.New(sqs.Options{Region: s.Region(), BaseEndpoint: aws.String(s.URL()), Retryer: aws.NopRetryer{},
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")})
	if _, err := other.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String("x")}); err != nil {
		t.Errorf("SendMessage with other credentials: %v", err)
	}
	attrOut, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(queueURL),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn, sqstypes.QueueAttributeNameApproximateNumberOfMessages}})
	if err != nil || attrOut.Attributes["QueueArn"] != "arn:aws:sqs:us-east-1:"+localaws.DefaultAccount+":autotagger-dlq" || attrOut.Attributes["ApproximateNumberOfMessages"] != "1" {
		t.Errorf("GetQueueAttributes: got %v, %v; want the queue's ARN in us-east-1 and 1 message", attrOut, err)
	}

	_, err = client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(s.URL() + "/" + localaws.DefaultAccount + "/no-such-queue"), MessageBody: aws.String("x")})
	if code := apiErrorCode(err); !strings.Contains(code, "NonExistentQueue") && code != "QueueDoesNotExist" {
		t.Errorf("SendMessage to a missing queue: got %v (code %q), want a queue-does-not-exist error", err, code)
	}

	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	_, err = client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String("after stop")})
	if err == nil {
		t.Fatal("SendMessage after Stop: error = nil, want a connection error")
	}
	if code := apiErrorCode(err); code != "" {
		t.Errorf("SendMessage after Stop: got API error %q, want a connection error", code)
	}
	if !strings.Contains(out.String(), "[moto] ") || !strings.Contains(out.String(), "Running on http://127.0.0.1:") {
		t.Errorf("Output: got %q, want moto's listening line", out.String())
	}
}

// buildEcho builds testdata/echo as a Lambda bootstrap.
func buildEcho(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go not on PATH, needed to build testdata/echo: %v", err)
	}
	bootstrap := filepath.Join(t.TempDir(), "bootstrap")
	cmd := exec.Command(goBin, "build", "-tags", "lambda.norpc", "-o", bootstrap, "./testdata/echo")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./testdata/echo: %v\n%s", err, out)
	}
	return bootstrap
}

// runningExecutables returns the number of processes running path.
func runningExecutables(t *testing.T, path string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("read /proc: %v", err)
	}
	n := 0
	for _, e := range entries {
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && exe == path {
			n++
		}
	}
	return n
}

func TestRIE(t *testing.T) {
	bootstrap := buildEcho(t)
	t.Setenv("LOCALAWS_LEAK_CHECK", "leaked from the test process")
	var stdout localawstest.SyncBuffer
	start := time.Now()
	r, err := localaws.StartRIE(context.Background(), localaws.RIEOptions{
		Bootstrap: bootstrap,
		Env:       []string{"ECHO_SETTING=from-options", "AWS_REGION=eu-west-1"},
		Stdout:    &stdout,
	})
	if err != nil {
		t.Fatalf("StartRIE: %v", err)
	}
	t.Logf("RIE ready in %v at %s", time.Since(start).Round(time.Millisecond), r.URL())
	closed := false
	t.Cleanup(func() {
		if !closed {
			r.Close()
		}
	})
	if want := r.URL() + "/2015-03-31/functions/function/invocations"; r.InvokeURL() != want {
		t.Errorf("InvokeURL() = %s, want %s", r.InvokeURL(), want)
	}

	tests := []struct {
		name       string
		payload    string
		wantStatus int
		want       map[string]any // top-level fields the body must have
	}{
		{
			name:       "echo",
			payload:    `{"hello":"world","n":1}`,
			wantStatus: 200,
			want:       map[string]any{"input": map[string]any{"hello": "world", "n": 1.0}},
		},
		{
			name:       "environment",
			payload:    `{"getenv":["ECHO_SETTING","AWS_REGION","LOCALAWS_LEAK_CHECK","AWS_LAMBDA_FUNCTION_NAME"]}`,
			wantStatus: 200,
			want: map[string]any{"env": map[string]any{
				"ECHO_SETTING":             "from-options",
				"AWS_REGION":               "eu-west-1",
				"LOCALAWS_LEAK_CHECK":      "",
				"AWS_LAMBDA_FUNCTION_NAME": "test_function",
			}},
		},
		{
			name:       "handler error",
			payload:    `{"fail":"boom"}`,
			wantStatus: 200,
			want:       map[string]any{"errorMessage": "boom", "errorType": "errorString"},
		},
		{
			name:       "handler panic",
			payload:    `{"panic":"kaboom"}`,
			wantStatus: 502,
			want:       map[string]any{"errorMessage": "kaboom", "errorType": "string"},
		},
		{
			name:       "echo after the panic starts the bootstrap again",
			payload:    `{"again":true}`,
			wantStatus: 200,
			want:       map[string]any{"input": map[string]any{"again": true}},
		},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			status, body, err := r.Invoke(ctx, []byte(tt.payload))
			if err != nil {
				t.Fatalf("Invoke: %v", err)
			}
			t.Logf("invoke took %v", time.Since(start).Round(time.Millisecond))
			if status != tt.wantStatus {
				t.Errorf("status: got %d, want %d; body %s", status, tt.wantStatus, body)
			}
			var got map[string]any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("body %s: %v", body, err)
			}
			for field, want := range tt.want {
				gotJSON, _ := json.Marshal(got[field])
				wantJSON, _ := json.Marshal(want)
				if !bytes.Equal(gotJSON, wantJSON) {
					t.Errorf("%s: got %s, want %s", field, gotJSON, wantJSON)
				}
			}
		})
	}

	if n := runningExecutables(t, bootstrap); n != 1 {
		t.Errorf("bootstrap processes while the RIE runs: got %d, want 1", n)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	closed = true
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// The RIE SIGKILLs the bootstrap on SIGTERM; give the kernel a moment.
	deadline := time.Now().Add(5 * time.Second)
	for runningExecutables(t, bootstrap) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runningExecutables(t, bootstrap); n != 0 {
		t.Errorf("bootstrap processes after Close: got %d, want 0", n)
	}
	if _, _, err := r.Invoke(ctx, []byte(`{}`)); err == nil {
		t.Error("Invoke after Close: error = nil, want a connection error")
	}
	got := stdout.String()
	for _, want := range []string{"echo: handled", "START RequestId:", "REPORT RequestId:"} {
		if !strings.Contains(got, want) {
			t.Errorf("Stdout: got %q, want it to contain %q", got, want)
		}
	}
	if runtime.GOOS != "linux" {
		t.Logf("bootstrap process checks read /proc; on %s they counted nothing", runtime.GOOS)
	}
}

func TestStartRIERejectsBadBootstrap(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "bootstrap")
	if err := os.WriteFile(notExec, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		bootstrap string
		wantErrIn string
	}{
		{"empty", "", "no bootstrap"},
		{"missing", filepath.Join(dir, "missing"), "no such file"},
		{"not executable", notExec, "not an executable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := localaws.StartRIE(context.Background(), localaws.RIEOptions{Bootstrap: tt.bootstrap})
			if err == nil {
				r.Close()
				t.Fatalf("StartRIE(%q) error = nil, want one containing %q", tt.bootstrap, tt.wantErrIn)
			}
			if !strings.Contains(err.Error(), tt.wantErrIn) {
				t.Errorf("StartRIE(%q) error %q does not contain %q", tt.bootstrap, err, tt.wantErrIn)
			}
		})
	}
}

func TestFreePort(t *testing.T) {
	p, err := localaws.FreePort()
	if err != nil {
		t.Fatalf("FreePort: %v", err)
	}
	if p <= 0 || p > 65535 {
		t.Errorf("FreePort() = %d, want a port in [1, 65535]", p)
	}
}
