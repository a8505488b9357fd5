package backfill

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/kms-autotagger/kms-autotagger/internal/awskms"
	"github.com/kms-autotagger/kms-autotagger/internal/regional"
)

// LookupAPI is the part of the CloudTrail API the backfill calls.
type LookupAPI interface {
	LookupEvents(ctx context.Context, in *cloudtrail.LookupEventsInput, optFns ...func(*cloudtrail.Options)) (*cloudtrail.LookupEventsOutput, error)
}

var _ LookupAPI = (*cloudtrail.Client)(nil)

// KeyAPI is the part of the KMS API the backfill calls.
type KeyAPI interface {
	TagResource(ctx context.Context, in *kms.TagResourceInput, optFns ...func(*kms.Options)) (*kms.TagResourceOutput, error)
	UntagResource(ctx context.Context, in *kms.UntagResourceInput, optFns ...func(*kms.Options)) (*kms.UntagResourceOutput, error)
	ListResourceTags(ctx context.Context, in *kms.ListResourceTagsInput, optFns ...func(*kms.Options)) (*kms.ListResourceTagsOutput, error)
	ListKeys(ctx context.Context, in *kms.ListKeysInput, optFns ...func(*kms.Options)) (*kms.ListKeysOutput, error)
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, optFns ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
}

var _ KeyAPI = (*kms.Client)(nil)

// ClientsFunc returns the CloudTrail and KMS clients of region. The
// Backfiller calls it once per region it touches and keeps the result.
//
// The rate limits of Options are applied by a middleware that each call
// adds to its SDK options (so that retries are limited too); a client that
// ignores its optFns is not rate limited.
type ClientsFunc func(region string) (LookupAPI, KeyAPI)

// NewClients returns the clients of every region made from cfg, whose
// endpoint resolution applies as usual (AWS_ENDPOINT_URL_CLOUDTRAIL,
// AWS_ENDPOINT_URL_KMS). Both retry with the tagger's retryer and the same
// settings as the Lambda (throttling, 5xx and network faults, up to
// retry.MaxAttempts attempts), except that NotFoundException is never
// retried: a key missing long after its creation is gone, not late.
func NewClients(cfg aws.Config, retry awskms.RetryOptions) ClientsFunc {
	retry.NotFoundAttempts = 1
	retryer := awskms.NewRetryer(retry)
	keys := awskms.NewRegionalKMS(cfg, func(o *kms.Options) { o.Retryer = retryer })
	trails := regional.New(func(region string) *cloudtrail.Client {
		return cloudtrail.NewFromConfig(cfg, func(o *cloudtrail.Options) {
			o.Region = region
			o.Retryer = retryer
		})
	})
	return func(region string) (LookupAPI, KeyAPI) {
		return trails.Get(region), keys.Client(region)
	}
}
