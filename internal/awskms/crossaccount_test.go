package awskms_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kms-autotagger/kms-autotagger/internal/app"
	"github.com/kms-autotagger/kms-autotagger/internal/awskms"
	"github.com/kms-autotagger/kms-autotagger/internal/awssqs"
	"github.com/kms-autotagger/kms-autotagger/internal/config"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws/localawstest"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

const (
	homeAccount   = "111122223333"
	memberAccount = "444455556666"
	memberRole    = "kms-autotagger-member"
	memberRoleARN = "arn:aws:iam::" + memberAccount + ":role/" + memberRole
	externalID    = "o-a1b2c3d4e5-kms-autotagger"
	creatorARN    = "arn:aws:iam::" + memberAccount + ":user/bob"
)

// world is the stand-ins every cross-account test shares: moto for STS,
// whose AssumeRole into the member account's role gives credentials moto
// then knows as the member account's; local-kms for the tagger's account
// in one region and for the member account in two; and the SQS stand-in
// for dead letters. home is the tagger's base credentials, an IAM user of
// moto in homeAccount.
type world struct {
	moto         *localaws.Moto
	home, member *localaws.KMS
	sqs          *localaws.SQS
	homeKey      aws.Credentials
	homeARN      string
}

func startWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	m, err := localaws.StartMoto(ctx, localaws.MotoOptions{Account: homeAccount})
	if err != nil {
		t.Fatalf("starting moto: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
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
	w := &world{moto: m, home: home, member: member, sqs: q}
	w.homeKey, _ = m.Credentials().Retrieve(ctx)
	id, err := sts.NewFromConfig(m.Config("us-east-1")).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity of the base credentials: %v", err)
	}
	w.homeARN = aws.ToString(id.Arn)
	return w
}

// stsFaults is the moto hook of a rig: what STS does and moto does not.
// moto lets any role be assumed, existing or not, trusting the caller or
// not, never throttles, and issues credentials that expire when asked. So
// AssumeRole of a role not in roles is answered here with the AccessDenied
// STS gives for a role that does not exist or does not trust the caller;
// with errorCode set every AssumeRole gets that error (HTTP 400); the next
// expired AssumeRole answers give moto's credentials with an Expiration
// already past. Everything else is moto's answer.
type stsFaults struct {
	callerARN string

	mu        sync.Mutex
	roles     map[string]bool
	expired   int
	errorCode string
}

// expirationElement is the Expiration of an AssumeRole answer.
var expirationElement = regexp.MustCompile(`<Expiration>[^<]*</Expiration>`)

func (f *stsFaults) hook(w http.ResponseWriter, r *http.Request, call localaws.MotoCall, next http.Handler) {
	if call.Service != "sts" || call.Operation != "AssumeRole" {
		next.ServeHTTP(w, r)
		return
	}
	f.mu.Lock()
	role := call.Params.Get("RoleArn")
	allowed, expired, code := f.roles[role], f.expired > 0, f.errorCode
	if allowed && code == "" && expired {
		f.expired--
	}
	f.mu.Unlock()
	switch {
	case code != "":
		localaws.WriteQueryError(w, http.StatusBadRequest, code, "Rate exceeded")
	case !allowed:
		localaws.WriteQueryError(w, http.StatusForbidden, "AccessDenied", fmt.Sprintf(
			"User: %s is not authorized to perform: sts:AssumeRole on resource: %s", f.callerARN, role))
	case expired:
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		past := "<Expiration>" + time.Now().Add(-time.Minute).UTC().Format(time.RFC3339) + "</Expiration>"
		body := expirationElement.ReplaceAllLiteral(rec.Body.Bytes(), []byte(past))
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	default:
		next.ServeHTTP(w, r)
	}
}

// set changes the faults under their lock.
func (f *stsFaults) set(change func(*stsFaults)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f)
}

// accounts readies the world for one test: it forgets moto's record of
// requests, installs the STS faults that let only roles be assumed, and
// starts a KMS endpoint routing by account, which asks moto the account
// of each access key.
func (w *world) accounts(t *testing.T, roles ...string) (*stsFaults, *localaws.AccountRouter, string) {
	t.Helper()
	faults := &stsFaults{callerARN: w.homeARN, roles: map[string]bool{}}
	for _, r := range roles {
		faults.roles[r] = true
	}
	w.moto.ResetCalls()
	w.moto.SetHook(faults.hook)
	t.Cleanup(func() { w.moto.SetHook(nil) })
	router, err := localaws.NewAccountRouter(w.moto, map[string]*localaws.KMS{homeAccount: w.home, memberAccount: w.member})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)
	return faults, router, srv.URL
}

// stsCalls returns moto's record of the STS requests for op since the
// test's accounts call.
func (w *world) stsCalls(op string) []localaws.MotoCall { return w.moto.Calls("sts", op) }

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
// bus, for keyARN in its account and region, at localawstest.EventTime (the
// tagger checks it against the key's CreationDate).
func memberKeyEvent(eventID, keyARN string) json.RawMessage {
	parts := strings.Split(keyARN, ":")
	region, account := parts[3], parts[4]
	keyID := keyARN[strings.LastIndex(keyARN, "/")+1:]
	ev := map[string]any{
		"version": "0", "id": "7f1b2c3d-0000-4000-8000-" + eventID[len(eventID)-12:], "detail-type": "AWS API Call via CloudTrail",
		"source": "aws.kms", "account": account, "time": localawstest.EventTime, "region": region, "resources": []string{},
		"detail": map[string]any{
			"eventVersion": "1.09",
			"userIdentity": map[string]any{"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": "arn:aws:iam::" + account + ":user/bob", "accountId": account, "userName": "bob"},
			"eventTime":    localawstest.EventTime, "eventSource": "kms.amazonaws.com", "eventName": "CreateKey", "awsRegion": region,
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

// rig is one AccountKMS with the base credentials, moto's STS and a KMS
// endpoint routing by account, in a tagger.Handler that dead-letters to a
// fresh queue.
type rig struct {
	w        *world
	faults   *stsFaults
	router   *localaws.AccountRouter
	clients  *awskms.AccountKMS
	handler  *tagger.Handler
	queueURL string
}

// newRig makes a rig in which only roles can be assumed.
func newRig(t *testing.T, w *world, opts awskms.AccountKMSOptions, roles ...string) *rig {
	t.Helper()
	faults, router, routerURL := w.accounts(t, roles...)
	cfg := aws.Config{Region: "us-east-1", Credentials: w.moto.Credentials()}
	stsClient := sts.NewFromConfig(cfg, func(o *sts.Options) {
		o.BaseEndpoint = aws.String(w.moto.URL())
		o.Retryer = aws.NopRetryer{}
	})
	retryer := awskms.NewRetryer(awskms.RetryOptions{MaxAttempts: 3, MaxBackoff: 10 * time.Millisecond, NotFoundAttempts: 2})
	clients := awskms.NewAccountKMS(cfg, stsClient, opts, func(o *kms.Options) {
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
		DeadLetters:       &awssqs.DeadLetterQueue{SQS: w.sqs.Client(), URL: queueURL},
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
		DeadLetterReserve: time.Second,
	}
	return &rig{w: w, faults: faults, router: router, clients: clients, handler: h, queueURL: queueURL}
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

// tagCalls returns the TagResource requests the router received, by the
// access key id that signed them.
func (r *rig) tagCalls() map[string]int {
	return r.router.CountsByAccessKey(localaws.KMSTarget("TagResource"))
}

// memberTagCalls returns the TagResource requests signed with credentials
// other than the base ones, and by how many access key ids.
func (r *rig) memberTagCalls() (calls, keyIDs int) {
	for id, n := range r.tagCalls() {
		if id != r.w.homeKey.AccessKeyID {
			calls += n
			keyIDs++
		}
	}
	return calls, keyIDs
}

func TestAccountKMS(t *testing.T) {
	w := startWorld(t)

	t.Run("own account keys use the base credentials", func(t *testing.T) {
		r := newRig(t, w, awskms.AccountKMSOptions{RoleName: memberRole}, memberRoleARN)
		if n := len(w.stsCalls("GetCallerIdentity")) + len(w.stsCalls("AssumeRole")); n != 0 {
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
		if n := len(w.stsCalls("AssumeRole")); n != 0 {
			t.Errorf("AssumeRole calls: got %d, want 0 for the tagger's own keys", n)
		}
		if n := len(w.stsCalls("GetCallerIdentity")); n != 1 {
			t.Errorf("GetCallerIdentity calls: got %d, want 1 (asked once, then kept)", n)
		}
		if got := r.tagCalls(); got[w.homeKey.AccessKeyID] != 2 || len(got) != 1 {
			t.Errorf("TagResource calls by access key id: got %v, want 2, all with the base credentials %s", got, w.homeKey.AccessKeyID)
		}
	})

	t.Run("member account keys after exactly one AssumeRole", func(t *testing.T) {
		r := newRig(t, w, awskms.AccountKMSOptions{HomeAccount: homeAccount, RoleName: memberRole, ExternalID: externalID}, memberRoleARN)
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
		calls := w.stsCalls("AssumeRole")
		if len(calls) != 1 {
			t.Fatalf("AssumeRole calls: got %d, want exactly 1 for %d keys of one account", len(calls), len(keys))
		}
		want := map[string]string{"RoleArn": memberRoleARN, "RoleSessionName": awskms.DefaultSessionName, "ExternalId": externalID, "DurationSeconds": "900"}
		for field, v := range want {
			if got := calls[0].Params.Get(field); got != v {
				t.Errorf("AssumeRole %s: got %q, want %q", field, got, v)
			}
		}
		if calls[0].AccessKeyID != w.homeKey.AccessKeyID {
			t.Errorf("AssumeRole signed by %s, want the base credentials %s", calls[0].AccessKeyID, w.homeKey.AccessKeyID)
		}
		if n := len(w.stsCalls("GetCallerIdentity")); n != 0 {
			t.Errorf("GetCallerIdentity calls: got %d, want 0 when the home account is given", n)
		}
		if n, ids := r.memberTagCalls(); n != len(keys) || ids != 1 {
			t.Errorf("member TagResource calls: got %d by %d access key ids, want %d by the one assumed-role key", n, ids, len(keys))
		}
		if got := r.tagCalls()[w.homeKey.AccessKeyID]; got != 0 {
			t.Errorf("TagResource calls with the base credentials: got %d, want 0", got)
		}
		// The key that signed them is moto's assumed-role key of the member account.
		for id := range r.tagCalls() {
			if account, err := w.moto.AccountOf(context.Background(), id); err != nil || account != memberAccount {
				t.Errorf("account of access key %s: got %s, %v; want %s", id, account, err, memberAccount)
			}
		}
	})

	t.Run("no external id and a role path", func(t *testing.T) {
		pathRole := "arn:aws:iam::" + memberAccount + ":role/governance/" + memberRole
		r := newRig(t, w, awskms.AccountKMSOptions{HomeAccount: homeAccount, RoleName: memberRole, RolePath: "/governance/", SessionName: "central-tagger"}, pathRole)
		key := w.createKey(t, memberAccount, "us-east-1")
		if res := r.handle(t, memberKeyEvent(eventID(20), key)); res.Outcome != tagger.OutcomeTagged {
			t.Fatalf("outcome: got %s (%s), want tagged", res.Outcome, res.Reason)
		}
		calls := w.stsCalls("AssumeRole")
		if len(calls) != 1 {
			t.Fatalf("AssumeRole calls: got %d, want 1", len(calls))
		}
		if got := calls[0].Params.Get("RoleArn"); got != pathRole {
			t.Errorf("RoleArn: got %q, want %q", got, pathRole)
		}
		if got := calls[0].Params.Get("RoleSessionName"); got != "central-tagger" {
			t.Errorf("RoleSessionName: got %q, want central-tagger", got)
		}
		if _, sent := calls[0].Params["ExternalId"]; sent {
			t.Errorf("ExternalId sent (%q), want none when not configured", calls[0].Params.Get("ExternalId"))
		}
	})

	t.Run("concurrent first use assumes the role once", func(t *testing.T) {
		r := newRig(t, w, awskms.AccountKMSOptions{HomeAccount: homeAccount, RoleName: memberRole}, memberRoleARN)
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
		if got := len(w.stsCalls("AssumeRole")); got != 1 {
			t.Errorf("AssumeRole calls: got %d, want 1 for %d concurrent events of one account", got, n)
		}
	})

	t.Run("expired credentials are assumed again", func(t *testing.T) {
		r := newRig(t, w, awskms.AccountKMSOptions{HomeAccount: homeAccount, RoleName: memberRole}, memberRoleARN)
		r.faults.set(func(f *stsFaults) { f.expired = 1 })
		for i := range 2 {
			key := w.createKey(t, memberAccount, "us-east-1")
			if res := r.handle(t, memberKeyEvent(eventID(40+i), key)); res.Outcome != tagger.OutcomeTagged {
				t.Fatalf("outcome: got %s (%s), want tagged", res.Outcome, res.Reason)
			}
		}
		if got := len(w.stsCalls("AssumeRole")); got != 2 {
			t.Errorf("AssumeRole calls: got %d, want 2 (the first credentials had expired)", got)
		}
		// The expired credentials signed the one request they were fetched
		// for; the second ones everything after.
		byKey := r.router.CountsByAccessKey(localaws.AnyTarget)
		delete(byKey, w.homeKey.AccessKeyID)
		var counts []int
		for _, n := range byKey {
			counts = append(counts, n)
		}
		slices.Sort(counts)
		if len(counts) != 2 || counts[0] != 1 {
			t.Errorf("member KMS requests by access key id: got %v, want 1 by the expired key and the rest by the second", byKey)
		}
		if n, _ := r.memberTagCalls(); n != 2 {
			t.Errorf("member TagResource calls: got %d, want 2", n)
		}
	})

	t.Run("AssumeRole denied is dead-lettered naming the account and role", func(t *testing.T) {
		r := newRig(t, w, awskms.AccountKMSOptions{HomeAccount: homeAccount, RoleName: memberRole, ExternalID: externalID}) // no role exists
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
		if n := len(w.stsCalls("AssumeRole")); n != 1 {
			t.Errorf("AssumeRole calls: got %d, want 1", n)
		}
		if got := r.tagCalls(); len(got) != 0 {
			t.Errorf("TagResource requests reaching KMS: got %v, want none", got)
		}
	})

	t.Run("STS throttled is returned for Lambda to retry", func(t *testing.T) {
		r := newRig(t, w, awskms.AccountKMSOptions{HomeAccount: homeAccount, RoleName: memberRole}, memberRoleARN)
		r.faults.set(func(f *stsFaults) { f.errorCode = "Throttling" })
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
		if got := len(w.stsCalls("AssumeRole")); got != 3 {
			t.Errorf("AssumeRole calls: got %d, want 3 (one per attempt of the KMS retryer)", got)
		}
		if letters := localawstest.DrainDeadLetters(t, w.sqs, r.queueURL); len(letters) != 0 {
			t.Errorf("dead letters: got %d, want 0", len(letters))
		}
	})

	t.Run("cross-account off refuses foreign keys naming the account", func(t *testing.T) {
		r := newRig(t, w, awskms.AccountKMSOptions{HomeAccount: homeAccount}, memberRoleARN)
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
		if n := len(w.stsCalls("GetCallerIdentity")) + len(w.stsCalls("AssumeRole")); n != 0 {
			t.Errorf("STS calls: got %d, want 0", n)
		}
		if got := r.tagCalls(); len(got) != 0 {
			t.Errorf("TagResource requests: got %v, want none", got)
		}
		// The tagger's own keys are still tagged.
		own := w.createKey(t, homeAccount, "us-east-1")
		if res := r.handle(t, memberKeyEvent(eventID(71), own)); res.Outcome != tagger.OutcomeTagged {
			t.Errorf("own key: got %s (%s), want tagged", res.Outcome, res.Reason)
		}
	})

	t.Run("app.NewHandler wires the settings and AWS_ENDPOINT_URL_STS", func(t *testing.T) {
		// MEMBER_ROLE_PATH left at its default, the path of every
		// kms-autotagger role.
		defaultPathRole := "arn:aws:iam::" + memberAccount + ":role/kms-autotagger/" + memberRole
		_, _, routerURL := w.accounts(t, defaultPathRole)
		queueURL, err := w.sqs.CreateQueue(context.Background(), "app-wiring")
		if err != nil {
			t.Fatal(err)
		}
		env := map[string]string{
			"AWS_ENDPOINT_URL_KMS": routerURL, "AWS_ENDPOINT_URL_STS": w.moto.URL(), "AWS_ENDPOINT_URL_SQS": w.sqs.URL(),
			"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": w.homeKey.AccessKeyID, "AWS_SECRET_ACCESS_KEY": w.homeKey.SecretAccessKey, "AWS_SESSION_TOKEN": "",
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
		if n := len(w.stsCalls("GetCallerIdentity")) + len(w.stsCalls("AssumeRole")); n != 0 {
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
		calls := w.stsCalls("AssumeRole")
		if len(calls) != 1 || calls[0].Params.Get("RoleArn") != defaultPathRole || calls[0].Params.Get("ExternalId") != externalID {
			t.Errorf("AssumeRole calls: got %+v, want one for %s with external id %s", calls, defaultPathRole, externalID)
		}
		if n := len(w.stsCalls("GetCallerIdentity")); n != 1 {
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
		a := awskms.NewAccountKMS(aws.Config{}, nil, awskms.AccountKMSOptions{RoleName: memberRole, RolePath: tt.path})
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
