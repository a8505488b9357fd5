package history

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/kms-autotagger/kms-autotagger/internal/events"
)

// OperatorWindow is how long before a key's creation the search for the
// stack operation that created it looks. A stack operation creates its
// resources in the order of their dependencies, a key possibly after
// resources that take long (a wait condition waits up to 12 hours), so the
// operation may have started well before the key's CreateKey.
const OperatorWindow = 24 * time.Hour

// MaxOperationPages bounds the LookupEvents pages (50 events each) one
// query of FindStackOperation reads: the events on one stack within
// OperatorWindow are few, and the lookup's quota (two requests per second
// per account and region) is shared with the tamper repair.
const MaxOperationPages = 4

// FindStackOperation looks up, in the CloudTrail event history of the
// stack's account and region (lookup's), the record of the stack operation
// that created a resource of the stack stackARN at created: the latest
// CreateStack, UpdateStack or ExecuteChangeSet of that stack that
// succeeded, at most OperatorWindow before created. The stack is locked
// while an operation is in progress (a second one fails, errorCode set),
// so the latest operation started before the resource's creation is the
// one that created it. It returns nil and no error when the history holds
// none.
//
// It asks LookupEvents by ResourceName, with the stack's ARN and then, if
// that finds none, its name (a call may name the stack either way). A
// record counts only when it names this stack itself, not only a stack of
// the same name: CreateStack and UpdateStack by the stackId of their
// response (or an UpdateStack by the ARN it was given); ExecuteChangeSet by
// the stack ARN it was given, or by a change set whose CreateChangeSet's
// response ties it to this stack.
func FindStackOperation(ctx context.Context, lookup LookupAPI, stackARN string, created time.Time) (*events.StackOperation, error) {
	stack, err := events.ParseStackARN(stackARN)
	if err != nil {
		return nil, fmt.Errorf("finding the operation of stack %s: %w", stackARN, err)
	}
	start, end := created.Add(-OperatorWindow), created.Add(time.Second)
	found := map[string]*events.StackOperation{} // by event id, both queries
	for _, resource := range []string{stackARN, stack.Name} {
		if err := collectOperations(ctx, lookup, resource, start, end, found); err != nil {
			return nil, fmt.Errorf("looking up the operations of stack %s in %s: %w", stackARN, stack.Region, err)
		}
		if op := latestOperation(found, stack, stackARN, end); op != nil {
			return op, nil
		}
	}
	return nil, nil
}

// collectOperations adds to found the CloudFormation records on resource
// between start and end that decode as stack operations or change sets.
func collectOperations(ctx context.Context, lookup LookupAPI, resource string, start, end time.Time, found map[string]*events.StackOperation) error {
	pages := cloudtrail.NewLookupEventsPaginator(lookup, &cloudtrail.LookupEventsInput{
		LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyResourceName, AttributeValue: aws.String(resource)}},
		StartTime:        aws.Time(start),
		EndTime:          aws.Time(end),
	})
	for n := 0; pages.HasMorePages() && n < MaxOperationPages; n++ {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, ev := range page.Events {
			if src := aws.ToString(ev.EventSource); src != "" && src != events.EventSourceCloudFormation {
				continue
			}
			op, err := events.DecodeStackOperation([]byte(aws.ToString(ev.CloudTrailEvent)))
			if err != nil {
				continue // another call, or unreadable: keep looking
			}
			found[op.EventID] = op
		}
	}
	return nil
}

// latestOperation returns the latest operation of found that started an
// operation of the stack stackARN (parsed: stack) by end, or nil.
func latestOperation(found map[string]*events.StackOperation, stack events.StackARN, stackARN string, end time.Time) *events.StackOperation {
	// Change sets of this stack, by ARN and by name.
	changeSets := map[string]bool{}
	for _, op := range found {
		if op.EventName == events.EventNameCreateChangeSet && op.ErrorCode == "" && op.StackID == stackARN {
			if op.ChangeSetID != "" {
				changeSets[op.ChangeSetID] = true
			}
			if op.ChangeSetName != "" {
				changeSets[op.ChangeSetName] = true
			}
		}
	}
	var latest *events.StackOperation
	for _, op := range found {
		if !op.Starts() || op.EventTime.After(end) || op.Region != stack.Region || (op.Account != "" && op.Account != stack.Account) {
			continue
		}
		if !namesStack(op, stack, stackARN, changeSets) {
			continue
		}
		if latest == nil || op.EventTime.After(latest.EventTime) || (op.EventTime.Equal(latest.EventTime) && op.EventID > latest.EventID) {
			latest = op
		}
	}
	return latest
}

// namesStack reports whether op's record names the stack stackARN itself.
func namesStack(op *events.StackOperation, stack events.StackARN, stackARN string, changeSets map[string]bool) bool {
	switch op.EventName {
	case events.EventNameCreateStack:
		return op.StackID == stackARN
	case events.EventNameUpdateStack:
		return op.StackID == stackARN || (op.StackID == "" && op.StackName == stackARN)
	case events.EventNameExecuteChangeSet:
		switch {
		case op.StackName == stackARN:
			return true
		case !changeSets[op.ChangeSetName]:
			return false
		}
		// A change set ARN is unique; a change set name is unique within its
		// stack, which the call must then name.
		return op.StackName == "" && isChangeSetARN(op.ChangeSetName) || op.StackName == stack.Name
	}
	return false
}

// isChangeSetARN reports whether s is a change set's ARN rather than its
// name.
func isChangeSetARN(s string) bool {
	return len(s) > 4 && s[:4] == "arn:"
}
