package tagger

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// KMSAPI is the part of the KMS API the tagger calls.
type KMSAPI interface {
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, optFns ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
	ListResourceTags(ctx context.Context, in *kms.ListResourceTagsInput, optFns ...func(*kms.Options)) (*kms.ListResourceTagsOutput, error)
	TagResource(ctx context.Context, in *kms.TagResourceInput, optFns ...func(*kms.Options)) (*kms.TagResourceOutput, error)
	UntagResource(ctx context.Context, in *kms.UntagResourceInput, optFns ...func(*kms.Options)) (*kms.UntagResourceOutput, error)
}

var _ KMSAPI = (*kms.Client)(nil)

// KMSClients returns the KMS client for a key's account and region.
type KMSClients interface {
	KMSClient(ctx context.Context, account, region string) (KMSAPI, error)
}

// DeadLetterSink keeps the record of an event that failed permanently
// (internal/awssqs sends it to an SQS queue). Send returns
// ErrNoDeadLetterQueue when it keeps nothing.
type DeadLetterSink interface {
	Send(ctx context.Context, d *DeadLetter) error
}
