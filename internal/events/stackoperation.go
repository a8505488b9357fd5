package events

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
)

// Names of the CloudFormation calls and fields the stack attribution reads.
const (
	// EventSourceCloudFormation is the CloudTrail eventSource of
	// CloudFormation API calls.
	EventSourceCloudFormation = "cloudformation.amazonaws.com"
	// InvokedByCloudFormation is userIdentity.invokedBy of the calls
	// CloudFormation makes for a stack operation, such as the CreateKey of
	// an AWS::KMS::Key resource.
	InvokedByCloudFormation = "cloudformation.amazonaws.com"
	// EventNameCreateStack, EventNameUpdateStack and
	// EventNameExecuteChangeSet start a stack operation: the person who
	// made the call is the person behind the resources it creates.
	EventNameCreateStack      = "CreateStack"
	EventNameUpdateStack      = "UpdateStack"
	EventNameExecuteChangeSet = "ExecuteChangeSet"
	// EventNameCreateChangeSet creates a change set: it starts nothing,
	// but its record ties the change set to its stack.
	EventNameCreateChangeSet = "CreateChangeSet"
)

// StackOperationNames are the eventNames of the calls that start a stack
// operation, the ones whose caller is the operator of a stack.
var StackOperationNames = []string{EventNameCreateStack, EventNameUpdateStack, EventNameExecuteChangeSet}

// StackOperation is a CloudFormation call read from its CloudTrail record:
// one that starts a stack operation (CreateStack, UpdateStack,
// ExecuteChangeSet) or creates a change set (CreateChangeSet). The record's
// fields are those of the CloudFormation API Reference as CloudTrail logs
// them:
//
//	{
//	  "userIdentity": {...},
//	  "eventTime": "2024-07-03T08:19:02Z",
//	  "eventSource": "cloudformation.amazonaws.com",
//	  "eventName": "CreateStack",
//	  "awsRegion": "eu-west-1",
//	  "requestParameters": {"stackName": "payments", "roleARN": "arn:aws:iam::111122223333:role/cfn-deployer", ...},
//	  "responseElements": {"stackId": "arn:aws:cloudformation:eu-west-1:111122223333:stack/payments/5b0c..."},
//	  "eventID": "...",
//	  "recipientAccountId": "111122223333"
//	}
//
// UpdateStack's responseElements name stackId too; ExecuteChangeSet's
// requestParameters name changeSetName (a name or the change set's ARN)
// and, with a name, stackName, and it has no responseElements;
// CreateChangeSet's responseElements are {"id": <change set ARN>,
// "stackId": <stack ARN>}.
type StackOperation struct {
	// EventID is the CloudTrail eventID.
	EventID string `json:"eventId"`
	// EventName is the call: CreateStack, UpdateStack, ExecuteChangeSet or
	// CreateChangeSet.
	EventName string `json:"eventName"`
	// EventTime is the CloudTrail eventTime, in UTC.
	EventTime time.Time `json:"eventTime"`
	// Region is awsRegion.
	Region string `json:"region"`
	// Account is recipientAccountId; empty when the record does not say.
	Account string `json:"account,omitempty"`
	// ErrorCode is set when the call failed: it started nothing.
	ErrorCode string `json:"errorCode,omitempty"`
	// StackID is responseElements.stackId, the stack's ARN.
	StackID string `json:"stackId,omitempty"`
	// StackName is requestParameters.stackName as the caller gave it: a
	// stack name or a stack ARN.
	StackName string `json:"stackName,omitempty"`
	// ChangeSetName is requestParameters.changeSetName as the caller gave
	// it: a change set name or ARN.
	ChangeSetName string `json:"changeSetName,omitempty"`
	// ChangeSetID is responseElements.id of a CreateChangeSet, the change
	// set's ARN.
	ChangeSetID string `json:"changeSetId,omitempty"`
	// RoleARN is requestParameters.roleARN: the service role the stack
	// operation runs with, if any.
	RoleARN string `json:"roleArn,omitempty"`
	// Operator is who made the call.
	Operator Creator `json:"operator"`
}

// Starts reports whether the call started a stack operation: a
// CreateStack, UpdateStack or ExecuteChangeSet that succeeded.
func (o *StackOperation) Starts() bool {
	return o.ErrorCode == "" && slices.Contains(StackOperationNames, o.EventName)
}

// stackOperationRequest is requestParameters of the calls of a
// StackOperation, trimmed to the fields read.
type stackOperationRequest struct {
	StackName     string `json:"stackName"`
	ChangeSetName string `json:"changeSetName"`
	RoleARN       string `json:"roleARN"`
}

// stackOperationResponse is responseElements of those calls.
type stackOperationResponse struct {
	StackID string `json:"stackId"`
	ID      string `json:"id"`
}

// DecodeStackOperation decodes one bare CloudTrail record of a
// CloudFormation call, such as the CloudTrailEvent string LookupEvents
// returns. The record must be of eventSource cloudformation.amazonaws.com
// and one of the calls of StackOperation, with an eventID and an RFC 3339
// eventTime; otherwise the error says why (and wraps ErrNotJSON when the
// record is not JSON of the expected shape). A call that failed decodes
// with ErrorCode set.
func DecodeStackOperation(record []byte) (*StackOperation, error) {
	var rec Record
	if err := unmarshalObject("CloudTrail record", record, &rec); err != nil {
		return nil, err
	}
	if rec.EventSource != EventSourceCloudFormation {
		return nil, fmt.Errorf("CloudTrail record %s: eventSource %q is not %s", rec.EventID, rec.EventSource, EventSourceCloudFormation)
	}
	if rec.EventName != EventNameCreateChangeSet && !slices.Contains(StackOperationNames, rec.EventName) {
		return nil, fmt.Errorf("CloudTrail record %s: eventName %q is not a call that starts a stack operation or creates a change set", rec.EventID, rec.EventName)
	}
	if rec.EventID == "" {
		return nil, fmt.Errorf("CloudTrail record of %s: no eventID", rec.EventName)
	}
	at, err := time.Parse(time.RFC3339, rec.EventTime)
	if err != nil {
		return nil, fmt.Errorf("CloudTrail record %s: eventTime %q is not RFC 3339", rec.EventID, rec.EventTime)
	}
	if rec.AWSRegion == "" {
		return nil, fmt.Errorf("CloudTrail record %s: no awsRegion", rec.EventID)
	}
	var req stackOperationRequest
	if err := unmarshalPart(rec.EventName+" requestParameters", rec.RequestParameters, &req); err != nil {
		return nil, err
	}
	var resp stackOperationResponse
	if err := unmarshalPart(rec.EventName+" responseElements", rec.ResponseElements, &resp); err != nil {
		return nil, err
	}
	return &StackOperation{
		EventID:       rec.EventID,
		EventName:     rec.EventName,
		EventTime:     at.UTC(),
		Region:        rec.AWSRegion,
		Account:       rec.RecipientAccountID,
		ErrorCode:     rec.ErrorCode,
		StackID:       resp.StackID,
		StackName:     req.StackName,
		ChangeSetName: req.ChangeSetName,
		ChangeSetID:   resp.ID,
		RoleARN:       req.RoleARN,
		Operator:      rec.UserIdentity.Creator(),
	}, nil
}

// StackARN is a CloudFormation stack ARN, which is the stack's id:
// arn:aws:cloudformation:eu-west-1:111122223333:stack/payments/5b0c7e2a-3951-11ef-8a4c-0a1b2c3d4e5f.
type StackARN struct {
	// Partition, Region and Account are the ARN's.
	Partition, Region, Account string
	// Name is the stack's name, unique among the live stacks of its
	// account and region only.
	Name string
	// ID is the unique part after the name.
	ID string
}

// ParseStackARN parses s as a stack ARN; the error says why it is not one.
func ParseStackARN(s string) (StackARN, error) {
	a, err := arn.Parse(s)
	if err != nil {
		return StackARN{}, fmt.Errorf("%q is not an ARN: %w", s, err)
	}
	parts := strings.Split(a.Resource, "/")
	switch {
	case a.Service != "cloudformation":
		return StackARN{}, fmt.Errorf("%q is an ARN of service %q, not cloudformation", s, a.Service)
	case a.Partition == "" || a.Region == "" || a.AccountID == "":
		return StackARN{}, fmt.Errorf("%q lacks a partition, a region or an account", s)
	case len(parts) != 3 || parts[0] != "stack" || parts[1] == "" || parts[2] == "":
		return StackARN{}, fmt.Errorf("%q names resource %q, not stack/<name>/<id>", s, a.Resource)
	}
	return StackARN{Partition: a.Partition, Region: a.Region, Account: a.AccountID, Name: parts[1], ID: parts[2]}, nil
}
