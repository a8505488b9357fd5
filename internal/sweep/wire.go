package sweep

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/account"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/kms-autotagger/kms-autotagger/internal/audit"
	"github.com/kms-autotagger/kms-autotagger/internal/awscfn"
	"github.com/kms-autotagger/kms-autotagger/internal/awskms"
	"github.com/kms-autotagger/kms-autotagger/internal/config"
	"github.com/kms-autotagger/kms-autotagger/internal/events"
	"github.com/kms-autotagger/kms-autotagger/internal/metrics"
	"github.com/kms-autotagger/kms-autotagger/internal/trailarchive"
)

// SessionName is the RoleSessionName of the sweep's sessions in member
// accounts; it shows in their CloudTrail records.
const SessionName = "kms-autotagger-sweep"

// orgTTL is how long a container keeps the organization's accounts.
const orgTTL = 10 * time.Minute

// FromConfig returns the Sweeper the function's settings describe, with
// clients made from awsCfg: the function's own credentials in its account
// (HOME_ACCOUNT_ID, or sts:GetCallerIdentity on first use), the member role
// (MEMBER_ROLE_NAME) in the others, SQS for the queue, Organizations for
// SWEEP_ACCOUNTS=org, account:ListRegions for SWEEP_REGIONS=all and S3 for
// TRAIL_ARCHIVE_BUCKET. It makes no network call: everything is made on
// first use.
func FromConfig(cfg config.Config, sw config.Sweep, awsCfg aws.Config, log *slog.Logger, m *metrics.Emitter) (*Sweeper, error) {
	if !sw.On() {
		return nil, fmt.Errorf("new sweeper: %s is not set", config.EnvSweepQueueURL)
	}
	policy, err := cfg.Policy()
	if err != nil {
		return nil, err
	}
	w := &wiring{cfg: cfg, sw: sw, aws: awsCfg}
	retry := cfg.Retry
	retry.NotFoundAttempts = 1 // a key missing long after its creation is gone, not late
	retryer := awskms.NewRetryer(retry)
	opts := Options{
		Policy: policy,
		Clients: func(ctx context.Context, acct, region string) (audit.Clients, error) {
			accounts, err := w.accounts(ctx)
			if err != nil {
				return audit.Clients{}, err
			}
			return accounts.Clients(retryer)(ctx, acct, region)
		},
		Scope:      Scope{Accounts: w.scopeAccounts, Regions: w.scopeRegions},
		Queue:      sqs.NewFromConfig(awsCfg),
		QueueURL:   sw.QueueURL,
		Repair:     sw.Repair,
		LookupRate: sw.LookupRate,
		TagRate:    sw.TagRate,
		Metrics:    m,
		Log:        log,
	}
	if sw.TrailBucket != "" {
		opts.Archive = &lazyArchive{cfg: awsCfg, bucket: sw.TrailBucket, prefix: sw.TrailPrefix}
	}
	opts.Stacks = awscfn.New(sweepConfigs{w}, awscfn.Options{Retry: cfg.Retry, RateLimit: cfg.StackLookupRateLimit})
	return New(opts)
}

// sweepConfigs serves the stack lookups with the sweep's own account
// configurations (the member role for other accounts), made on first use.
type sweepConfigs struct{ w *wiring }

// AccountConfig implements awskms.ConfigSource.
func (c sweepConfigs) AccountConfig(ctx context.Context, account, region string) (aws.Config, error) {
	accounts, err := c.w.accounts(ctx)
	if err != nil {
		return aws.Config{}, err
	}
	return accounts.AccountConfig(ctx, account, region)
}

// wiring holds what the sweep makes on first use.
type wiring struct {
	cfg config.Config
	sw  config.Sweep
	aws aws.Config

	mu      sync.Mutex
	accts   *audit.Accounts
	org     []string
	orgTime time.Time
}

// accounts returns the accounts' configurations, finding the function's
// own account on first use.
func (w *wiring) accounts(ctx context.Context) (*audit.Accounts, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.accts != nil {
		return w.accts, nil
	}
	home, partition := w.cfg.HomeAccountID, partitionOf(w.aws.Region)
	if home == "" {
		var err error
		if home, partition, err = audit.CallerAccount(ctx, w.aws); err != nil {
			return nil, err
		}
	}
	w.accts = audit.NewAccounts(w.aws, home, partition, audit.MemberRole{
		Name: w.cfg.MemberRoleName, Path: w.cfg.MemberRolePath, ExternalID: w.cfg.MemberExternalID, SessionName: SessionName,
	})
	return w.accts, nil
}

// scopeAccounts returns the accounts of SWEEP_ACCOUNTS.
func (w *wiring) scopeAccounts(ctx context.Context) ([]string, error) {
	switch {
	case w.sw.Org:
		w.mu.Lock()
		if w.org != nil && time.Since(w.orgTime) < orgTTL {
			org := w.org
			w.mu.Unlock()
			return org, nil
		}
		w.mu.Unlock()
		org, err := audit.ActiveAccounts(ctx, audit.NewOrganizations(w.aws, ""))
		if err != nil {
			return nil, err
		}
		w.mu.Lock()
		w.org, w.orgTime = org, time.Now()
		w.mu.Unlock()
		return org, nil
	case len(w.sw.Accounts) > 0:
		return slices.Clone(w.sw.Accounts), nil
	}
	a, err := w.accounts(ctx)
	if err != nil {
		return nil, err
	}
	return []string{a.Home()}, nil
}

// scopeRegions returns the regions of SWEEP_REGIONS in acct.
func (w *wiring) scopeRegions(ctx context.Context, acct string) ([]string, error) {
	switch {
	case w.sw.AllRegions:
		a, err := w.accounts(ctx)
		if err != nil {
			return nil, err
		}
		c, err := a.Config(acct)
		if err != nil {
			return nil, err
		}
		return audit.EnabledRegions(ctx, account.NewFromConfig(c))
	case len(w.sw.Regions) > 0:
		return slices.Clone(w.sw.Regions), nil
	}
	if w.aws.Region == "" {
		return nil, fmt.Errorf("no region: %s is empty and the function has no AWS_REGION", config.EnvSweepRegions)
	}
	return []string{w.aws.Region}, nil
}

// partitionOf is the ARN partition of region.
func partitionOf(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

// lazyArchive is the trail archive, whose S3 client (in the bucket's
// region, found with HeadBucket) is made on first use.
type lazyArchive struct {
	cfg            aws.Config
	bucket, prefix string

	mu      sync.Mutex
	archive *trailarchive.Archive
}

// FindCreation implements audit.CreationArchive.
func (l *lazyArchive) FindCreation(ctx context.Context, q trailarchive.Query, optFns ...func(*s3.Options)) (*events.KeyEvent, error) {
	l.mu.Lock()
	a := l.archive
	if a == nil {
		client, err := trailarchive.NewS3Client(ctx, l.cfg, l.bucket)
		if err != nil {
			l.mu.Unlock()
			return nil, fmt.Errorf("trail archive s3://%s: %w", l.bucket, err)
		}
		if a, err = trailarchive.New(client, l.bucket, l.prefix); err != nil {
			l.mu.Unlock()
			return nil, err
		}
		l.archive = a
	}
	l.mu.Unlock()
	return a.FindCreation(ctx, q, optFns...)
}
