package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/kms-autotagger/kms-autotagger/internal/audit"
	"github.com/kms-autotagger/kms-autotagger/internal/awscfn"
	"github.com/kms-autotagger/kms-autotagger/internal/awskms"
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
	sf := addScopeFlags(fs, "audit", stdio.Getenv)
	output := fs.String("output", audit.FormatTable, "`FORMAT` of the report: table, json (one JSON document) or csv (one line per key)")
	repair := fs.Bool("repair", false, "repair what is not compliant, from CloudTrail's record of the key's creation (its event history, or the trail archive with --trail-bucket; never from nothing): remove the owned tags that must go, write those missing or wrong")
	parallel := fs.Int("parallel", audit.DefaultParallel, "most accounts-and-regions audited at once")
	rates := addRateFlags(fs, audit.DefaultLookupRate, audit.DefaultTagRate, audit.DefaultReadRate)
	fs.Usage = func() {
		fmt.Fprintf(stdio.Stderr, "usage: autotagger audit [--accounts 111122223333,444455556666|org] [--regions us-east-1,eu-west-1|all]\n"+
			"                        [--member-role-name NAME] [--member-role-path /PATH/] [--external-id ID]\n"+
			"                        [--trail-bucket BUCKET [--trail-prefix PREFIX]]\n"+
			"                        [--output table|json|csv] [--repair] [--parallel %d]\n"+
			"                        [--lookup-rate %g] [--tag-rate %g] [--read-rate %g]\n\n"+
			"Audits the governance tags of every customer managed KMS key in each account and region\n"+
			"against what kms-autotagger would have written, with the same settings: it lists the keys\n"+
			"(AWS managed keys left out), reads their tags, finds each key's creation event in CloudTrail's\n"+
			"event history (the last 90 days; with --trail-bucket, for older keys, the organization trail's\n"+
			"log files in S3) and says per key one status:\n\n"+
			"  compliant         exactly its governance tags\n"+
			"  missing           governance tags missing\n"+
			"  wrong             governance tags with wrong values\n"+
			"  forged            case variants of governance tags, or governance tags with no true value\n"+
			"  unattributable    no creation record (event history, trail archive): cannot be checked nor repaired\n"+
			"  pending-deletion  not checked, not counted\n"+
			"  failed            could not be read\n\n"+
			"The report has a table per account and region with the coverage (compliant keys among the\n"+
			"customer managed keys not pending deletion) and a line per key, whose evidence says where its\n"+
			"creation record was found (history, trail-archive). With --repair the keys with a creation\n"+
			"record are repaired (action repaired); unattributable keys never are.\n\n"+
			"Other accounts are read through the member role (sts:AssumeRole). Each account and region\n"+
			"runs within its own rate limits, --parallel at once, so a run takes about as long as the\n"+
			"slowest account and region. The defaults: LookupEvents at CloudTrail's quota (2 per second per\n"+
			"account and region), one per key, which bounds the run; TagResource and UntagResource at 5 per\n"+
			"second, half of KMS's TagResource quota of 10 (UntagResource's is 5), since the live tagger\n"+
			"needs no more than KMS's CreateKey quota of 5 per second; the reads at 50 per second, half of the\n"+
			"smallest read quota KMS ever documented (ListKeys' 100) and a fortieth of DescribeKey's 2000;\n"+
			"the trail archive's S3 reads at 50 per second. The lookups take all of CloudTrail's quota: run\n"+
			"the audit when the live tagger's tamper repair is quiet, or give --lookup-rate 1 (the sweep's).\n\n"+
			"The report goes to stdout; logs (and a progress bar on a terminal) to stderr. Exits 0 when every\n"+
			"key is compliant (keys pending deletion do not count), 1 when one is not (after the repair,\n"+
			"with --repair) or an account or region could not be read, 2 for a usage error.\n\n"+
			"Needs, in every account: kms:ListKeys, kms:DescribeKey, kms:ListResourceTags,\n"+
			"cloudtrail:LookupEvents, account:ListRegions for --regions all, and for --repair kms:TagResource\n"+
			"and kms:UntagResource; organizations:ListAccounts for --accounts org; sts:AssumeRole of the\n"+
			"member role for other accounts; s3:ListBucket and s3:GetObject on the trail bucket (with the\n"+
			"caller's credentials) for --trail-bucket.\n\n",
			audit.DefaultParallel, audit.DefaultLookupRate, audit.DefaultTagRate, audit.DefaultReadRate)
		fs.PrintDefaults()
		fmt.Fprint(stdio.Stderr, scopeSettingsHelp())
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
	if err := rates.check(); err != nil {
		return usageErr("%v", err)
	}
	st, err := sf.setup(ctx, fs, stdio, AuditSessionName)
	switch {
	case errors.Is(err, errUsage):
		return usageErr("%v", err)
	case err != nil:
		return fail("%v", err)
	}
	cfg, sc := st.cfg, st.scope
	retry := cfg.Retry
	retry.NotFoundAttempts = 1 // a key missing long after its creation is gone, not late
	opts := audit.Options{
		Partitions: sc.partitions,
		Repair:     *repair,
		Parallel:   *parallel,
		LookupRate: *rates.lookup,
		TagRate:    *rates.tag,
		ReadRate:   *rates.read,
	}
	if sc.archive != nil {
		opts.Archive = sc.archive
	}
	// CreatedByStack and CreatedByUser of keys CloudFormation made, found as
	// the handler finds them, in each key's account and region.
	opts.Stacks = awscfn.New(sc.accounts, awscfn.Options{Retry: retry, RateLimit: cfg.StackLookupRateLimit})
	clients := sc.accounts.Clients(awskms.NewRetryer(retry))
	var bar *progressBar
	if f, ok := stdio.Stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		bar = &progressBar{w: stdio.Stderr}
		opts.Progress = bar.update
	}
	a, err := audit.New(st.policy, clients, st.log, opts)
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
