package demo

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
)

// StackOperator is who ran, in the demo, the stack operation that created
// a sample's key through CloudFormation: an IAM user, so that CreatedByUser
// names them.
const StackOperator = "arn:aws:iam::111122223333:user/carol"

// stackHistory makes what AWS would hold for the samples whose key
// CloudFormation created (userIdentity.invokedBy
// cloudformation.amazonaws.com): the key as a resource of a stack in the
// CloudFormation stand-in, and the CreateStack that made the stack, by
// StackOperator a minute before the key, in the CloudTrail stand-in's event
// history, whose clock stands at the newest sample's time (the samples are
// dated; the history keeps 90 days).
func stackHistory(samples []sample, cf *localaws.CloudFormation, ct *localaws.CloudTrail) error {
	for i, s := range samples {
		key := s.dec.Key
		if key == nil || key.Creator.InvokedBy != "cloudformation.amazonaws.com" {
			continue
		}
		name := "demo-" + strings.TrimSuffix(s.name, ".json")
		name = strings.ReplaceAll(name, "_", "-")
		stackID := fmt.Sprintf("arn:aws:cloudformation:%s:%s:stack/%s/6d3f1a2b-0000-4000-8000-%012d", key.Region, key.Account, name, i)
		cf.AddResource(key.Account, key.Region, localaws.StackResource{
			StackName: name, StackID: stackID, LogicalResourceID: "Key", PhysicalResourceID: key.KeyID,
			ResourceType: "AWS::KMS::Key", ResourceStatus: "CREATE_COMPLETE", Timestamp: key.EventTime,
		})
		record, err := json.Marshal(map[string]any{
			"eventVersion": "1.09",
			"userIdentity": map[string]any{"type": "IAMUser", "principalId": "AIDAEXAMPLECAROL", "arn": StackOperator,
				"accountId": key.Account, "userName": "carol"},
			"eventTime":   key.EventTime.Add(-time.Minute).UTC().Format(time.RFC3339),
			"eventSource": "cloudformation.amazonaws.com", "eventName": "CreateStack", "awsRegion": key.Region,
			"requestParameters": map[string]any{"stackName": name, "roleARN": "arn:aws:iam::" + key.Account + ":role/cfn-deployer"},
			"responseElements":  map[string]any{"stackId": stackID},
			"eventID":           fmt.Sprintf("6d3f1a2b-0000-4000-9000-%012d", i), "readOnly": false,
			"resources": []map[string]any{{"accountId": key.Account, "type": "AWS::CloudFormation::Stack", "ARN": stackID}},
			"eventType": "AwsApiCall", "managementEvent": true, "recipientAccountId": key.Account, "eventCategory": "Management",
		})
		if err != nil {
			return err
		}
		if err := ct.AddEvent(key.Region, record); err != nil {
			return fmt.Errorf("the stack of %s: %w", s.name, err)
		}
	}
	return nil
}

// newestSample is the time of the newest sample: the clock of the demo's
// CloudTrail event history.
func newestSample(samples []sample) time.Time {
	var t time.Time
	for _, s := range samples {
		if s.dec.Key != nil && s.dec.Key.EventTime.After(t) {
			t = s.dec.Key.EventTime
		}
	}
	return t.Add(time.Hour)
}
