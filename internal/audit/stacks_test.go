package audit_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"

	"github.com/kms-autotagger/kms-autotagger/internal/audit"
	"github.com/kms-autotagger/kms-autotagger/internal/awscfn"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
)

// TestAuditStackAndOperator: for a key CloudFormation made with a service
// role, the audit expects (and --repair writes) CreatedByStack and the
// CreatedByUser of the person who ran the stack, found as the handler finds
// them: the CloudFormation stand-in on its real protocol, and the stack
// operation in the CloudTrail stand-in's history.
func TestAuditStackAndOperator(t *testing.T) {
	const region = "us-east-1"
	w := startWorld(t, []string{acctA}, []string{region})
	cfn := localaws.NewCloudFormation(localaws.CloudFormationOptions{})
	srv := httptest.NewServer(cfn)
	t.Cleanup(srv.Close)

	key := w.createKey(t, acctA, region)
	keyID := key[strings.LastIndex(key, "/")+1:]
	at := time.Now().UTC().Truncate(time.Second)
	stackARN := "arn:aws:cloudformation:" + region + ":" + acctA + ":stack/payments/5b0c7e2a-0000-4000-8000-000000000002"
	cfn.AddResource(acctA, region, localaws.StackResource{
		StackName: "payments", StackID: stackARN, LogicalResourceID: "Key", PhysicalResourceID: keyID,
		ResourceType: awscfn.ResourceTypeKey, ResourceStatus: "CREATE_COMPLETE", Timestamp: at,
	})
	record := func(v map[string]any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	w.addEvent(t, acctA, record(map[string]any{
		"eventVersion": "1.09",
		"userIdentity": map[string]any{"type": "AssumedRole", "principalId": "AROAEXAMPLE:AWSCloudFormation",
			"arn": "arn:aws:sts::" + acctA + ":assumed-role/cfn-deployer/AWSCloudFormation", "accountId": acctA,
			"sessionContext": map[string]any{"sessionIssuer": map[string]any{"type": "Role", "arn": "arn:aws:iam::" + acctA + ":role/cfn-deployer", "accountId": acctA}},
			"invokedBy":      "cloudformation.amazonaws.com"},
		"eventTime": at.Format(time.RFC3339), "eventSource": "kms.amazonaws.com", "eventName": "CreateKey", "awsRegion": region,
		"requestParameters": map[string]any{"keySpec": "SYMMETRIC_DEFAULT"},
		"responseElements": map[string]any{"keyMetadata": map[string]any{"AWSAccountId": acctA, "keyId": keyID, "arn": key,
			"keyManager": "CUSTOMER", "keyState": "Enabled"}},
		"eventID": "cf000000-0000-4000-8000-000000000002", "readOnly": false, "recipientAccountId": acctA,
		"resources": []map[string]string{{"accountId": acctA, "type": "AWS::KMS::Key", "ARN": key}},
		"eventType": "AwsApiCall", "managementEvent": true, "eventCategory": "Management",
	}))
	if err := w.trails[acctA].AddEvent(region, record(map[string]any{
		"eventVersion": "1.09",
		"userIdentity": map[string]any{"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": "arn:aws:iam::" + acctA + ":user/dana",
			"accountId": acctA, "userName": "dana"},
		"eventTime": at.Add(-time.Minute).Format(time.RFC3339), "eventSource": "cloudformation.amazonaws.com", "eventName": "CreateStack",
		"awsRegion": region, "requestParameters": map[string]any{"stackName": "payments", "roleARN": "arn:aws:iam::" + acctA + ":role/cfn-deployer"},
		"responseElements": map[string]any{"stackId": stackARN},
		"eventID":          "cf000000-0000-4000-9000-000000000002", "readOnly": false, "recipientAccountId": acctA,
		"resources": []map[string]string{{"accountId": acctA, "type": "AWS::CloudFormation::Stack", "ARN": stackARN}},
		"eventType": "AwsApiCall", "managementEvent": true, "eventCategory": "Management",
	})); err != nil {
		t.Fatal(err)
	}
	finder := &awscfn.Finder{Clients: func(_ context.Context, account, region string) (awscfn.Clients, error) {
		return awscfn.Clients{
			CloudFormation: cloudformation.New(cloudformation.Options{Region: region, BaseEndpoint: aws.String(srv.URL),
				Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")}),
			CloudTrail: w.trails[account].Client(region),
		}, nil
	}}

	rep, _ := w.auditor(t, audit.Options{Stacks: finder, Repair: true}).Run(context.Background())
	if rep == nil {
		t.Fatal("no report")
	}
	var row *audit.Row
	for i := range rep.Keys {
		if rep.Keys[i].KeyARN == key {
			row = &rep.Keys[i]
		}
	}
	if row == nil {
		t.Fatalf("no row for %s: %+v", key, rep.Keys)
	}
	if got, want := value(row.Expected, "CreatedByStack"), stackARN; got != want {
		t.Errorf("expected CreatedByStack: got %q, want %q", got, want)
	}
	if got := value(row.Expected, "CreatedByUser"); got != "dana" {
		t.Errorf("expected CreatedByUser: got %q, want dana", got)
	}
	got := w.tags(t, key)
	if got["CreatedByStack"] != stackARN || got["CreatedByUser"] != "dana" {
		t.Errorf("tags after --repair: got %v, want CreatedByStack %s and CreatedByUser dana", got, stackARN)
	}
}
