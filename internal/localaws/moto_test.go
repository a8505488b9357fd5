package localaws_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
)

// startMoto starts moto for one test and closes it after.
func startMoto(t *testing.T, opts localaws.MotoOptions) *localaws.Moto {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := localaws.StartMoto(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	return m
}

// assume returns the credentials of an AssumeRole into role.
func assume(t *testing.T, st *sts.Client, role string) aws.CredentialsProvider {
	t.Helper()
	out, err := st.AssumeRole(context.Background(), &sts.AssumeRoleInput{RoleArn: aws.String(role), RoleSessionName: aws.String("moto-test")})
	if err != nil {
		t.Fatalf("AssumeRole %s: %v", role, err)
	}
	c := out.Credentials
	return credentials.NewStaticCredentialsProvider(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken))
}

// TestMoto starts moto and checks the things the other tests rely on: it
// serves SQS at its one endpoint, an AssumeRole into another account's
// role gives credentials that act in that account, and the proxy records
// every request.
func TestMoto(t *testing.T) {
	ctx := context.Background()
	m := startMoto(t, localaws.MotoOptions{})
	cfg := m.Config("us-east-1")

	q := sqs.NewFromConfig(cfg)
	out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("moto-test")})
	if err != nil {
		t.Fatalf("CreateQueue: %v", err)
	}
	if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: out.QueueUrl, MessageBody: aws.String("hello")}); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	got, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: out.QueueUrl})
	if err != nil || len(got.Messages) != 1 || aws.ToString(got.Messages[0].Body) != "hello" {
		t.Fatalf("ReceiveMessage: got %v, %v; want one message hello", got, err)
	}

	st := sts.NewFromConfig(cfg)
	id, err := st.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity: %v", err)
	}
	if got, want := aws.ToString(id.Account), m.Account(); got != want {
		t.Errorf("caller account: got %s, want %s", got, want)
	}
	const member = "444455556666"
	const role = "arn:aws:iam::" + member + ":role/kms-autotagger/member"
	assumed := cfg.Copy()
	assumed.Credentials = assume(t, st, role)
	id, err = sts.NewFromConfig(assumed).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity as the assumed role: %v", err)
	}
	if got := aws.ToString(id.Account); got != member {
		t.Errorf("assumed-role caller account: got %s, want %s", got, member)
	}

	// The proxy's record.
	home, _ := m.Credentials().Retrieve(ctx)
	sqsCalls := m.Calls("sqs", localaws.AnyOperation)
	if len(sqsCalls) != 3 || sqsCalls[1].Operation != "SendMessage" || !strings.Contains(string(sqsCalls[1].Body), `"MessageBody":"hello"`) {
		t.Errorf("SQS calls: got %+v, want CreateQueue, SendMessage with its body, ReceiveMessage", sqsCalls)
	}
	calls := m.Calls("sts", "AssumeRole")
	if len(calls) != 1 {
		t.Fatalf("AssumeRole calls: got %+v, want 1", calls)
	}
	c := calls[0]
	if c.AccessKeyID != home.AccessKeyID || c.Region != "us-east-1" || c.Params.Get("RoleArn") != role || c.Status != http.StatusOK || c.ErrorCode != "" {
		t.Errorf("AssumeRole call: got %+v, want one signed by %s in us-east-1 for %s answered 200", c, home.AccessKeyID, role)
	}
	if n := len(m.Calls(localaws.AnyService, localaws.AnyOperation)); n != 6 {
		t.Errorf("calls: got %d, want 6 (3 SQS, 3 STS)", n)
	}
	m.ResetCalls()
	if n := len(m.Calls(localaws.AnyService, localaws.AnyOperation)); n != 0 {
		t.Errorf("calls after ResetCalls: got %d, want 0", n)
	}

	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := m.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if _, err := q.ListQueues(ctx, &sqs.ListQueuesInput{}); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("ListQueues after Stop: got %v, want a connection refused", err)
	}
}

func TestMotoHook(t *testing.T) {
	ctx := context.Background()
	m := startMoto(t, localaws.MotoOptions{})
	st := sts.NewFromConfig(m.Config("us-east-1"), func(o *sts.Options) { o.Retryer = aws.NopRetryer{} })

	m.SetHook(func(w http.ResponseWriter, r *http.Request, call localaws.MotoCall, next http.Handler) {
		if call.Operation == "AssumeRole" {
			localaws.WriteQueryError(w, http.StatusBadRequest, "Throttling", "Rate exceeded")
			return
		}
		next.ServeHTTP(w, r)
	})
	_, err := st.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::444455556666:role/r"), RoleSessionName: aws.String("s1")})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "Throttling" || apiErr.ErrorMessage() != "Rate exceeded" {
		t.Errorf("AssumeRole with the hook throttling it: got %v, want Throttling: Rate exceeded", err)
	}
	if _, err := st.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		t.Errorf("GetCallerIdentity past the hook: %v", err)
	}
	// A hook may change moto's answer.
	m.SetHook(func(w http.ResponseWriter, r *http.Request, _ localaws.MotoCall, next http.Handler) {
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		w.WriteHeader(rec.Code)
		_, _ = w.Write([]byte(strings.ReplaceAll(rec.Body.String(), m.Account(), "999999999999")))
	})
	id, err := st.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Account) != "999999999999" {
		t.Errorf("GetCallerIdentity with its answer changed: got %v, %v; want account 999999999999", id, err)
	}
	m.SetHook(nil)
	if id, err := st.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil || aws.ToString(id.Account) != m.Account() {
		t.Errorf("GetCallerIdentity without the hook: got %v, %v", id, err)
	}
	calls := m.Calls("sts", localaws.AnyOperation)
	if len(calls) != 4 || calls[0].Status != http.StatusBadRequest || calls[0].ErrorCode != "Throttling" || calls[1].ErrorCode != "" {
		t.Errorf("calls: got %+v, want the throttled AssumeRole first, recorded with its status and code", calls)
	}
}

func TestMotoAccountOf(t *testing.T) {
	ctx := context.Background()
	m := startMoto(t, localaws.MotoOptions{Account: "111122223333"})
	home, _ := m.Credentials().Retrieve(ctx)
	st := sts.NewFromConfig(m.Config("us-east-1"))
	member, _ := assume(t, st, "arn:aws:iam::444455556666:role/member").Retrieve(ctx)
	other, err := m.NewUser(ctx, "777788889999", "jane")
	if err != nil {
		t.Fatal(err)
	}
	jane, _ := other.Retrieve(ctx)
	for key, want := range map[string]string{
		home.AccessKeyID:   "111122223333",
		member.AccessKeyID: "444455556666",
		jane.AccessKeyID:   "777788889999",
		"AKIDEXAMPLE":      localaws.MotoDefaultAccount,
	} {
		for range 2 { // the second answer may come from the cache
			if got, err := m.AccountOf(ctx, key); err != nil || got != want {
				t.Errorf("AccountOf(%s): got %q, %v; want %s", key, got, err, want)
			}
		}
	}
	if n := len(m.Calls(localaws.AnyService, "GetCallerIdentity")); n != 0 {
		t.Errorf("GetCallerIdentity calls through the proxy: got %d, want 0 (AccountOf asks moto directly)", n)
	}
	cfg := m.Config("us-east-1")
	cfg.Credentials = other
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Arn) != "arn:aws:iam::777788889999:user/jane" {
		t.Errorf("GetCallerIdentity as the new user: got %v, %v; want arn:aws:iam::777788889999:user/jane", id, err)
	}
}

func TestMotoSingleAccount(t *testing.T) {
	ctx := context.Background()
	m := startMoto(t, localaws.MotoOptions{Account: "111122223333", SingleAccount: true})
	cfg := m.Config("us-east-1")
	cfg.Credentials = credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Account) != "111122223333" {
		t.Errorf("GetCallerIdentity with a key moto did not issue: got %v, %v; want account 111122223333", id, err)
	}
	url, err := sqs.NewFromConfig(cfg).CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("q")})
	if err != nil || aws.ToString(url.QueueUrl) != m.URL()+"/111122223333/q" {
		t.Errorf("CreateQueue: got %v, %v; want %s/111122223333/q", url, err, m.URL())
	}
}

// TestMotoShadowTrail checks the CloudTrail gap the proxy mends: the event
// selectors of a multi-Region trail read by ARN in another region.
func TestMotoShadowTrail(t *testing.T) {
	ctx := context.Background()
	m := startMoto(t, localaws.MotoOptions{})
	if err := m.CreateBucket(ctx, "us-east-1", "trail-bucket"); err != nil {
		t.Fatal(err)
	}
	home := cloudtrail.NewFromConfig(m.Config("us-east-1"))
	for _, name := range []string{"central", "local"} {
		if _, err := home.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String(name), S3BucketName: aws.String("trail-bucket"),
			IsMultiRegionTrail: aws.Bool(name == "central")}); err != nil {
			t.Fatalf("CreateTrail %s: %v", name, err)
		}
		if _, err := home.PutEventSelectors(ctx, &cloudtrail.PutEventSelectorsInput{TrailName: aws.String(name),
			EventSelectors: []cttypes.EventSelector{{ReadWriteType: cttypes.ReadWriteTypeWriteOnly, IncludeManagementEvents: aws.Bool(true)}}}); err != nil {
			t.Fatalf("PutEventSelectors %s: %v", name, err)
		}
	}
	eu := cloudtrail.NewFromConfig(m.Config("eu-west-1"), func(o *cloudtrail.Options) { o.Retryer = aws.NopRetryer{} })
	trails, err := eu.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{IncludeShadowTrails: aws.Bool(true)})
	if err != nil || len(trails.TrailList) != 1 || aws.ToString(trails.TrailList[0].HomeRegion) != "us-east-1" {
		t.Fatalf("DescribeTrails in eu-west-1: got %+v, %v; want the multi-Region trail of us-east-1", trails, err)
	}
	arn := trails.TrailList[0].TrailARN
	sel, err := eu.GetEventSelectors(ctx, &cloudtrail.GetEventSelectorsInput{TrailName: arn})
	if err != nil || len(sel.EventSelectors) != 1 || sel.EventSelectors[0].ReadWriteType != cttypes.ReadWriteTypeWriteOnly {
		t.Errorf("GetEventSelectors of the shadow trail in eu-west-1: got %+v, %v; want its WriteOnly selector", sel, err)
	}
	// A single-Region trail of another region stays out of reach.
	_, err = eu.GetEventSelectors(ctx, &cloudtrail.GetEventSelectorsInput{TrailName: aws.String(strings.Replace(aws.ToString(arn), "central", "local", 1))})
	var notFound *cttypes.TrailNotFoundException
	if !errors.As(err, &notFound) {
		t.Errorf("GetEventSelectors of a single-Region trail in another region: got %v, want TrailNotFoundException", err)
	}
	calls := m.Calls("cloudtrail", "GetEventSelectors")
	if len(calls) != 2 || calls[0].Region != "eu-west-1" {
		t.Errorf("GetEventSelectors calls: got %+v, want 2 recorded in eu-west-1, the region signed for", calls)
	}
}

func TestAccountRouter(t *testing.T) {
	ctx := context.Background()
	const home, member = "111122223333", "444455556666"
	m := startMoto(t, localaws.MotoOptions{Account: home})
	stands := map[string]*localaws.KMS{}
	for _, account := range []string{home, member} {
		k, err := localaws.StartKMS(ctx, localaws.KMSOptions{Regions: []string{"us-east-1", "eu-west-1"}, Account: account})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = k.Close() })
		stands[account] = k
	}
	if _, err := localaws.NewAccountRouter(m, map[string]*localaws.KMS{member: stands[home]}); err == nil {
		t.Error("NewAccountRouter with a stand-in of another account: got no error")
	}
	router, err := localaws.NewAccountRouter(m, stands)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)

	homeCreds, _ := m.Credentials().Retrieve(ctx)
	memberProvider := assume(t, sts.NewFromConfig(m.Config("us-east-1")), "arn:aws:iam::"+member+":role/member")
	memberCreds, _ := memberProvider.Retrieve(ctx)
	client := func(region string, creds aws.CredentialsProvider) *kms.Client {
		return kms.New(kms.Options{Region: region, Credentials: creds, BaseEndpoint: aws.String(srv.URL), Retryer: aws.NopRetryer{}})
	}
	for _, tt := range []struct {
		account, region string
		creds           aws.CredentialsProvider
	}{
		{home, "us-east-1", m.Credentials()},
		{member, "us-east-1", memberProvider},
		{member, "eu-west-1", memberProvider},
	} {
		out, err := client(tt.region, tt.creds).CreateKey(ctx, &kms.CreateKeyInput{})
		if err != nil {
			t.Fatalf("CreateKey in %s %s: %v", tt.account, tt.region, err)
		}
		if got, want := aws.ToString(out.KeyMetadata.Arn), "arn:aws:kms:"+tt.region+":"+tt.account+":key/"; !strings.HasPrefix(got, want) {
			t.Errorf("key ARN: got %s, want one starting %s", got, want)
		}
	}
	_, err = client("us-east-1", credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")).ListKeys(ctx, &kms.ListKeysInput{})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "UnrecognizedClientException" || !strings.Contains(apiErr.ErrorMessage(), localaws.MotoDefaultAccount) {
		t.Errorf("ListKeys with a key moto did not issue: got %v, want UnrecognizedClientException naming account %s", err, localaws.MotoDefaultAccount)
	}
	target := localaws.KMSTarget("CreateKey")
	if got := router.Count(memberCreds.AccessKeyID, target); got != 2 {
		t.Errorf("CreateKey count of the member key: got %d, want 2", got)
	}
	if got := router.CountsByAccessKey(target); len(got) != 2 || got[homeCreds.AccessKeyID] != 1 {
		t.Errorf("CreateKey counts by access key: got %v, want 1 by %s and 2 by the member key", got, homeCreds.AccessKeyID)
	}
	if got := router.Count(localaws.AnyAccessKey, localaws.AnyTarget); got != 4 {
		t.Errorf("requests: got %d, want 4", got)
	}
	if got := stands[member].Router().Count("eu-west-1", target); got != 1 {
		t.Errorf("CreateKey in the member's eu-west-1: got %d, want 1", got)
	}
}
