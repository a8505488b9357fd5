package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/account"

	"github.com/kms-autotagger/kms-autotagger/internal/audit"
	"github.com/kms-autotagger/kms-autotagger/internal/config"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
	"github.com/kms-autotagger/kms-autotagger/internal/trailarchive"
)

// scopeFlags are the flags the audit and the backfill share: the accounts
// and regions in scope, the member role that reaches the other accounts,
// and the trail archive.
type scopeFlags struct {
	regions, accounts              *string
	roleName, rolePath, externalID *string
	trailBucket, trailPrefix       *string
}

// addScopeFlags defines the scope flags on fs; verb is what the command
// does to the accounts ("audit", "backfill").
func addScopeFlags(fs *flag.FlagSet, verb string, getenv func(string) string) *scopeFlags {
	return &scopeFlags{
		regions:    fs.String("regions", "", "comma-separated `REGIONS` to "+verb+", or \"all\" for every region enabled in each account (account:ListRegions); default the AWS configuration's region"),
		accounts:   fs.String("accounts", "", "comma-separated `ACCOUNTS` to "+verb+", or \"org\" for every ACTIVE account of the organization (organizations:ListAccounts with the caller's credentials); default the caller's own account (sts:GetCallerIdentity)"),
		roleName:   fs.String("member-role-name", "", "`NAME` of the role assumed to reach the other accounts; default "+config.EnvMemberRoleName),
		rolePath:   fs.String("member-role-path", "", "`PATH` of that role; default "+config.EnvMemberRolePath),
		externalID: fs.String("external-id", "", "`ID` passed to AssumeRole when the role's trust policy requires one; default "+config.EnvMemberExternalID),
		trailBucket: fs.String("trail-bucket", getenv(config.EnvTrailArchiveBucket), "S3 `BUCKET` of the organization trail's log files, read (with the caller's credentials) for the creation of keys older than the event history's 90 days; default "+
			config.EnvTrailArchiveBucket+", none to read no archive"),
		trailPrefix: fs.String("trail-prefix", getenv(config.EnvTrailArchivePrefix), "the trail's S3 key `PREFIX` in that bucket (before AWSLogs/); default "+config.EnvTrailArchivePrefix),
	}
}

// scopeSettingsHelp is the end of the audit's and the backfill's help: the
// settings, and the endpoints of the services their scope reaches.
func scopeSettingsHelp() string {
	return "\nSettings:\n" + config.Help() + awsHelp +
		"AWS_ENDPOINT_URL_CLOUDTRAIL, AWS_ENDPOINT_URL_ACCOUNT, AWS_ENDPOINT_URL_ORGANIZATIONS and AWS_ENDPOINT_URL_S3 likewise.\n"
}

// rateFlags are the rate limits the audit and the backfill share, in
// requests per second per account and region.
type rateFlags struct{ lookup, tag, read *float64 }

// addRateFlags defines --lookup-rate, --tag-rate and --read-rate on fs
// with the command's defaults.
func addRateFlags(fs *flag.FlagSet, lookup, tag, read float64) rateFlags {
	return rateFlags{
		lookup: fs.Float64("lookup-rate", lookup, "most cloudtrail:LookupEvents requests per second per account and region (CloudTrail allows 2)"),
		tag:    fs.Float64("tag-rate", tag, "most kms:TagResource and kms:UntagResource requests per second per account and region, together (KMS allows 10 TagResource and 5 UntagResource: the rest is the live tagger's)"),
		read:   fs.Float64("read-rate", read, "most kms:ListKeys, DescribeKey and ListResourceTags requests per second per account and region, together"),
	}
}

// check returns the usage error of the first rate that is not a positive
// number.
func (r rateFlags) check() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"--lookup-rate", *r.lookup}, {"--tag-rate", *r.tag}, {"--read-rate", *r.read}} {
		if !(f.v > 0) {
			return &usageError{fmt.Sprintf("%s %g is not a positive number of requests per second", f.name, f.v)}
		}
	}
	return nil
}

// runSetup is what the audit and the backfill read before they start.
type runSetup struct {
	cfg    config.Config
	policy *tagger.Policy
	log    *slog.Logger
	scope  *scope
}

// setup reads the settings (with the member role flags in place of
// theirs) and makes the policy and the logger, then loads the AWS
// configuration and resolves the scope with session as the member
// accounts' session name. A usage error matches errUsage.
func (f *scopeFlags) setup(ctx context.Context, fs *flag.FlagSet, stdio IO, session string) (*runSetup, error) {
	getenv := f.getenv(fs, stdio.Getenv)
	cfg, err := config.FromEnv(getenv)
	if err != nil {
		return nil, &usageError{"configuration: " + err.Error()}
	}
	policy, err := cfg.Policy()
	if err != nil {
		return nil, &usageError{"configuration: " + err.Error()}
	}
	log := slog.New(slog.NewTextHandler(stdio.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	sc, err := f.resolve(ctx, cfg, awsCfg, getenv, session)
	if err != nil {
		return nil, err
	}
	return &runSetup{cfg: cfg, policy: policy, log: log, scope: sc}, nil
}

// getenv returns the settings reader with the member role flags given in
// place of their settings, which are checked as they are.
func (f *scopeFlags) getenv(fs *flag.FlagSet, getenv func(string) string) func(string) string {
	overrides := map[string]string{}
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "member-role-name":
			overrides[config.EnvMemberRoleName] = *f.roleName
		case "member-role-path":
			overrides[config.EnvMemberRolePath] = *f.rolePath
		case "external-id":
			overrides[config.EnvMemberExternalID] = *f.externalID
		}
	})
	return func(name string) string {
		if v, ok := overrides[name]; ok {
			return v
		}
		return getenv(name)
	}
}

// scope is what the scope flags resolved to.
type scope struct {
	// accounts reaches each account; ids are the accounts in scope.
	accounts *audit.Accounts
	ids      []string
	// regions are the regions of each account; partitions every account
	// and region.
	regions    map[string][]string
	partitions []audit.Partition
	// archive is the trail archive, nil without --trail-bucket.
	archive *trailarchive.Archive
}

// resolve finds the caller's account, expands --accounts and --regions
// (asking Organizations and account:ListRegions when told to), and makes
// the trail archive's client. A usage error matches errUsage.
func (f *scopeFlags) resolve(ctx context.Context, cfg config.Config, awsCfg aws.Config, getenv func(string) string, session string) (*scope, error) {
	home, partition, err := audit.CallerAccount(ctx, awsCfg)
	if err != nil {
		return nil, err
	}
	ids, err := chooseAccounts(ctx, *f.accounts, home, awsCfg, getenv)
	if err != nil {
		return nil, err
	}
	if others := slices.DeleteFunc(slices.Clone(ids), func(a string) bool { return a == home }); len(others) > 0 && cfg.MemberRoleName == "" {
		return nil, &usageError{fmt.Sprintf("accounts %s are not the caller's (%s): give --member-role-name (or %s), the role to reach them through",
			strings.Join(others, ", "), home, config.EnvMemberRoleName)}
	}
	s := &scope{
		accounts: audit.NewAccounts(awsCfg, home, partition, audit.MemberRole{Name: cfg.MemberRoleName, Path: cfg.MemberRolePath, ExternalID: cfg.MemberExternalID, SessionName: session}),
		ids:      ids,
		regions:  map[string][]string{},
	}
	for _, a := range ids {
		c, err := s.accounts.Config(a)
		if err != nil {
			return nil, err
		}
		regions, err := chooseRegions(ctx, *f.regions, c)
		if err != nil {
			if strings.TrimSpace(*f.regions) == "all" {
				return nil, fmt.Errorf("account %s: %w", a, err)
			}
			return nil, &usageError{err.Error()}
		}
		s.regions[a] = regions
		for _, r := range regions {
			s.partitions = append(s.partitions, audit.Partition{Account: a, Region: r})
		}
	}
	if bucket := strings.TrimSpace(*f.trailBucket); bucket != "" {
		if _, err := trailarchive.New(noS3{}, bucket, *f.trailPrefix); err != nil {
			return nil, &usageError{"--trail-bucket/--trail-prefix: " + err.Error()}
		}
		client, err := trailarchive.NewS3Client(ctx, awsCfg, bucket)
		if err != nil {
			return nil, fmt.Errorf("--trail-bucket: %w", err)
		}
		if s.archive, err = trailarchive.New(client, bucket, *f.trailPrefix); err != nil {
			return nil, &usageError{"--trail-bucket: " + err.Error()}
		}
	}
	return s, nil
}

// noS3 is the S3 client of New's check of the flags alone.
type noS3 struct{ trailarchive.S3API }

// errUsage marks the errors that are the user's.
var errUsage = errors.New("usage")

type usageError struct{ msg string }

func (e *usageError) Error() string        { return e.msg }
func (e *usageError) Is(target error) bool { return target == errUsage }

// chooseAccounts expands --accounts: empty is the caller's own account;
// "org" every ACTIVE account of the organization; else a list of IDs.
func chooseAccounts(ctx context.Context, flagValue, home string, cfg aws.Config, getenv func(string) string) ([]string, error) {
	switch v := strings.TrimSpace(flagValue); v {
	case "":
		return []string{home}, nil
	case "org":
		endpoint := getenv("AWS_ENDPOINT_URL_ORGANIZATIONS")
		accounts, err := audit.ActiveAccounts(ctx, audit.NewOrganizations(cfg, endpoint))
		if err != nil {
			return nil, fmt.Errorf("--accounts org: %w", err)
		}
		return accounts, nil
	default:
		accounts := config.SplitList(v)
		for _, a := range accounts {
			if len(a) != 12 || strings.Trim(a, "0123456789") != "" {
				return nil, &usageError{fmt.Sprintf("--accounts: %q is not a 12-digit account ID", a)}
			}
		}
		if len(accounts) == 0 {
			return nil, &usageError{fmt.Sprintf("--accounts %q names no account", flagValue)}
		}
		return accounts, nil
	}
}

// chooseRegions expands --regions: empty is the AWS configuration's
// region; "all" is every region enabled for the account of cfg's
// credentials (audit.EnabledRegions).
func chooseRegions(ctx context.Context, flagValue string, cfg aws.Config) ([]string, error) {
	switch v := strings.TrimSpace(flagValue); v {
	case "":
		if cfg.Region == "" {
			return nil, errors.New("no region: set AWS_REGION (or a profile's region) or give --regions")
		}
		return []string{cfg.Region}, nil
	case "all":
		regions, err := audit.EnabledRegions(ctx, account.NewFromConfig(cfg))
		if err != nil {
			return nil, fmt.Errorf("--regions all: %w", err)
		}
		return regions, nil
	default:
		regions := config.SplitList(v)
		if len(regions) == 0 {
			return nil, fmt.Errorf("--regions %q names no region", flagValue)
		}
		return regions, nil
	}
}
