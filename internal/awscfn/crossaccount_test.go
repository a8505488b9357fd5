package awscfn_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/kms-autotagger/kms-autotagger/internal/app"
	"github.com/kms-autotagger/kms-autotagger/internal/config"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws/localawstest"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

const memberAccount = "444455556666"

// TestStackInMemberAccount: a key CloudFormation made in another account
// of the organization is tagged with its stack and its operator, found in
// that account (its CloudFormation, its event history) with the member
// role's credentials: the same cached credentials as the account's KMS
// clients, one AssumeRole for all. moto's STS switches accounts as AWS
// does; the stand-ins of each account see only that account's requests.
func TestStackInMemberAccount(t *testing.T) {
	ctx := context.Background()
	m, err := localaws.StartMoto(ctx, localaws.MotoOptions{Account: account})
	if err != nil {
		t.Fatalf("starting moto: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	home, err := localaws.StartKMS(ctx, localaws.KMSOptions{Regions: []string{region}, Account: account})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = home.Close() })
	member, err := localaws.StartKMS(ctx, localaws.KMSOptions{Regions: []string{region}, Account: memberAccount})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = member.Close() })
	router, err := localaws.NewAccountRouter(m, map[string]*localaws.KMS{account: home, memberAccount: member})
	if err != nil {
		t.Fatal(err)
	}
	kmsSrv := httptest.NewServer(router)
	t.Cleanup(kmsSrv.Close)
	cfn := localaws.NewCloudFormation(localaws.CloudFormationOptions{Accounts: m})
	cfnSrv := httptest.NewServer(cfn)
	t.Cleanup(cfnSrv.Close)
	trails := map[string]*localaws.CloudTrail{}
	handlers := map[string]http.Handler{}
	for _, a := range []string{account, memberAccount} {
		ct, err := localaws.NewCloudTrail(localaws.CloudTrailOptions{Regions: []string{region}})
		if err != nil {
			t.Fatal(err)
		}
		trails[a], handlers[a] = ct, ct
	}
	trailSrv := httptest.NewServer(localaws.NewAccountMux(m, handlers))
	t.Cleanup(trailSrv.Close)

	creds, err := m.Credentials().Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"AWS_REGION": region, "AWS_ACCESS_KEY_ID": creds.AccessKeyID, "AWS_SECRET_ACCESS_KEY": creds.SecretAccessKey,
		"AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"AWS_ENDPOINT_URL_KMS": kmsSrv.URL, "AWS_ENDPOINT_URL_STS": m.URL(), "AWS_ENDPOINT_URL_CLOUDFORMATION": cfnSrv.URL,
		"AWS_ENDPOINT_URL_CLOUDTRAIL": trailSrv.URL, "MEMBER_ROLE_NAME": "kms-autotagger-member", "HOME_ACCOUNT_ID": account,
		"TAG_RATE_LIMIT": "0", "STACK_LOOKUP_RATE_LIMIT": "0", "MAX_BACKOFF": "20ms", "METRICS_NAMESPACE": "-",
	} {
		t.Setenv(k, v)
	}
	cfg, err := config.FromEnv(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	h, err := app.NewHandler(cfg, localawstest.FunctionConfig(t), slog.New(slog.NewTextHandler(&localawstest.SyncBuffer{}, nil)))
	if err != nil {
		t.Fatal(err)
	}

	out, err := member.Client(region).CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	key := aws.ToString(out.KeyMetadata.Arn)
	stack := strings.Replace(newStack("payments"), ":"+account+":", ":"+memberAccount+":", 1)
	cfn.AddResource(memberAccount, region, localaws.StackResource{
		StackName: "payments", StackID: stack, LogicalResourceID: "DataKey", PhysicalResourceID: keyID(key),
		ResourceType: "AWS::KMS::Key", ResourceStatus: "CREATE_IN_PROGRESS",
	})
	at := now()
	inMember := func(b []byte) []byte { return []byte(strings.ReplaceAll(string(b), account, memberAccount)) }
	if err := trails[memberAccount].AddEvent(region, inMember(operationRecord(t, "stackop_createstack_sso", strings.Replace(stack, memberAccount, account, 1), at.Add(-time.Minute)))); err != nil {
		t.Fatal(err)
	}
	id := "dad9a22f-e9b0-4be2-9cbd-" + nextID()
	event := inMember(createKeyEvent(t, "createkey_cloudformation", id, strings.Replace(key, memberAccount, account, 1), at))

	hctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	res, err := h.Handle(hctx, event)
	if err != nil || res.Outcome != tagger.OutcomeTagged {
		t.Fatalf("Handle: got %s (%s), error %v; want tagged", res.Outcome, res.Reason, err)
	}
	tags := localawstest.KeyTags(t, member, key)
	if tags["CreatedByStack"] != stack || tags["CreatedByUser"] != carol || tags["CreatedByRole"] != "arn:aws:iam::"+memberAccount+":role/cfn-deployer" {
		t.Errorf("tags on the member account's key: got %v, want its stack %s and operator %s", tags, stack, carol)
	}
	calls := cfn.Requests("DescribeStackResources")
	if len(calls) != 1 || calls[0].Account != memberAccount {
		t.Errorf("DescribeStackResources: got %+v, want one, signed with the member account's credentials", calls)
	}
	if n := trails[memberAccount].Count(region, "LookupEvents"); n != 1 {
		t.Errorf("LookupEvents in the member account: got %d, want 1", n)
	}
	if n := trails[account].Count(localaws.AnyRegion, localaws.AnyOperation); n != 0 {
		t.Errorf("requests to the tagger's own event history: got %d, want none", n)
	}
	if n := len(m.Calls("sts", "AssumeRole")); n != 1 {
		t.Errorf("AssumeRole calls: got %d, want 1: KMS, CloudFormation and CloudTrail share the member role's cached credentials", n)
	}
	roleARN := m.Calls("sts", "AssumeRole")[0].Params.Get("RoleArn")
	if roleARN != "arn:aws:iam::"+memberAccount+":role/kms-autotagger/kms-autotagger-member" {
		t.Errorf("AssumeRole of %s, want the member role on /kms-autotagger/", roleARN)
	}
}
