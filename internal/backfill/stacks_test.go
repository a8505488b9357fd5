package backfill_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"

	"github.com/kms-autotagger/kms-autotagger/internal/awscfn"
	"github.com/kms-autotagger/kms-autotagger/internal/backfill"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
)

// TestBackfillStackAndOperator: a key CloudFormation made with a service
// role gets, from the backfill as from the handler, CreatedByStack (the
// stack whose resource it is, by DescribeStackResources against the
// CloudFormation stand-in on its real protocol) and CreatedByUser (the
// person who ran CreateStack, in the CloudTrail stand-in's history).
func TestBackfillStackAndOperator(t *testing.T) {
	s := startStack(t, localaws.CloudTrailOptions{}, nil)
	cfn := localaws.NewCloudFormation(localaws.CloudFormationOptions{})
	srv := httptest.NewServer(cfn)
	t.Cleanup(srv.Close)

	key := s.CreateKey(t, east)
	at := time.Now().UTC().Truncate(time.Second)
	const stackARN = "arn:aws:cloudformation:us-east-1:111122223333:stack/payments/5b0c7e2a-0000-4000-8000-000000000001"
	cfn.AddResource(account, east, localaws.StackResource{
		StackName: "payments", StackID: stackARN, LogicalResourceID: "Key", PhysicalResourceID: keyIDOf(key),
		ResourceType: awscfn.ResourceTypeKey, ResourceStatus: "CREATE_COMPLETE", Timestamp: at,
	})
	// CreateKey by CloudFormation with its service role, and the
	// CreateStack alice ran a minute before.
	created := mustJSON(map[string]any{
		"eventVersion": "1.09",
		"userIdentity": map[string]any{"type": "AssumedRole", "principalId": "AROAEXAMPLE:AWSCloudFormation",
			"arn": "arn:aws:sts::111122223333:assumed-role/cfn-deployer/AWSCloudFormation", "accountId": account,
			"sessionContext": map[string]any{"sessionIssuer": map[string]any{"type": "Role", "arn": "arn:aws:iam::111122223333:role/cfn-deployer", "accountId": account}},
			"invokedBy":      "cloudformation.amazonaws.com"},
		"eventTime": at.Format(time.RFC3339), "eventSource": "kms.amazonaws.com", "eventName": "CreateKey", "awsRegion": east,
		"requestParameters": map[string]any{"keySpec": "SYMMETRIC_DEFAULT"},
		"responseElements": map[string]any{"keyMetadata": map[string]any{"AWSAccountId": account, "keyId": keyIDOf(key), "arn": key,
			"keyManager": "CUSTOMER", "keyState": "Enabled"}},
		"eventID": "cf000000-0000-4000-8000-000000000001", "readOnly": false, "recipientAccountId": account,
		"resources": []map[string]string{{"accountId": account, "type": "AWS::KMS::Key", "ARN": key}},
		"eventType": "AwsApiCall", "managementEvent": true, "eventCategory": "Management",
	})
	s.addEvent(t, east, created)
	s.addEvent(t, east, mustJSON(map[string]any{
		"eventVersion": "1.09",
		"userIdentity": map[string]any{"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": alice, "accountId": account, "userName": "alice"},
		"eventTime":    at.Add(-time.Minute).Format(time.RFC3339), "eventSource": "cloudformation.amazonaws.com", "eventName": "CreateStack",
		"awsRegion": east, "requestParameters": map[string]any{"stackName": "payments", "roleARN": "arn:aws:iam::111122223333:role/cfn-deployer"},
		"responseElements": map[string]any{"stackId": stackARN},
		"eventID":          "cf000000-0000-4000-9000-000000000001", "readOnly": false, "recipientAccountId": account,
		"resources": []map[string]string{{"accountId": account, "type": "AWS::CloudFormation::Stack", "ARN": stackARN}},
		"eventType": "AwsApiCall", "managementEvent": true, "eventCategory": "Management",
	}))

	finder := &awscfn.Finder{Clients: func(_ context.Context, _, region string) (awscfn.Clients, error) {
		return awscfn.Clients{
			CloudFormation: cloudformation.New(cloudformation.Options{Region: region, BaseEndpoint: aws.String(srv.URL),
				Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")}),
			CloudTrail: s.CloudTrail.Client(region),
		}, nil
	}}
	rep, err := s.backfiller(t, backfill.Options{Regions: []string{east}, Stacks: finder}).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if row := rowsByKey(rep.Rows)[key]; row.Action != backfill.ActionTagged {
		t.Fatalf("row: got %+v, want tagged", row)
	}
	got := s.Tags(t, key)
	if got["CreatedByStack"] != stackARN || got["CreatedByUser"] != "alice" {
		t.Errorf("tags: got CreatedByStack=%q CreatedByUser=%q, want %s and alice (%v)", got["CreatedByStack"], got["CreatedByUser"], stackARN, got)
	}
}
