package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/account"
	accounttypes "github.com/aws/aws-sdk-go-v2/service/account/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"
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

// MemberRole is how the audit reaches the accounts other than the
// caller's: the role it assumes in each (config.Config's MemberRoleName,
// MemberRolePath and MemberExternalID) and the RoleSessionName its
// sessions show in their CloudTrail records.
type MemberRole struct {
	Name, Path, ExternalID string
	SessionName            string
}

// Accounts gives the AWS configuration of each account: the caller's own
// (home) with the base configuration's credentials, every other through
// the member role (sts:AssumeRole with the base credentials, cached and
// refreshed before they expire). It is safe for concurrent use.
type Accounts struct {
	base      aws.Config
	home      string
	partition string
	role      MemberRole
	sts       *sts.Client

	mu   sync.Mutex
	cfgs map[string]aws.Config
}

// NewAccounts returns the accounts reached from base, whose credentials are
// those of home in partition (aws, aws-cn, aws-us-gov).
func NewAccounts(base aws.Config, home, partition string, role MemberRole) *Accounts {
	if partition == "" {
		partition = "aws"
	}
	if role.Path == "" {
		role.Path = "/"
	}
	return &Accounts{base: base, home: home, partition: partition, role: role, sts: sts.NewFromConfig(base), cfgs: map[string]aws.Config{home: base}}
}

// CallerAccount returns the account and partition of cfg's credentials
// (sts:GetCallerIdentity, which needs no permission).
func CallerAccount(ctx context.Context, cfg aws.Config) (account, partition string, err error) {
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", "", fmt.Errorf("finding the caller's account (sts:GetCallerIdentity): %w", err)
	}
	partition = "aws"
	if a, err := arn.Parse(aws.ToString(id.Arn)); err == nil {
		partition = a.Partition
	}
	return aws.ToString(id.Account), partition, nil
}

// Home returns the caller's account.
func (a *Accounts) Home() string { return a.home }

// RoleARN returns the member role's ARN in account.
func (a *Accounts) RoleARN(account string) string {
	return fmt.Sprintf("arn:%s:iam::%s:role%s%s", a.partition, account, a.role.Path, a.role.Name)
}

// Config returns the configuration of account: an error for another
// account than home without a member role.
func (a *Accounts) Config(account string) (aws.Config, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.cfgs[account]; ok {
		return c, nil
	}
	if !accountPattern.MatchString(account) {
		return aws.Config{}, fmt.Errorf("%q is not a 12-digit account ID", account)
	}
	if a.role.Name == "" {
		return aws.Config{}, fmt.Errorf("account %s is not the caller's (%s) and no member role is set to reach it", account, a.home)
	}
	c := a.base.Copy()
	c.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(a.sts, a.RoleARN(account), func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = a.role.SessionName
		if a.role.ExternalID != "" {
			o.ExternalID = aws.String(a.role.ExternalID)
		}
	}))
	a.cfgs[account] = c
	return c, nil
}

// AccountConfig returns the configuration of account in region (see
// Config): the Accounts serve as the awskms.ConfigSource of the stack
// lookups (internal/awscfn).
func (a *Accounts) AccountConfig(_ context.Context, account, region string) (aws.Config, error) {
	c, err := a.Config(account)
	if err != nil {
		return aws.Config{}, err
	}
	c.Region = region
	return c, nil
}

// Clients returns the audit's clients of every account and region, with
// retryer (nil: the SDK's).
func (a *Accounts) Clients(retryer aws.Retryer) ClientsFunc {
	return func(_ context.Context, account, region string) (Clients, error) {
		c, err := a.Config(account)
		if err != nil {
			return Clients{}, err
		}
		return Clients{
			KMS: kms.NewFromConfig(c, func(o *kms.Options) {
				o.Region = region
				if retryer != nil {
					o.Retryer = retryer
				}
			}),
			CloudTrail: cloudtrail.NewFromConfig(c, func(o *cloudtrail.Options) {
				o.Region = region
				if retryer != nil {
					o.Retryer = retryer
				}
			}),
		}, nil
	}
}

// EnabledRegions lists the regions enabled for the account of c's
// credentials (account:ListRegions, ENABLED or ENABLED_BY_DEFAULT), sorted.
//
// It answers exactly "the regions this account can have keys in" with one
// small call (the account client is a small module); ec2:DescribeRegions,
// which answers the same, would bring the EC2 client, one of the largest
// modules of the SDK, into the binary the Lambda also runs. A region that
// is not enabled cannot hold keys, so nothing is missed.
func EnabledRegions(ctx context.Context, c account.ListRegionsAPIClient) ([]string, error) {
	var regions []string
	pages := account.NewListRegionsPaginator(c, &account.ListRegionsInput{
		RegionOptStatusContains: []accounttypes.RegionOptStatus{accounttypes.RegionOptStatusEnabled, accounttypes.RegionOptStatusEnabledByDefault},
	})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing the enabled regions: %w", err)
		}
		for _, r := range out.Regions {
			regions = append(regions, aws.ToString(r.RegionName))
		}
	}
	if len(regions) == 0 {
		return nil, errors.New("account:ListRegions returned no enabled region")
	}
	slices.Sort(regions)
	return regions, nil
}

// ForEach calls fn for each item, at most parallel at once (at least one),
// starting them in the order given; once ctx is cancelled no further item
// is started. It returns when every call started has returned. It is the
// partition runner of the audit, the backfill and the sweep.
func ForEach[T any](ctx context.Context, parallel int, items []T, fn func(T)) {
	work := make(chan T)
	var workers sync.WaitGroup
	for range min(max(parallel, 1), len(items)) {
		workers.Go(func() {
			for it := range work {
				fn(it)
			}
		})
	}
	for _, it := range items {
		if ctx.Err() != nil {
			break
		}
		select {
		case work <- it:
		case <-ctx.Done():
		}
	}
	close(work)
	workers.Wait()
}
