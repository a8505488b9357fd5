package backfill

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/kms-autotagger/kms-autotagger/internal/awskms"
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

// ClientsFunc returns the CloudTrail and KMS clients of account in region.
// The Backfiller calls it once per account and region it touches and keeps
// the result; an error fails that account and region.
//
// The rate limits of Options are applied by a middleware that each call
// adds to its SDK options (so that retries are limited too); a client that
// ignores its optFns is not rate limited.
type ClientsFunc func(ctx context.Context, account, region string) (LookupAPI, KeyAPI, error)

// NewClients returns the clients of every account and region, made from
// the configuration configs gives for the account (audit.Accounts.Config:
// the caller's own credentials for its account, the member role's for the
// others), whose endpoint resolution applies as usual
// (AWS_ENDPOINT_URL_CLOUDTRAIL, AWS_ENDPOINT_URL_KMS). Both retry with the
// tagger's retryer and the same settings as the Lambda (throttling, 5xx and
// network faults, up to retry.MaxAttempts attempts), except that
// NotFoundException is never retried: a key missing long after its
// creation is gone, not late.
func NewClients(configs func(account string) (aws.Config, error), retry awskms.RetryOptions) ClientsFunc {
	retry.NotFoundAttempts = 1
	retryer := awskms.NewRetryer(retry)
	type clients struct {
		lookup *cloudtrail.Client
		keys   *kms.Client
	}
	var (
		mu    sync.Mutex
		cache = map[[2]string]clients{}
	)
	return func(_ context.Context, account, region string) (LookupAPI, KeyAPI, error) {
		mu.Lock()
		defer mu.Unlock()
		if c, ok := cache[[2]string{account, region}]; ok {
			return c.lookup, c.keys, nil
		}
		cfg, err := configs(account)
		if err != nil {
			return nil, nil, err
		}
		c := clients{
			lookup: cloudtrail.NewFromConfig(cfg, func(o *cloudtrail.Options) {
				o.Region = region
				o.Retryer = retryer
			}),
			keys: kms.NewFromConfig(cfg, func(o *kms.Options) {
				o.Region = region
				o.Retryer = retryer
			}),
		}
		cache[[2]string{account, region}] = c
		return c.lookup, c.keys, nil
	}
}
