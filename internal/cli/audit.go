package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"golang.org/x/term"

	"github.com/kms-autotagger/kms-autotagger/internal/audit"
	"github.com/kms-autotagger/kms-autotagger/internal/awskms"
	"github.com/kms-autotagger/kms-autotagger/internal/config"
)

// AuditSessionName is the RoleSessionName of the audit's sessions in
// member accounts; it shows in their CloudTrail records.
const AuditSessionName = "kms-autotagger-audit"

// auditCmd audits the governance tags of every customer managed key in the
// accounts and regions asked, with the Lambda's configuration, and repairs
// them with --repair.
func auditCmd(ctx context.Context, args []string, stdio IO) int {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(stdio.Stderr)
	regionsFlag := fs.String("regions", "", "comma-separated `REGIONS` to audit, or \"all\" for every region enabled in each account (account:ListRegions); default the AWS configuration's region")
	accountsFlag := fs.String("accounts", "", "comma-separated `ACCOUNTS` to audit, or \"org\" for every ACTIVE account of the organization (organizations:ListAccounts with the caller's credentials); default the caller's own account (sts:GetCallerIdentity)")
	roleName := fs.String("member-role-name", "", "`NAME` of the role assumed to read (and repair) the other accounts; default "+config.EnvMemberRoleName)
	rolePath := fs.String("member-role-path", "", "`PATH` of that role; default "+config.EnvMemberRolePath+", else /")
	externalID := fs.String("external-id", "", "`ID` passed to AssumeRole when the role's trust policy requires one; default "+config.EnvMemberExternalID)
	output := fs.String("output", audit.FormatTable, "`FORMAT` of the report: table, json (one JSON document) or csv (one line per key)")
	repair := fs.Bool("repair", false, "repair what is not compliant, from the creation event CloudTrail's history holds (never from nothing): remove the owned tags that must go, write those missing or wrong")
	parallel := fs.Int("parallel", audit.DefaultParallel, "most accounts-and-regions audited at once")
	lookupRate := fs.Float64("lookup-rate", audit.DefaultLookupRate, "most cloudtrail:LookupEvents requests per second per account and region (CloudTrail allows 2)")
	tagRate := fs.Float64("tag-rate", audit.DefaultTagRate, "most kms:TagResource and kms:UntagResource requests per second per account and region, together (KMS allows 10 of each: the rest is the live tagger's)")
	readRate := fs.Float64("read-rate", audit.DefaultReadRate, "most kms:ListKeys, DescribeKey and ListResourceTags requests per second per account and region, together (KMS allows 100 ListKeys)")
	fs.Usage = func() {
		fmt.Fprintf(stdio.Stderr, "usage: autotagger audit [--accounts 111122223333,444455556666|org] [--regions us-east-1,eu-west-1|all]\n"+
			"                        [--member-role-name NAME] [--member-role-path /PATH/] [--external-id ID]\n"+
			"                        [--output table|json|csv] [--repair] [--parallel 8]\n"+
			"                        [--lookup-rate 2] [--tag-rate 5] [--read-rate 20]\n\n"+
			"Audits the governance tags of every customer managed KMS key in each account and region\n"+
			"against what kms-autotagger would have written, with the same settings: it lists the keys\n"+
			"(AWS managed keys left out), reads their tags, finds each key's creation event in CloudTrail's\n"+
			"event history (the last 90 days) and says per key one status:\n\n"+
			"  compliant         exactly its governance tags\n"+
			"  missing           governance tags missing\n"+
			"  wrong             governance tags with wrong values\n"+
			"  forged            case variants of governance tags, or governance tags with no true value\n"+
			"  unattributable    no creation event in the event history: cannot be checked nor repaired\n"+
			"  pending-deletion  not checked, not counted\n"+
			"  failed            could not be read\n\n"+
			"The report has a table per account and region with the coverage (compliant keys among the\n"+
			"customer managed keys not pending deletion) and a line per key. With --repair the keys whose\n"+
			"creation event the history holds are repaired (action repaired); unattributable keys never are.\n\n"+
			"Other accounts are read through the member role (sts:AssumeRole). Each account and region\n"+
			"runs within its own rate limits, --parallel at once, so a run takes about as long as the\n"+
			"slowest account and region. The defaults: LookupEvents at CloudTrail's quota (2 per second per\n"+
			"account and region), one per key, which bounds the run; TagResource and UntagResource at 5 per\n"+
			"second, half of KMS's 10, since the live tagger needs no more than KMS's CreateKey quota of 5\n"+
			"per second; the reads at 20 per second, five times what a key's two reads per lookup need and\n"+
			"a fifth of ListKeys' 100.\n\n"+
			"The report goes to stdout; logs (and a progress bar on a terminal) to stderr. Exits 0 when every\n"+
			"key is compliant (keys pending deletion do not count), 1 when one is not (after the repair,\n"+
			"with --repair) or an account or region could not be read, 2 for a usage error.\n\n"+
			"Needs, in every account: kms:ListKeys, kms:DescribeKey, kms:ListResourceTags,\n"+
			"cloudtrail:LookupEvents, account:ListRegions for --regions all, and for --repair kms:TagResource\n"+
			"and kms:UntagResource; organizations:ListAccounts for --accounts org; sts:AssumeRole of the\n"+
			"member role for other accounts.\n\n")
		fs.PrintDefaults()
		fmt.Fprint(stdio.Stderr, "\nSettings:\n"+config.Help()+awsHelp+
			"AWS_ENDPOINT_URL_CLOUDTRAIL, AWS_ENDPOINT_URL_ACCOUNT and AWS_ENDPOINT_URL_ORGANIZATIONS likewise.\n")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stdio.Stderr, "autotagger audit: "+format+"\n", a...)
		return ExitUsage
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stdio.Stderr, "autotagger audit: "+format+"\n", a...)
		return ExitFailure
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if !slices.Contains(audit.Formats, *output) {
		return usageErr("--output %q is not one of %s", *output, strings.Join(audit.Formats, ", "))
	}
	if *parallel < 1 {
		return usageErr("--parallel %d: at least one account and region at a time", *parallel)
	}
	for name, r := range map[string]float64{"--lookup-rate": *lookupRate, "--tag-rate": *tagRate, "--read-rate": *readRate} {
		if !(r > 0) {
			return usageErr("%s %g is not a positive number of requests per second", name, r)
		}
	}
	// The member role flags stand for their settings, and are checked as
	// they are.
	overrides := map[string]string{}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "member-role-name":
			overrides[config.EnvMemberRoleName] = *roleName
		case "member-role-path":
			overrides[config.EnvMemberRolePath] = *rolePath
		case "external-id":
			overrides[config.EnvMemberExternalID] = *externalID
		}
	})
	getenv := func(name string) string {
		if v, ok := overrides[name]; ok {
			return v
		}
		return stdio.Getenv(name)
	}
	cfg, err := config.FromEnv(getenv)
	if err != nil {
		return usageErr("configuration: %v", err)
	}
	policy, err := cfg.Policy()
	if err != nil {
		return usageErr("configuration: %v", err)
	}
	log := slog.New(slog.NewTextHandler(stdio.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return fail("loading AWS configuration: %v", err)
	}

	stsClient := sts.NewFromConfig(awsCfg)
	id, err := stsClient.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return fail("finding the caller's account (sts:GetCallerIdentity): %v", err)
	}
	home := aws.ToString(id.Account)
	partition := "aws"
	if a, err := arn.Parse(aws.ToString(id.Arn)); err == nil {
		partition = a.Partition
	}
	accounts, err := chooseAccounts(ctx, *accountsFlag, home, awsCfg, getenv)
	switch {
	case errors.Is(err, errUsage):
		return usageErr("%v", err)
	case err != nil:
		return fail("%v", err)
	}
	if others := slices.DeleteFunc(slices.Clone(accounts), func(a string) bool { return a == home }); len(others) > 0 && cfg.MemberRoleName == "" {
		return usageErr("accounts %s are not the caller's (%s): give --member-role-name (or %s), the role to read them through",
			strings.Join(others, ", "), home, config.EnvMemberRoleName)
	}
	configs := make(map[string]aws.Config, len(accounts))
	for _, account := range accounts {
		if account == home {
			configs[account] = awsCfg
			continue
		}
		c := awsCfg.Copy()
		roleARN := fmt.Sprintf("arn:%s:iam::%s:role%s%s", partition, account, cfg.MemberRolePath, cfg.MemberRoleName)
		c.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, roleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = AuditSessionName
			if cfg.MemberExternalID != "" {
				o.ExternalID = aws.String(cfg.MemberExternalID)
			}
		}))
		configs[account] = c
	}
	var partitions []audit.Partition
	for _, account := range accounts {
		regions, err := chooseRegions(ctx, *regionsFlag, configs[account])
		if err != nil {
			if strings.TrimSpace(*regionsFlag) == "all" {
				return fail("account %s: %v", account, err)
			}
			return usageErr("%v", err)
		}
		for _, r := range regions {
			partitions = append(partitions, audit.Partition{Account: account, Region: r})
		}
	}

	retry := cfg.Retry
	retry.NotFoundAttempts = 1 // a key missing long after its creation is gone, not late
	retryer := awskms.NewRetryer(retry)
	clients := func(_ context.Context, account, region string) (audit.Clients, error) {
		c, ok := configs[account]
		if !ok {
			return audit.Clients{}, fmt.Errorf("account %s is not in the audit", account)
		}
		return audit.Clients{
			KMS: kms.NewFromConfig(c, func(o *kms.Options) {
				o.Region = region
				o.Retryer = retryer
			}),
			CloudTrail: cloudtrail.NewFromConfig(c, func(o *cloudtrail.Options) {
				o.Region = region
				o.Retryer = retryer
			}),
		}, nil
	}
	opts := audit.Options{
		Partitions: partitions,
		Repair:     *repair,
		Parallel:   *parallel,
		LookupRate: *lookupRate,
		TagRate:    *tagRate,
		ReadRate:   *readRate,
	}
	var bar *progressBar
	if f, ok := stdio.Stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		bar = &progressBar{w: stdio.Stderr}
		opts.Progress = bar.update
	}
	a, err := audit.New(policy, clients, log, opts)
	if err != nil {
		return usageErr("%v", err)
	}
	rep, runErr := a.Run(ctx)
	if bar != nil {
		bar.clear()
	}
	if rep == nil {
		return fail("%v", runErr)
	}
	if err := audit.Write(stdio.Stdout, *output, rep, runErr); err != nil {
		return fail("writing the report: %v", err)
	}
	if runErr != nil || !rep.Compliant() {
		return ExitFailure
	}
	return ExitOK
}

// errUsage marks the errors of chooseAccounts that are the user's.
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
		var accounts []string
		for a := range strings.SplitSeq(v, ",") {
			a = strings.TrimSpace(a)
			switch {
			case a == "":
			case len(a) != 12 || strings.Trim(a, "0123456789") != "":
				return nil, &usageError{fmt.Sprintf("--accounts: %q is not a 12-digit account ID", a)}
			case !slices.Contains(accounts, a):
				accounts = append(accounts, a)
			}
		}
		if len(accounts) == 0 {
			return nil, &usageError{fmt.Sprintf("--accounts %q names no account", flagValue)}
		}
		return accounts, nil
	}
}

// progressBar redraws one "\r" bar on a terminal: partitions done of all,
// and keys audited of those listed so far.
type progressBar struct {
	mu    sync.Mutex
	w     io.Writer
	last  time.Time
	width int
}

const barWidth = 30

// update redraws the bar, at most ten times a second and at the end.
func (p *progressBar) update(pr audit.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.last) < 100*time.Millisecond && pr.PartitionsDone < pr.Partitions {
		return
	}
	p.last = time.Now()
	filled := 0
	if pr.Partitions > 0 {
		filled = barWidth * pr.PartitionsDone / pr.Partitions
	}
	line := fmt.Sprintf("audit [%s%s] %d/%d accounts and regions, %d/%d keys",
		strings.Repeat("#", filled), strings.Repeat("-", barWidth-filled), pr.PartitionsDone, pr.Partitions, pr.KeysDone, pr.Keys)
	pad := max(0, p.width-len(line))
	p.width = len(line)
	fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
}

// clear erases the bar.
func (p *progressBar) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.width > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.width))
	}
}
