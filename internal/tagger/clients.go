package tagger

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/kms-autotagger/kms-autotagger/internal/regional"
)

// KMSAPI is the part of the KMS API the tagger calls.
type KMSAPI interface {
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, optFns ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
	ListResourceTags(ctx context.Context, in *kms.ListResourceTagsInput, optFns ...func(*kms.Options)) (*kms.ListResourceTagsOutput, error)
	TagResource(ctx context.Context, in *kms.TagResourceInput, optFns ...func(*kms.Options)) (*kms.TagResourceOutput, error)
	UntagResource(ctx context.Context, in *kms.UntagResourceInput, optFns ...func(*kms.Options)) (*kms.UntagResourceOutput, error)
}

var _ KMSAPI = (*kms.Client)(nil)

// SQSAPI is the part of the SQS API the dead-letter queue needs.
type SQSAPI interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

var _ SQSAPI = (*sqs.Client)(nil)

// KMSClients returns the KMS client for a key's account and region.
type KMSClients interface {
	KMSClient(ctx context.Context, account, region string) (KMSAPI, error)
}

// RegionalKMS keeps one KMS client per region, made on first use from one
// base configuration, so a replica is tagged in its own region. It serves
// the keys of the account its credentials belong to.
type RegionalKMS struct {
	clients *regional.Clients[*kms.Client]
}

// NewRegionalKMS returns clients made from cfg (endpoint resolution, such as
// AWS_ENDPOINT_URL_KMS, comes from cfg as usual) with optFns applied.
func NewRegionalKMS(cfg aws.Config, optFns ...func(*kms.Options)) *RegionalKMS {
	return &RegionalKMS{clients: regional.New(func(region string) *kms.Client {
		return kms.NewFromConfig(cfg, append([]func(*kms.Options){func(o *kms.Options) { o.Region = region }}, optFns...)...)
	})}
}

// KMSClient returns the client for region; account is not used, since one
// set of credentials serves one account.
func (r *RegionalKMS) KMSClient(_ context.Context, _, region string) (KMSAPI, error) {
	return r.Client(region), nil
}

// Client returns the *kms.Client for region, creating it on first use.
func (r *RegionalKMS) Client(region string) *kms.Client {
	return r.clients.Get(region)
}
