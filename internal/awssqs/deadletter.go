package awssqs

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// SQSAPI is the part of the SQS API the dead-letter queue needs.
type SQSAPI interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

var _ SQSAPI = (*sqs.Client)(nil)

var _ tagger.DeadLetterSink = (*DeadLetterQueue)(nil)

// DeadLetterQueue sends DeadLetter records to an SQS queue.
type DeadLetterQueue struct {
	SQS SQSAPI
	URL string
}

// Send writes d to the queue, with its error code, event name and version
// also as message attributes.
func (q *DeadLetterQueue) Send(ctx context.Context, d *tagger.DeadLetter) error {
	if q == nil || q.URL == "" || q.SQS == nil {
		return tagger.ErrNoDeadLetterQueue
	}
	body, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encoding dead letter for event %s: %w", d.EventID, err)
	}
	attrs := map[string]sqstypes.MessageAttributeValue{
		tagger.AttrErrorCode: {DataType: aws.String("String"), StringValue: aws.String(d.Error.Code)},
		tagger.AttrVersion:   {DataType: aws.String("Number"), StringValue: aws.String(fmt.Sprint(d.Version))},
	}
	if d.EventName != "" {
		attrs[tagger.AttrEventName] = sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(d.EventName)}
	}
	if _, err := q.SQS.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:          aws.String(q.URL),
		MessageBody:       aws.String(string(body)),
		MessageAttributes: attrs,
	}); err != nil {
		return fmt.Errorf("sending dead letter for event %s to %s: %w", d.EventID, q.URL, err)
	}
	return nil
}
