package localaws_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/smithy-go"

	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
)

const (
	cfnStack = "arn:aws:cloudformation:eu-west-1:111122223333:stack/payments/5b0c7e2a-3951-11ef-8a4c-0a1b2c3d4e5f"
	cfnKeyID = "9d1a6f3e-7c2b-48e5-b1d4-5e8a2c6f9b37"
)

// staticAccounts tells the account of an access key from a map.
type staticAccounts map[string]string

func (s staticAccounts) AccountOf(_ context.Context, id string) (string, error) {
	if a, ok := s[id]; ok {
		return a, nil
	}
	return "", errors.New("unknown access key " + id)
}

func cfnClient(url, accessKey string, optFns ...func(*cloudformation.Options)) *cloudformation.Client {
	return cloudformation.New(cloudformation.Options{
		Region: "eu-west-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider(accessKey, "secret", ""),
	}, optFns...)
}

// TestCloudFormationDescribeStackResources speaks to the stand-in with the
// SDK's own client, as the tagger does.
func TestCloudFormationDescribeStackResources(t *testing.T) {
	cf := localaws.NewCloudFormation(localaws.CloudFormationOptions{})
	srv := httptest.NewServer(cf)
	t.Cleanup(srv.Close)
	at := time.Date(2024, 7, 3, 8, 20, 14, 0, time.UTC)
	cf.AddResource(localaws.DefaultAccount, "eu-west-1", localaws.StackResource{StackName: "payments", StackID: cfnStack, LogicalResourceID: "DataKey",
		PhysicalResourceID: cfnKeyID, ResourceType: "AWS::KMS::Key", ResourceStatus: "CREATE_IN_PROGRESS", Timestamp: at})
	cf.AddResource(localaws.DefaultAccount, "eu-west-1", localaws.StackResource{StackName: "payments", StackID: cfnStack, LogicalResourceID: "Queue",
		ResourceType: "AWS::SQS::Queue", ResourceStatus: "CREATE_IN_PROGRESS", Timestamp: at})
	client := cfnClient(srv.URL, "AKIDEXAMPLE")
	ctx := context.Background()

	out, err := client.DescribeStackResources(ctx, &cloudformation.DescribeStackResourcesInput{PhysicalResourceId: aws.String(cfnKeyID)})
	if err != nil {
		t.Fatalf("by physical id: %v", err)
	}
	if len(out.StackResources) != 2 {
		t.Fatalf("by physical id: got %d resources, want the stack's 2", len(out.StackResources))
	}
	r := out.StackResources[0]
	if aws.ToString(r.StackId) != cfnStack || aws.ToString(r.StackName) != "payments" || aws.ToString(r.PhysicalResourceId) != cfnKeyID ||
		aws.ToString(r.ResourceType) != "AWS::KMS::Key" || r.ResourceStatus != cfntypes.ResourceStatusCreateInProgress || !aws.ToTime(r.Timestamp).Equal(at) {
		t.Errorf("resource: got %+v", r)
	}
	out, err = client.DescribeStackResources(ctx, &cloudformation.DescribeStackResourcesInput{StackName: aws.String("payments"), LogicalResourceId: aws.String("Queue")})
	if err != nil || len(out.StackResources) != 1 || aws.ToString(out.StackResources[0].LogicalResourceId) != "Queue" {
		t.Errorf("by stack name and logical id: got %+v, %v", out, err)
	}

	// A status change replaces the resource.
	cf.AddResource(localaws.DefaultAccount, "eu-west-1", localaws.StackResource{StackName: "payments", StackID: cfnStack, LogicalResourceID: "DataKey",
		PhysicalResourceID: cfnKeyID, ResourceType: "AWS::KMS::Key", ResourceStatus: "CREATE_COMPLETE"})
	out, err = client.DescribeStackResources(ctx, &cloudformation.DescribeStackResourcesInput{StackName: aws.String(cfnStack), LogicalResourceId: aws.String("DataKey")})
	if err != nil || len(out.StackResources) != 1 || out.StackResources[0].ResourceStatus != cfntypes.ResourceStatusCreateComplete {
		t.Errorf("after a status change: got %+v, %v", out, err)
	}

	for _, tt := range []struct {
		name string
		in   *cloudformation.DescribeStackResourcesInput
		want string
	}{
		{"unknown physical id", &cloudformation.DescribeStackResourcesInput{PhysicalResourceId: aws.String("nope")}, "Stack for nope does not exist"},
		{"unknown stack", &cloudformation.DescribeStackResourcesInput{StackName: aws.String("nope")}, "Stack with id nope does not exist"},
		{"both", &cloudformation.DescribeStackResourcesInput{StackName: aws.String("payments"), PhysicalResourceId: aws.String(cfnKeyID)}, "not both"},
		{"neither", &cloudformation.DescribeStackResourcesInput{}, "not both"},
	} {
		_, err := client.DescribeStackResources(ctx, tt.in)
		var apiErr smithy.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ValidationError" || !strings.Contains(apiErr.ErrorMessage(), tt.want) {
			t.Errorf("%s: got %v, want ValidationError %q", tt.name, err, tt.want)
		}
	}
	// Another region has no stacks.
	_, err = cfnClient(srv.URL, "AKIDEXAMPLE", func(o *cloudformation.Options) { o.Region = "us-east-1" }).
		DescribeStackResources(ctx, &cloudformation.DescribeStackResourcesInput{PhysicalResourceId: aws.String(cfnKeyID)})
	if err == nil {
		t.Error("another region: got the stack, want none")
	}
	reqs := cf.Requests("DescribeStackResources")
	if len(reqs) != 8 || reqs[0].PhysicalResourceID != cfnKeyID || reqs[0].Region != "eu-west-1" || reqs[0].Account != localaws.DefaultAccount ||
		reqs[0].Status != http.StatusOK || reqs[4].ErrorCode != "ValidationError" {
		t.Errorf("requests: got %+v", reqs)
	}
}

func TestCloudFormationRefuses(t *testing.T) {
	cf := localaws.NewCloudFormation(localaws.CloudFormationOptions{})
	srv := httptest.NewServer(cf)
	t.Cleanup(srv.Close)
	post := func(form url.Values, signed bool) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if signed {
			req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240703/eu-west-1/cloudformation/aws4_request, SignedHeaders=host, Signature=x")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := post(url.Values{"Action": {"DescribeStacks"}, "Version": {localaws.CloudFormationAPIVersion}}, true); status != 400 || !strings.Contains(body, "<Code>InvalidAction</Code>") {
		t.Errorf("another action: got %d %s", status, body)
	}
	if status, body := post(url.Values{"Action": {"DescribeStackResources"}, "Version": {"2009-01-01"}, "StackName": {"x"}}, true); status != 400 || !strings.Contains(body, "InvalidParameterValue") {
		t.Errorf("another version: got %d %s", status, body)
	}
	if status, body := post(url.Values{"Action": {"DescribeStackResources"}, "Version": {localaws.CloudFormationAPIVersion}, "StackName": {"x"}}, false); status != 403 || !strings.Contains(body, "InvalidClientTokenId") {
		t.Errorf("unsigned: got %d %s", status, body)
	}
}

// TestCloudFormationAccounts: with a resolver, each account sees its own
// stacks only.
func TestCloudFormationAccounts(t *testing.T) {
	cf := localaws.NewCloudFormation(localaws.CloudFormationOptions{Accounts: staticAccounts{"AKIDHOME": "111122223333", "AKIDMEMBER": "444455556666"}})
	srv := httptest.NewServer(cf)
	t.Cleanup(srv.Close)
	cf.AddResource("444455556666", "eu-west-1", localaws.StackResource{StackName: "payments", StackID: cfnStack, LogicalResourceID: "DataKey",
		PhysicalResourceID: cfnKeyID, ResourceType: "AWS::KMS::Key", ResourceStatus: "CREATE_COMPLETE"})
	in := &cloudformation.DescribeStackResourcesInput{PhysicalResourceId: aws.String(cfnKeyID)}
	if _, err := cfnClient(srv.URL, "AKIDMEMBER").DescribeStackResources(context.Background(), in); err != nil {
		t.Errorf("member: %v", err)
	}
	if _, err := cfnClient(srv.URL, "AKIDHOME").DescribeStackResources(context.Background(), in); err == nil {
		t.Error("home: got the member account's stack, want none")
	}
	if _, err := cfnClient(srv.URL, "AKIDNOBODY").DescribeStackResources(context.Background(), in); err == nil || !strings.Contains(err.Error(), "InvalidClientTokenId") {
		t.Errorf("unknown key: got %v, want InvalidClientTokenId", err)
	}
}

// TestCloudFormationFaults: the injected faults are CloudFormation's, as
// the SDK reads them: Throttling is retried, AccessDenied is not.
func TestCloudFormationFaults(t *testing.T) {
	cf := localaws.NewCloudFormation(localaws.CloudFormationOptions{})
	srv := httptest.NewServer(cf)
	t.Cleanup(srv.Close)
	cf.AddResource(localaws.DefaultAccount, "eu-west-1", localaws.StackResource{StackName: "payments", StackID: cfnStack, LogicalResourceID: "DataKey",
		PhysicalResourceID: cfnKeyID, ResourceType: "AWS::KMS::Key", ResourceStatus: "CREATE_COMPLETE"})
	in := &cloudformation.DescribeStackResourcesInput{PhysicalResourceId: aws.String(cfnKeyID)}
	cf.SetIntercept(localaws.FailFirstQuery("eu-west-1", "DescribeStackResources", 2, localaws.CloudFormationThrottling))
	if _, err := cfnClient(srv.URL, "AKIDEXAMPLE").DescribeStackResources(context.Background(), in); err != nil {
		t.Errorf("throttled twice: %v, want the standard retryer to get through", err)
	}
	if n := cf.Count(localaws.AnyOperation); n != 3 {
		t.Errorf("requests: got %d, want 3", n)
	}
	cf.SetIntercept(localaws.FailFirstQuery(localaws.AnyRegion, localaws.AnyTarget, -1, localaws.CloudFormationAccessDenied))
	_, err := cfnClient(srv.URL, "AKIDEXAMPLE").DescribeStackResources(context.Background(), in)
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "AccessDenied" {
		t.Errorf("denied: got %v, want AccessDenied", err)
	}
	if n := cf.Count(localaws.AnyOperation); n != 4 {
		t.Errorf("requests: got %d, want 4 (AccessDenied not retried)", n)
	}
	if reqs := cf.Requests(localaws.AnyOperation); reqs[0].ErrorCode != "Throttling" || reqs[3].ErrorCode != "AccessDenied" {
		t.Errorf("recorded errors: got %+v", reqs)
	}
}

// TestAccountMux: one CloudTrail stand-in per account behind one endpoint.
func TestAccountMux(t *testing.T) {
	home, err := localaws.NewCloudTrail(localaws.CloudTrailOptions{})
	if err != nil {
		t.Fatal(err)
	}
	member, err := localaws.NewCloudTrail(localaws.CloudTrailOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(localaws.NewAccountMux(staticAccounts{"AKIDHOME": "111122223333", "AKIDMEMBER": "444455556666"},
		map[string]http.Handler{"111122223333": home, "444455556666": member}))
	t.Cleanup(srv.Close)
	client := func(key string) *cloudtrail.Client {
		return cloudtrail.New(cloudtrail.Options{Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL), Credentials: credentials.NewStaticCredentialsProvider(key, "s", "")})
	}
	if _, err := client("AKIDMEMBER").LookupEvents(context.Background(), &cloudtrail.LookupEventsInput{}); err != nil {
		t.Fatal(err)
	}
	if home.Count(localaws.AnyRegion, localaws.AnyOperation) != 0 || member.Count("eu-west-1", "LookupEvents") != 1 {
		t.Errorf("got home %d member %d requests, want the member's only", home.Count(localaws.AnyRegion, localaws.AnyOperation), member.Count(localaws.AnyRegion, localaws.AnyOperation))
	}
	if _, err := client("AKIDNOBODY").LookupEvents(context.Background(), &cloudtrail.LookupEventsInput{}); err == nil {
		t.Error("unknown access key: got an answer, want an error")
	}
}

func TestStartCloudFormation(t *testing.T) {
	cf, err := localaws.StartCloudFormation(localaws.CloudFormationOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cf.Close() })
	if !strings.HasPrefix(cf.URL(), "http://127.0.0.1:") {
		t.Fatalf("URL: got %q", cf.URL())
	}
	_, err = cfnClient(cf.URL(), "AKIDEXAMPLE").DescribeStackResources(context.Background(), &cloudformation.DescribeStackResourcesInput{StackName: aws.String("nope")})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ValidationError" {
		t.Errorf("got %v, want the stand-in's ValidationError", err)
	}
	if err := cf.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}
