package tagger_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kms-autotagger/kms-autotagger/internal/app"
	"github.com/kms-autotagger/kms-autotagger/internal/config"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws/localawstest"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

const (
	homeAccount   = "111122223333"
	memberAccount = "444455556666"
	homeKeyID     = "AKIAHOMEEXAMPLE00001"
	memberRole    = "kms-autotagger-member"
	memberRoleARN = "arn:aws:iam::" + memberAccount + ":role/" + memberRole
	externalID    = "o-a1b2c3d4e5-kms-autotagger"
	creatorARN    = "arn:aws:iam::" + memberAccount + ":user/bob"
)

// stsCall is one request the STS test server received.
type stsCall struct {
	action      string
	callerKeyID string
	form        url.Values
}

// stsServer speaks the STS Query protocol (form-encoded POST, XML answers)
// for AssumeRole and GetCallerIdentity, so that the real SDK STS client and
// stscreds provider talk to it. AssumeRole succeeds for the roles in roles
// and is denied, as STS denies a role that does not exist or does not
// trust the caller, for any other. Each AssumeRole issues a new access key
// id, which it remembers with its account so that the KMS router can send
// the request to that account's stand-in.
type stsServer struct {
	srv *httptest.Server

	mu        sync.Mutex
	roles     map[string]bool
	keys      map[string]string // access key id -> account
	calls     []stsCall
	issued    int
	expired   bool   // issue credentials that have already expired
	errorCode string // answer every AssumeRole with this error (HTTP 400)
}

// credentialPattern takes the access key id and service out of a SigV4
// Authorization header.
var credentialPattern = regexp.MustCompile(`Credential=([A-Z0-9]+)/\d{8}/([a-z0-9-]+)/([a-z0-9]+)/aws4_request`)

func startSTS(t *testing.T, roles ...string) *stsServer {
	t.Helper()
	s := &stsServer{roles: map[string]bool{}, keys: map[string]string{homeKeyID: homeAccount}}
	for _, r := range roles {
		s.roles[r] = true
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *stsServer) serve(w http.ResponseWriter, r *http.Request) {
	m := credentialPattern.FindStringSubmatch(r.Header.Get("Authorization"))
	if r.Method != http.MethodPost || m == nil || m[3] != "sts" ||
		!strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		writeSTSError(w, http.StatusBadRequest, "InvalidRequest", "want a SigV4-signed form POST for sts")
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("Version") != "2011-06-15" {
		writeSTSError(w, http.StatusBadRequest, "InvalidRequest", "want a form with Version=2011-06-15")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	caller := m[1]
	s.calls = append(s.calls, stsCall{action: r.PostForm.Get("Action"), callerKeyID: caller, form: r.PostForm})
	callerAccount, known := s.keys[caller]
	if !known {
		writeSTSError(w, http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid.")
		return
	}
	switch r.PostForm.Get("Action") {
	case "GetCallerIdentity":
		writeXML(w, fmt.Sprintf(`<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">`+
			`<GetCallerIdentityResult><Arn>arn:aws:iam::%[1]s:user/tagger</Arn><UserId>AIDAEXAMPLE</UserId><Account>%[1]s</Account></GetCallerIdentityResult>`+
			`<ResponseMetadata><RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId></ResponseMetadata></GetCallerIdentityResponse>`, callerAccount))
	case "AssumeRole":
		role := r.PostForm.Get("RoleArn")
		if s.errorCode != "" {
			writeSTSError(w, http.StatusBadRequest, s.errorCode, "Rate exceeded")
			return
		}
		if !s.roles[role] {
			writeSTSError(w, http.StatusForbidden, "AccessDenied", fmt.Sprintf(
				"User: arn:aws:sts::%s:assumed-role/kms-autotagger-role/fn is not authorized to perform: sts:AssumeRole on resource: %s", callerAccount, role))
			return
		}
		account := strings.Split(role, ":")[4]
		s.issued++
		keyID := fmt.Sprintf("ASIA%sN%04d", account, s.issued)
		s.keys[keyID] = account
		expiration := time.Now().Add(time.Hour)
		if s.expired {
			expiration = time.Now().Add(-time.Minute)
		}
		writeXML(w, fmt.Sprintf(`<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>`+
			`<Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>secret-%d</SecretAccessKey><SessionToken>token-%d</SessionToken><Expiration>%s</Expiration></Credentials>`+
			`<AssumedRoleUser><Arn>arn:aws:sts::%s:assumed-role/%s/%s</Arn><AssumedRoleId>AROAEXAMPLE:%s</AssumedRoleId></AssumedRoleUser>`+
			`</AssumeRoleResult><ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata></AssumeRoleResponse>`,
			keyID, s.issued, s.issued, expiration.UTC().Format(time.RFC3339), account, escape(role[strings.LastIndex(role, "/")+1:]),
			escape(r.PostForm.Get("RoleSessionName")), escape(r.PostForm.Get("RoleSessionName"))))
	default:
		writeSTSError(w, http.StatusBadRequest, "InvalidAction", "Could not find operation "+r.PostForm.Get("Action"))
	}
}

func escape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func writeXML(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", "c6104cbe-af31-11e0-8154-cbc7ccf896c7")
	_, _ = io.WriteString(w, body)
}

func writeSTSError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", "9b8c7d6e-1f2a-4b3c-8d9e-0a1b2c3d4e5f")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error>`+
		`<RequestId>9b8c7d6e-1f2a-4b3c-8d9e-0a1b2c3d4e5f</RequestId></ErrorResponse>`, escape(code), escape(message))
}

// accountOf returns the account whose credentials carry keyID.
func (s *stsServer) accountOf(keyID string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.keys[keyID]
	return a, ok
}

// set changes the server's behaviour under its lock.
func (s *stsServer) set(f func(*stsServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// callsOf returns the calls of action.
func (s *stsServer) callsOf(action string) []stsCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []stsCall
	for _, c := range s.calls {
		if c.action == action {
			out = append(out, c)
		}
	}
	return out
}

// accountRouter sends each KMS request to the stand-in of the account whose
// credentials signed it, as AWS does: local-kms serves one account per
// process, and the STS server knows which account each access key id
// belongs to. It counts TagResource requests per access key id.
type accountRouter struct {
	sts      *stsServer
	backends map[string]*httputil.ReverseProxy

	mu   sync.Mutex
	tags map[string]int // access key id -> TagResource requests
}

func startRouter(t *testing.T, s *stsServer, stands map[string]*localaws.KMS) (*accountRouter, string) {
	t.Helper()
	rt := &accountRouter{sts: s, backends: map[string]*httputil.ReverseProxy{}, tags: map[string]int{}}
	for account, k := range stands {
		u, err := url.Parse(k.URL())
		if err != nil {
			t.Fatal(err)
		}
		rt.backends[account] = &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host
		}}
	}
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)
	return rt, srv.URL
}

func (rt *accountRouter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m := credentialPattern.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil || m[3] != "kms" {
		localaws.WriteKMSError(w, http.StatusBadRequest, "IncompleteSignatureException", "no SigV4 credential for kms")
		return
	}
	account, ok := rt.sts.accountOf(m[1])
	proxy := rt.backends[account]
	if !ok || proxy == nil {
		localaws.WriteKMSError(w, http.StatusBadRequest, "UnrecognizedClientException", "The security token included in the request is invalid.")
		return
	}
	if r.Header.Get("X-Amz-Target") == localaws.KMSTarget("TagResource") {
		rt.mu.Lock()
		rt.tags[m[1]]++
		rt.mu.Unlock()
	}
	proxy.ServeHTTP(w, r)
}

// tagCalls returns the TagResource requests signed by each access key id.
func (rt *accountRouter) tagCalls() map[string]int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	out := map[string]int{}
	for k, v := range rt.tags {
		out[k] = v
	}
	return out
}

// world is the stand-ins every cross-account test shares: local-kms for the
// tagger's account in one region and for a member account in two, and the
// SQS stand-in for dead letters.
type world struct {
	home, member *localaws.KMS
	sqs          *localaws.SQS
}

func startWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	home, err := localaws.StartKMS(ctx, localaws.KMSOptions{Regions: []string{"us-east-1"}, Account: homeAccount})
	if err != nil {
		t.Fatalf("starting local-kms for %s: %v", homeAccount, err)
	}
	t.Cleanup(func() { _ = home.Close() })
	member, err := localaws.StartKMS(ctx, localaws.KMSOptions{Regions: []string{"us-east-1", "eu-west-1"}, Account: memberAccount})
	if err != nil {
		t.Fatalf("starting local-kms for %s: %v", memberAccount, err)
	}
	t.Cleanup(func() { _ = member.Close() })
	q, err := localaws.StartSQS(ctx, localaws.SQSOptions{})
	if err != nil {
		t.Fatalf("starting SQS stand-in: %v", err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return &world{home: home, member: member, sqs: q}
}

func (w *world) stand(account string) *localaws.KMS {
	if account == homeAccount {
		return w.home
	}
	return w.member
}

func (w *world) createKey(t *testing.T, account, region string) string {
	t.Helper()
	out, err := w.stand(account).Client(region).CreateKey(context.Background(), &kms.CreateKeyInput{})
	if err != nil {
		t.Fatalf("CreateKey in %s %s: %v", account, region, err)
	}
	return aws.ToString(out.KeyMetadata.Arn)
}

func (w *world) keyTags(t *testing.T, keyARN string) map[string]string {
	t.Helper()
	return localawstest.KeyTags(t, w.stand(strings.Split(keyARN, ":")[4]), keyARN)
}

// memberKeyEvent is a CreateKey event as EventBridge delivers it to the central
// bus, for keyARN in its account and region.
func memberKeyEvent(eventID, keyARN string) json.RawMessage {
	parts := strings.Split(keyARN, ":")
	region, account := parts[3], parts[4]
	keyID := keyARN[strings.LastIndex(keyARN, "/")+1:]
	ev := map[string]any{
		"version": "0", "id": "7f1b2c3d-0000-4000-8000-" + eventID[len(eventID)-12:], "detail-type": "AWS API Call via CloudTrail",
		"source": "aws.kms", "account": account, "time": "2024-01-09T18:52:34Z", "region": region, "resources": []string{},
		"detail": map[string]any{
			"eventVersion": "1.09",
			"userIdentity": map[string]any{"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": "arn:aws:iam::" + account + ":user/bob", "accountId": account, "userName": "bob"},
			"eventTime":    "2024-01-09T18:52:34Z", "eventSource": "kms.amazonaws.com", "eventName": "CreateKey", "awsRegion": region,
			"requestParameters": map[string]any{"keySpec": "SYMMETRIC_DEFAULT", "keyUsage": "ENCRYPT_DECRYPT", "origin": "AWS_KMS"},
			"responseElements": map[string]any{"keyMetadata": map[string]any{
				"AWSAccountId": account, "keyId": keyID, "arn": keyARN, "keyState": "Enabled", "origin": "AWS_KMS", "keyManager": "CUSTOMER",
			}},
			"eventID": eventID, "readOnly": false, "eventType": "AwsApiCall", "managementEvent": true, "recipientAccountId": account,
		},
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return b
}

func eventID(n int) string { return fmt.Sprintf("22222222-bbbb-4ccc-8ddd-%012d", n) }

// queues numbers the dead-letter queues of the rigs.
var queues atomic.Int32

// rig is one AccountKMS wired to a fresh STS server and router, in a
// tagger.Handler that dead-letters to a fresh queue.
type rig struct {
	sts      *stsServer
	router   *accountRouter
	clients  *tagger.AccountKMS
	handler  *tagger.Handler
	queueURL string
}

func newRig(t *testing.T, w *world, opts tagger.AccountKMSOptions, roles ...string) *rig {
	t.Helper()
	s := startSTS(t, roles...)
	router, routerURL := startRouter(t, s, map[string]*localaws.KMS{homeAccount: w.home, memberAccount: w.member})
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(homeKeyID, "home-secret", "")}
	stsClient := sts.NewFromConfig(cfg, func(o *sts.Options) {
		o.BaseEndpoint = aws.String(s.srv.URL)
		o.Retryer = aws.NopRetryer{}
	})
	retryer := tagger.NewRetryer(tagger.RetryOptions{MaxAttempts: 3, MaxBackoff: 10 * time.Millisecond, NotFoundAttempts: 2})
	clients := tagger.NewAccountKMS(cfg, stsClient, opts, func(o *kms.Options) {
		o.BaseEndpoint = aws.String(routerURL)
		o.Retryer = retryer
	})
	queueURL, err := w.sqs.CreateQueue(context.Background(), fmt.Sprintf("cross-account-dlq-%d", queues.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	policy, err := tagger.NewPolicy(tagger.DefaultNames(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &tagger.Handler{
		Policy:            policy,
		KMS:               clients,
		DeadLetters:       &tagger.DeadLetterQueue{SQS: w.sqs.Client(), URL: queueURL},
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
		DeadLetterReserve: time.Second,
	}
	return &rig{sts: s, router: router, clients: clients, handler: h, queueURL: queueURL}
}

func (r *rig) handle(t *testing.T, event json.RawMessage) tagger.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := r.handler.Handle(ctx, event)
	if err != nil {
		t.Fatalf("Handle: %v (outcome %s)", err, res.Outcome)
	}
	return res
}

// memberTagCalls returns the TagResource requests signed with credentials
// other than the base ones, and by how many access key ids.
func (r *rig) memberTagCalls() (calls, keyIDs int) {
	for id, n := range r.router.tagCalls() {
		if id != homeKeyID {
			calls += n
			keyIDs++
		}
	}
	return calls, keyIDs
}

func TestAccountKMS(t *testing.T) {
	w := startWorld(t)

	t.Run("own account keys use the base credentials", func(t *testing.T) {
		r := newRig(t, w, tagger.AccountKMSOptions{RoleName: memberRole}, memberRoleARN)
		if n := len(r.sts.callsOf("GetCallerIdentity")) + len(r.sts.callsOf("AssumeRole")); n != 0 {
			t.Fatalf("STS calls after NewAccountKMS: got %d, want 0 (no network call at initialization)", n)
		}
		for i := range 2 {
			key := w.createKey(t, homeAccount, "us-east-1")
			res := r.handle(t, memberKeyEvent(eventID(i), key))
			if res.Outcome != tagger.OutcomeTagged {
				t.Fatalf("outcome: got %s (%s), want tagged", res.Outcome, res.Reason)
			}
			if got := w.keyTags(t, key)["CreatedBy"]; got != "arn:aws:iam::"+homeAccount+":user/bob" {
				t.Errorf("CreatedBy on %s: got %q, want the creator", key, got)
			}
		}
		if n := len(r.sts.callsOf("AssumeRole")); n != 0 {
			t.Errorf("AssumeRole calls: got %d, want 0 for the tagger's own keys", n)
		}
		if n := len(r.sts.callsOf("GetCallerIdentity")); n != 1 {
			t.Errorf("GetCallerIdentity calls: got %d, want 1 (asked once, then kept)", n)
		}
		if got := r.router.tagCalls(); got[homeKeyID] != 2 || len(got) != 1 {
			t.Errorf("TagResource calls by access key id: got %v, want 2, all with the base credentials %s", got, homeKeyID)
		}
	})

	t.Run("member account keys after exactly one AssumeRole", func(t *testing.T) {
		r := newRig(t, w, tagger.AccountKMSOptions{HomeAccount: homeAccount, RoleName: memberRole, ExternalID: externalID}, memberRoleARN)
		keys := []string{w.createKey(t, memberAccount, "us-east-1"), w.createKey(t, memberAccount, "eu-west-1"), w.createKey(t, memberAccount, "us-east-1")}
		for i, key := range keys {
			res := r.handle(t, memberKeyEvent(eventID(10+i), key))
			if res.Outcome != tagger.OutcomeTagged || res.Account != memberAccount {
				t.Fatalf("key %s: got %s (%s) account %s, want tagged in %s", key, res.Outcome, res.Reason, res.Account, memberAccount)
			}
			if got := w.keyTags(t, key); got["CreatedBy"] != creatorARN || got["CreationEventId"] != eventID(10+i) {
				t.Errorf("tags on %s: got %v, want CreatedBy %s and CreationEventId %s", key, got, creatorARN, eventID(10+i))
			}
		}
		calls := r.sts.callsOf("AssumeRole")
		if len(calls) != 1 {
			t.Fatalf("AssumeRole calls: got %d, want exactly 1 for %d keys of one account", len(calls), len(keys))
		}
		want := map[string]string{"RoleArn": memberRoleARN, "RoleSessionName": tagger.DefaultSessionName, "ExternalId": externalID, "DurationSeconds": "900"}
		for field, v := range want {
			if got := calls[0].form.Get(field); got != v {
				t.Errorf("AssumeRole %s: got %q, want %q", field, got, v)
			}
		}
		if calls[0].callerKeyID != homeKeyID {
			t.Errorf("AssumeRole signed by %s, want the base credentials %s", calls[0].callerKeyID, homeKeyID)
		}
		if n := len(r.sts.callsOf("GetCallerIdentity")); n != 0 {
			t.Errorf("GetCallerIdentity calls: got %d, want 0 when the home account is given", n)
		}
		if n, ids := r.memberTagCalls(); n != len(keys) || ids != 1 {
			t.Errorf("member TagResource calls: got %d by %d access key ids, want %d by the one assumed-role key", n, ids, len(keys))
		}
		if got := r.router.tagCalls()[homeKeyID]; got != 0 {
			t.Errorf("TagResource calls with the base credentials: got %d, want 0", got)
		}
	})

	t.Run("no external id and a role path", func(t *testing.T) {
		pathRole := "arn:aws:iam::" + memberAccount + ":role/governance/" + memberRole
		r := newRig(t, w, tagger.AccountKMSOptions{HomeAccount: homeAccount, RoleName: memberRole, RolePath: "/governance/", SessionName: "central-tagger"}, pathRole)
		key := w.createKey(t, memberAccount, "us-east-1")
		if res := r.handle(t, memberKeyEvent(eventID(20), key)); res.Outcome != tagger.OutcomeTagged {
			t.Fatalf("outcome: got %s (%s), want tagged", res.Outcome, res.Reason)
		}
		calls := r.sts.callsOf("AssumeRole")
		if len(calls) != 1 {
			t.Fatalf("AssumeRole calls: got %d, want 1", len(calls))
		}
		if got := calls[0].form.Get("RoleArn"); got != pathRole {
			t.Errorf("RoleArn: got %q, want %q", got, pathRole)
		}
		if got := calls[0].form.Get("RoleSessionName"); got != "central-tagger" {
			t.Errorf("RoleSessionName: got %q, want central-tagger", got)
		}
		if _, sent := calls[0].form["ExternalId"]; sent {
			t.Errorf("ExternalId sent (%q), want none when not configured", calls[0].form.Get("ExternalId"))
		}
	})

	t.Run("concurrent first use assumes the role once", func(t *testing.T) {
		r := newRig(t, w, tagger.AccountKMSOptions{HomeAccount: homeAccount, RoleName: memberRole}, memberRoleARN)
		const n = 6
		keys := make([]string, n)
		for i := range keys {
			keys[i] = w.createKey(t, memberAccount, []string{"us-east-1", "eu-west-1"}[i%2])
		}
		var wg sync.WaitGroup
		results := make([]tagger.Result, n)
		errs := make([]error, n)
		for i := range keys {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				results[i], errs[i] = r.handler.Handle(ctx, memberKeyEvent(eventID(30+i), keys[i]))
			})
		}
		wg.Wait()
		for i := range keys {
			if errs[i] != nil || results[i].Outcome != tagger.OutcomeTagged {
				t.Errorf("key %s: got %s, %v, want tagged", keys[i], results[i].Outcome, errs[i])
			}
		}
		if got := len(r.sts.callsOf("AssumeRole")); got != 1 {
			t.Errorf("AssumeRole calls: got %d, want 1 for %d concurrent events of one account", got, n)
		}
	})

	t.Run("expired credentials are assumed again", func(t *testing.T) {
		r := newRig(t, w, tagger.AccountKMSOptions{HomeAccount: homeAccount, RoleName: memberRole}, memberRoleARN)
		r.sts.set(func(s *stsServer) { s.expired = true })
		for i := range 2 {
			key := w.createKey(t, memberAccount, "us-east-1")
			if res := r.handle(t, memberKeyEvent(eventID(40+i), key)); res.Outcome != tagger.OutcomeTagged {
				t.Fatalf("outcome: got %s (%s), want tagged", res.Outcome, res.Reason)
			}
		}
		if got := len(r.sts.callsOf("AssumeRole")); got != 2 {
			t.Errorf("AssumeRole calls: got %d, want 2 (the first credentials had expired)", got)
		}
		if n, ids := r.memberTagCalls(); n != 2 || ids != 2 {
			t.Errorf("member TagResource calls: got %d by %d access key ids, want 2 by 2", n, ids)
		}
	})

	t.Run("AssumeRole denied is dead-lettered naming the account and role", func(t *testing.T) {
		r := newRig(t, w, tagger.AccountKMSOptions{HomeAccount: homeAccount, RoleName: memberRole, ExternalID: externalID}) // no role exists
		key := w.createKey(t, memberAccount, "us-east-1")
		res := r.handle(t, memberKeyEvent(eventID(50), key))
		if res.Outcome != tagger.OutcomeDeadLettered || res.ErrorCode != tagger.CodeAssumeRoleFailed {
			t.Fatalf("got %s %s (%s), want dead-lettered %s", res.Outcome, res.ErrorCode, res.Reason, tagger.CodeAssumeRoleFailed)
		}
		if res.Attempts != 1 {
			t.Errorf("attempts: got %d, want 1 (access denied is not retried)", res.Attempts)
		}
		letters := localawstest.DrainDeadLetters(t, w.sqs, r.queueURL)
		if len(letters) != 1 {
			t.Fatalf("dead letters: got %d, want 1", len(letters))
		}
		d := letters[0].Record
		t.Logf("dead letter error: %+v", d.Error)
		if d.Account != memberAccount || d.KeyARN != key || d.Error.Code != tagger.CodeAssumeRoleFailed || d.Error.Class != "permanent" {
			t.Errorf("record: got account %s key %s error %+v, want %s %s %s permanent", d.Account, d.KeyARN, d.Error, memberAccount, key, tagger.CodeAssumeRoleFailed)
		}
		for _, want := range []string{memberAccount, memberRoleARN, "AccessDenied", "not authorized to perform: sts:AssumeRole"} {
			if !strings.Contains(d.Error.Message, want) {
				t.Errorf("dead letter message %q does not contain %q", d.Error.Message, want)
			}
		}
		if len(w.keyTags(t, key)) != 0 {
			t.Errorf("key got tags, want none")
		}
		if n := len(r.sts.callsOf("AssumeRole")); n != 1 {
			t.Errorf("AssumeRole calls: got %d, want 1", n)
		}
		if got := r.router.tagCalls(); len(got) != 0 {
			t.Errorf("TagResource requests reaching KMS: got %v, want none", got)
		}
	})

	t.Run("STS throttled is returned for Lambda to retry", func(t *testing.T) {
		r := newRig(t, w, tagger.AccountKMSOptions{HomeAccount: homeAccount, RoleName: memberRole}, memberRoleARN)
		r.sts.set(func(s *stsServer) { s.errorCode = "Throttling" })
		key := w.createKey(t, memberAccount, "us-east-1")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := r.handler.Handle(ctx, memberKeyEvent(eventID(60), key))
		if err == nil || res.Outcome != tagger.OutcomeError || res.ErrorCode != "Throttling" {
			t.Fatalf("got %s %s, %v; want error Throttling", res.Outcome, res.ErrorCode, err)
		}
		if !strings.Contains(err.Error(), memberRoleARN) {
			t.Errorf("error %q does not name the role %s", err, memberRoleARN)
		}
		if got := len(r.sts.callsOf("AssumeRole")); got != 3 {
			t.Errorf("AssumeRole calls: got %d, want 3 (one per attempt of the KMS retryer)", got)
		}
		if letters := localawstest.DrainDeadLetters(t, w.sqs, r.queueURL); len(letters) != 0 {
			t.Errorf("dead letters: got %d, want 0", len(letters))
		}
	})

	t.Run("cross-account off refuses foreign keys naming the account", func(t *testing.T) {
		r := newRig(t, w, tagger.AccountKMSOptions{HomeAccount: homeAccount}, memberRoleARN)
		key := w.createKey(t, memberAccount, "us-east-1")
		res := r.handle(t, memberKeyEvent(eventID(70), key))
		if res.Outcome != tagger.OutcomeDeadLettered || res.ErrorCode != tagger.CodeCrossAccountOff {
			t.Fatalf("got %s %s (%s), want dead-lettered %s", res.Outcome, res.ErrorCode, res.Reason, tagger.CodeCrossAccountOff)
		}
		letters := localawstest.DrainDeadLetters(t, w.sqs, r.queueURL)
		if len(letters) != 1 {
			t.Fatalf("dead letters: got %d, want 1", len(letters))
		}
		for _, want := range []string{memberAccount, homeAccount, "cross-account tagging is off"} {
			if !strings.Contains(letters[0].Record.Error.Message, want) {
				t.Errorf("dead letter message %q does not contain %q", letters[0].Record.Error.Message, want)
			}
		}
		if n := len(r.sts.callsOf("GetCallerIdentity")) + len(r.sts.callsOf("AssumeRole")); n != 0 {
			t.Errorf("STS calls: got %d, want 0", n)
		}
		if got := r.router.tagCalls(); len(got) != 0 {
			t.Errorf("TagResource requests: got %v, want none", got)
		}
		// The tagger's own keys are still tagged.
		own := w.createKey(t, homeAccount, "us-east-1")
		if res := r.handle(t, memberKeyEvent(eventID(71), own)); res.Outcome != tagger.OutcomeTagged {
			t.Errorf("own key: got %s (%s), want tagged", res.Outcome, res.Reason)
		}
	})

	t.Run("app.NewHandler wires the settings and AWS_ENDPOINT_URL_STS", func(t *testing.T) {
		s := startSTS(t, memberRoleARN)
		_, routerURL := startRouter(t, s, map[string]*localaws.KMS{homeAccount: w.home, memberAccount: w.member})
		queueURL, err := w.sqs.CreateQueue(context.Background(), "app-wiring")
		if err != nil {
			t.Fatal(err)
		}
		env := map[string]string{
			"AWS_ENDPOINT_URL_KMS": routerURL, "AWS_ENDPOINT_URL_STS": s.srv.URL, "AWS_ENDPOINT_URL_SQS": w.sqs.URL(),
			"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": homeKeyID, "AWS_SECRET_ACCESS_KEY": "home-secret", "AWS_SESSION_TOKEN": "",
			"AWS_PROFILE": "", "AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
			"DEAD_LETTER_QUEUE_URL": queueURL, "MAX_BACKOFF": "10ms",
			"MEMBER_ROLE_NAME": memberRole, "MEMBER_ROLE_EXTERNAL_ID": externalID,
		}
		for k, v := range env {
			t.Setenv(k, v)
		}
		cfg, err := config.FromEnv(os.Getenv)
		if err != nil {
			t.Fatal(err)
		}
		h, err := app.NewHandler(cfg, localawstest.FunctionConfig(t), slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(s.callsOf("GetCallerIdentity")) + len(s.callsOf("AssumeRole")); n != 0 {
			t.Fatalf("STS calls after NewHandler: got %d, want 0", n)
		}
		key := w.createKey(t, memberAccount, "eu-west-1")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := h.Handle(ctx, memberKeyEvent(eventID(80), key))
		if err != nil || res.Outcome != tagger.OutcomeTagged {
			t.Fatalf("got %s (%s), %v; want tagged", res.Outcome, res.Reason, err)
		}
		if got := w.keyTags(t, key)["CreatedBy"]; got != creatorARN {
			t.Errorf("CreatedBy: got %q, want %q", got, creatorARN)
		}
		calls := s.callsOf("AssumeRole")
		if len(calls) != 1 || calls[0].form.Get("RoleArn") != memberRoleARN || calls[0].form.Get("ExternalId") != externalID {
			t.Errorf("AssumeRole calls: got %+v, want one for %s with external id %s", calls, memberRoleARN, externalID)
		}
		if n := len(s.callsOf("GetCallerIdentity")); n != 1 {
			t.Errorf("GetCallerIdentity calls: got %d, want 1 (HOME_ACCOUNT_ID is not set)", n)
		}
	})
}

func TestAccountKMSRoleARN(t *testing.T) {
	tests := []struct {
		path, region, want string
	}{
		{"", "us-east-1", "arn:aws:iam::444455556666:role/kms-autotagger-member"},
		{"/", "eu-west-1", "arn:aws:iam::444455556666:role/kms-autotagger-member"},
		{"/governance/", "ap-southeast-2", "arn:aws:iam::444455556666:role/governance/kms-autotagger-member"},
		{"governance", "us-east-1", "arn:aws:iam::444455556666:role/governance/kms-autotagger-member"},
		{"", "cn-north-1", "arn:aws-cn:iam::444455556666:role/kms-autotagger-member"},
		{"", "us-gov-west-1", "arn:aws-us-gov:iam::444455556666:role/kms-autotagger-member"},
		{"", "us-iso-east-1", "arn:aws-iso:iam::444455556666:role/kms-autotagger-member"},
		{"", "us-isob-east-1", "arn:aws-iso-b:iam::444455556666:role/kms-autotagger-member"},
		{"", "eusc-de-east-1", "arn:aws-eusc:iam::444455556666:role/kms-autotagger-member"},
	}
	for _, tt := range tests {
		a := tagger.NewAccountKMS(aws.Config{}, nil, tagger.AccountKMSOptions{RoleName: memberRole, RolePath: tt.path})
		if got := a.RoleARN(memberAccount, tt.region); got != tt.want {
			t.Errorf("RoleARN(path %q, region %s) = %q, want %q", tt.path, tt.region, got, tt.want)
		}
	}
}

func TestAccountErrorNamesAccountAndRole(t *testing.T) {
	err := fmt.Errorf("tagging key k: %w", &tagger.AccountError{Account: memberAccount, RoleARN: memberRoleARN, Err: fmt.Errorf("AccessDenied")})
	for _, want := range []string{memberAccount, memberRoleARN, "AccessDenied"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}
