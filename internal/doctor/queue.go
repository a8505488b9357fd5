package doctor

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/kms-autotagger/kms-autotagger/internal/config"
)

// QueueAPI is the SQS call the dead-letter-queue check makes; it needs
// sqs:GetQueueAttributes on the queue, which the function itself does not
// (it needs sqs:SendMessage).
type QueueAPI interface {
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

var _ QueueAPI = (*sqs.Client)(nil)

// CheckQueue checks that the dead-letter queue at url is set and answers
// GetQueueAttributes for its QueueArn. It sends nothing to the queue, so
// whether the function may send to it (sqs:SendMessage) is not proven.
func CheckQueue(ctx context.Context, api QueueAPI, url string) Check {
	c := Check{Name: CheckNameQueue}
	if url == "" {
		c.Status = Fail
		c.Summary = config.EnvDeadLetterQueueURL + " is not set: events that fail permanently (a deleted key, a " +
			"refused TagResource) are returned as errors, retried by Lambda and then kept only by the function's " +
			"on-failure destination, if it has one"
		c.Fix = fmt.Sprintf("Create an SQS queue for dead letters, set %s to its URL in the function's environment (the "+
			"same variable for the doctor), and allow the function's role sqs:SendMessage on it.", config.EnvDeadLetterQueueURL)
		return c
	}
	out, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		c.Status = Fail
		c.Summary = fmt.Sprintf("the dead-letter queue %s cannot be reached: %v", url, err)
		switch code := errorCode(err); {
		case code == "QueueDoesNotExist" || code == "AWS.SimpleQueueService.NonExistentQueue":
			c.Fix = fmt.Sprintf("No queue has that URL: correct %s (the queue must be in the function's region, "+
				"the region of the AWS configuration).", config.EnvDeadLetterQueueURL)
		default:
			c.Fix = callAdvice(err, "sqs:GetQueueAttributes on the queue")
		}
		return c
	}
	c.Status = Pass
	c.Summary = fmt.Sprintf("the dead-letter queue %s answers", out.Attributes[string(types.QueueAttributeNameQueueArn)])
	c.Details = []string{"the function's role needs sqs:SendMessage on it; the doctor sends nothing, so that is not checked"}
	return c
}
