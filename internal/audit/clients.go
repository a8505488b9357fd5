package audit

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// KMSAPI is the part of the KMS API the audit calls in one account and
// region: ListKeys, DescribeKey and ListResourceTags to read, TagResource
// and UntagResource to repair.
type KMSAPI interface {
	ListKeys(ctx context.Context, in *kms.ListKeysInput, optFns ...func(*kms.Options)) (*kms.ListKeysOutput, error)
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, optFns ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
	ListResourceTags(ctx context.Context, in *kms.ListResourceTagsInput, optFns ...func(*kms.Options)) (*kms.ListResourceTagsOutput, error)
	TagResource(ctx context.Context, in *kms.TagResourceInput, optFns ...func(*kms.Options)) (*kms.TagResourceOutput, error)
	UntagResource(ctx context.Context, in *kms.UntagResourceInput, optFns ...func(*kms.Options)) (*kms.UntagResourceOutput, error)
}

var _ KMSAPI = (*kms.Client)(nil)

// LookupAPI is the part of the CloudTrail API the audit calls: LookupEvents,
// to find each key's creation event in the event history.
type LookupAPI interface {
	LookupEvents(ctx context.Context, in *cloudtrail.LookupEventsInput, optFns ...func(*cloudtrail.Options)) (*cloudtrail.LookupEventsOutput, error)
}

var _ LookupAPI = (*cloudtrail.Client)(nil)

// Clients are the clients of one account in one region.
type Clients struct {
	KMS        KMSAPI
	CloudTrail LookupAPI
}

// ClientsFunc returns the clients of account in region: the caller's own
// credentials for its own account, a member role's for the others. The
// Auditor calls it once per account and region it touches (a replica's
// creation event is looked up in its primary's region too) and keeps the
// result; an error fails that partition.
//
// The rate limits of Options are applied by a middleware that each call
// adds to its SDK options, after the retry middleware, so that every
// attempt waits for its token; a client that ignores its optFns is not rate
// limited.
type ClientsFunc func(ctx context.Context, account, region string) (Clients, error)
