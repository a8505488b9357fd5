package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/kms-autotagger/kms-autotagger/internal/awscfn"
	"github.com/kms-autotagger/kms-autotagger/internal/backfill"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// Output formats of backfill.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// BackfillSessionName is the RoleSessionName of the backfill's sessions in
// member accounts; it shows in their CloudTrail records.
const BackfillSessionName = "kms-autotagger-backfill"

// runBackfill tags the keys created before the Lambda was deployed, from
// CloudTrail event history, with the Lambda's configuration.
func runBackfill(ctx context.Context, args []string, stdio IO) int {
	fs := flag.NewFlagSet("backfill", flag.ContinueOnError)
	fs.SetOutput(stdio.Stderr)
	sf := addScopeFlags(fs, "backfill", stdio.Getenv)
	sinceFlag := fs.String("since", "", "look up events since `WHEN`: a duration back from now (720h) or a date (2024-01-02, or RFC 3339); default and earliest 90 days ago, all the event history holds")
	dryRun := fs.Bool("dry-run", false, "print the plan (key, region, tags to add or change) and change nothing")
	tagUnknown := fs.Bool("tag-unknown", false, "give customer managed keys without a creation record (event history, trail archive) only the CreatedAt tag, from the key's creation date")
	output := fs.String("output", outputTable, "`FORMAT` of the report: table (readable) or json (one JSON document)")
	parallel := fs.Int("parallel", backfill.DefaultParallel, "most accounts backfilled at once, each with all its regions at once")
	rates := addRateFlags(fs, backfill.DefaultLookupRate, backfill.DefaultTagRate, backfill.DefaultReadRate)
	fs.Usage = func() {
		fmt.Fprintf(stdio.Stderr, "usage: autotagger backfill [--accounts 111122223333,444455556666|org] [--regions us-east-1,eu-west-1|all]\n"+
			"                           [--member-role-name NAME] [--member-role-path /PATH/] [--external-id ID]\n"+
			"                           [--trail-bucket BUCKET [--trail-prefix PREFIX]] [--since 720h|2024-01-02] [--dry-run]\n"+
			"                           [--tag-unknown] [--output table|json] [--parallel %d] [--lookup-rate %g] [--tag-rate %g] [--read-rate %g]\n\n"+
			"Tags the KMS keys created before kms-autotagger was deployed. It looks up the CreateKey and\n"+
			"ReplicateKey events of CloudTrail event history (the last 90 days) in each account and region\n"+
			"and tags each key exactly as the Lambda would have, with the same settings. Keys that already\n"+
			"carry the tags are left alone, so it is safe to interrupt and run again. It then lists each\n"+
			"region's keys: those without a creation event in the history are looked up in the organization\n"+
			"trail's log files with --trail-bucket (older keys), tagged from their record there when it holds\n"+
			"one that KMS confirms, and reported otherwise (or given CreatedAt alone with --tag-unknown).\n\n"+
			"Other accounts are reached through the member role (sts:AssumeRole). Every account and region\n"+
			"keeps to its own rate limits (the audit's), --parallel accounts at once with all their regions,\n"+
			"so a run takes about as long as the slowest account and region. The defaults leave room for the\n"+
			"live tagger: TagResource and UntagResource together at 5 per second, half of KMS's TagResource\n"+
			"quota; LookupEvents at CloudTrail's 2 per second, two requests per region here; the reads at\n"+
			"%g per second, twice what the writes need (a key is described and its tags read before its write).\n\n"+
			"The report goes to stdout; logs (and a progress line on a terminal) to stderr. Exits 1 when\n"+
			"a key failed, an account or region could not be read or the run was interrupted.\n\n"+
			"Needs, in every account: cloudtrail:LookupEvents, kms:ListKeys, kms:DescribeKey,\n"+
			"kms:ListResourceTags, kms:TagResource, kms:UntagResource, and account:ListRegions for --regions\n"+
			"all; organizations:ListAccounts for --accounts org; sts:AssumeRole of the member role for other\n"+
			"accounts; s3:ListBucket and s3:GetObject on the trail bucket for --trail-bucket.\n\n",
			backfill.DefaultParallel, backfill.DefaultLookupRate, backfill.DefaultTagRate, backfill.DefaultReadRate, backfill.DefaultReadRate)
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
		fmt.Fprintf(stdio.Stderr, "autotagger backfill: "+format+"\n", a...)
		return ExitUsage
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if *output != outputTable && *output != outputJSON {
		return usageErr("--output %q is not table or json", *output)
	}
	since, err := parseSince(*sinceFlag, time.Now())
	if err != nil {
		return usageErr("--since: %v", err)
	}
	if *parallel < 1 {
		return usageErr("--parallel %d: at least one account at a time", *parallel)
	}
	if err := rates.check(); err != nil {
		return usageErr("%v", err)
	}
	st, err := sf.setup(ctx, fs, stdio, BackfillSessionName)
	switch {
	case errors.Is(err, errUsage):
		return usageErr("%v", err)
	case err != nil:
		fmt.Fprintf(stdio.Stderr, "autotagger backfill: %v\n", err)
		return ExitFailure
	}
	cfg, sc := st.cfg, st.scope
	createdAt := ""
	if cfg.Names.CreatedAt != "" {
		createdAt = cfg.TagKeyPrefix + cfg.Names.CreatedAt
	}
	evidence := ""
	if cfg.Names.Evidence != "" {
		evidence = cfg.TagKeyPrefix + cfg.Names.Evidence
	}
	opts := backfill.Options{
		Accounts:       sc.ids,
		Regions:        sc.regions[sc.ids[0]],
		AccountRegions: sc.regions,
		Parallel:       *parallel,
		ReadRate:       *rates.read,
		Since:          since,
		DryRun:         *dryRun,
		TagUnknown:     *tagUnknown,
		CreatedAtKey:   createdAt,
		EvidenceKey:    evidence,
		LookupRate:     *rates.lookup,
		TagRate:        *rates.tag,
	}
	if sc.archive != nil {
		opts.Archive = sc.archive
	}
	// CreatedByStack and CreatedByUser of keys CloudFormation made, found as
	// the handler finds them, in each key's account and region.
	opts.Stacks = awscfn.New(sc.accounts, awscfn.Options{Retry: cfg.Retry, RateLimit: cfg.StackLookupRateLimit})
	var progress *progressLine
	if f, ok := stdio.Stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		progress = &progressLine{w: stdio.Stderr}
		opts.Progress = progress.update
	}
	b, err := backfill.New(st.policy, backfill.NewClients(sc.accounts.Config, cfg.Retry), st.log, opts)
	if err != nil {
		return usageErr("%v", err)
	}
	rep, runErr := b.Run(ctx)
	if progress != nil {
		progress.clear()
	}
	if rep == nil {
		fmt.Fprintf(stdio.Stderr, "autotagger backfill: %v\n", runErr)
		return ExitFailure
	}
	if *output == outputJSON {
		err = writeBackfillJSON(stdio.Stdout, rep, runErr)
	} else {
		err = writeBackfillTable(stdio.Stdout, rep, runErr)
	}
	if err != nil {
		fmt.Fprintf(stdio.Stderr, "autotagger backfill: writing the report: %v\n", err)
		return ExitFailure
	}
	if runErr != nil || rep.Summary.Actions[backfill.ActionFailed] > 0 {
		return ExitFailure
	}
	return ExitOK
}

// parseSince reads --since: empty (the backfill's default), a duration back
// from now, a date (midnight UTC) or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("%q is not a positive duration", s)
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.DateOnly, time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			if !t.Before(now) {
				return time.Time{}, fmt.Errorf("%s is not in the past", s)
			}
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is neither a duration such as 720h nor a date such as 2024-01-02", s)
}

// writeBackfillJSON writes the report, and the run's error if any, as one
// JSON document.
func writeBackfillJSON(w io.Writer, rep *backfill.Report, runErr error) error {
	doc := struct {
		*backfill.Report
		Error string `json:"error,omitempty"`
	}{Report: rep}
	if runErr != nil {
		doc.Error = runErr.Error()
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// writeBackfillTable writes one line per key and a summary.
func writeBackfillTable(w io.Writer, rep *backfill.Report, runErr error) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tREGION\tKEY\tACTION\tEVENT\tTAGS\tREASON")
	for _, r := range rep.Rows {
		key := r.KeyARN
		if i := strings.LastIndex(key, "/"); i >= 0 {
			key = key[i+1:]
		}
		if key == "" {
			key = "-"
		}
		event := "-"
		if r.EventID != "" {
			event = r.EventName + " " + r.EventID
			if r.Evidence == tagger.EvidenceTrailArchive {
				event += " (trail archive)"
			}
		}
		reason := r.Reason
		if r.ErrorCode != "" {
			reason = r.ErrorCode + " (" + r.ErrorClass + "): " + reason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Account, r.Region, key, r.Action, event, formatTags(r.Tags, r.Previous), oneLine(reason))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rep.Partitions) > 1 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ACCOUNT\tREGION\tKEYS\tELAPSED\tBOUND\tLOOKUPS/S\tTAG WRITES/S\tREADS/S")
		for _, p := range rep.Partitions {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.2fs\t%.2fs\t%.2f\t%.2f\t%.2f\n", p.Account, p.Region, p.Keys, p.ElapsedSeconds, p.BoundSeconds,
				p.LookupEventsPerSecond, p.TagWritesPerSecond, p.ReadsPerSecond)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	s := rep.Summary
	var b strings.Builder
	fmt.Fprintf(&b, "\n%d keys", s.Keys)
	sep := ": "
	for _, a := range backfill.Actions {
		if n := s.Actions[a]; n > 0 {
			fmt.Fprintf(&b, "%s%d %s", sep, n, a)
			sep = ", "
		}
	}
	fmt.Fprintf(&b, ".\n%d creation events in %d accounts and %s from %s to %s (%d failed calls ignored, %d older events superseded); %d keys without one",
		s.Events, len(s.Accounts), strings.Join(s.Regions, ", "), s.Since.Format(time.RFC3339), s.Until.Format(time.RFC3339), s.IgnoredEvents, s.SupersededEvents, s.NoCreationEvent)
	if s.FromArchive > 0 {
		fmt.Fprintf(&b, ", %d of them found in the trail archive", s.FromArchive)
	}
	b.WriteString(".\n")
	ops := make([]string, 0, len(s.Requests))
	for op, n := range s.Requests {
		ops = append(ops, fmt.Sprintf("%s %d", op, n))
	}
	slices.Sort(ops)
	fmt.Fprintf(&b, "Took %s, up to %d accounts at once (the slowest account and region %.2fs, its rate limits' bound %.2fs); requests: %s.\n",
		s.Duration.Round(time.Millisecond), min(s.Parallel, len(s.Accounts)), s.SlowestPartitionSeconds, s.SlowestBoundSeconds, strings.Join(ops, ", "))
	if s.DryRun {
		b.WriteString("Dry run: nothing was changed.\n")
	}
	for _, e := range s.Errors {
		fmt.Fprintf(&b, "Error: %s\n", e)
	}
	if s.Interrupted {
		b.WriteString("Interrupted: the rows are what was done; run again to finish.\n")
	} else if runErr != nil && len(s.Errors) == 0 {
		fmt.Fprintf(&b, "Error: %v\n", runErr)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// formatTags shows tags as k=v, with the value each replaces.
func formatTags(tags, previous []tagger.Tag) string {
	if len(tags) == 0 {
		return "-"
	}
	was := make(map[string]string, len(previous))
	for _, t := range previous {
		was[t.Key] = t.Value
	}
	parts := make([]string, len(tags))
	for i, t := range tags {
		parts[i] = t.Key + "=" + t.Value
		if old, ok := was[t.Key]; ok {
			parts[i] += " (was " + old + ")"
		}
	}
	return strings.Join(parts, ", ")
}

// oneLine keeps a reason on one table line.
func oneLine(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Join(strings.Fields(s), " ")
}

// progressLine redraws one "\r" status line on a terminal. A bar needs a
// total, which a backfill does not know while it is still paging through
// events, so a counter says as much and needs no library.
type progressLine struct {
	mu    sync.Mutex
	w     io.Writer
	last  time.Time
	width int
}

// update redraws the line, at most ten times a second.
func (p *progressLine) update(pr backfill.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	line := fmt.Sprintf("backfill: %d events, %d keys done (%d tagged, %d would-tag, %d up-to-date, %d failed)",
		pr.Events, pr.Keys, pr.Actions[backfill.ActionTagged], pr.Actions[backfill.ActionWouldTag], pr.Actions[backfill.ActionUpToDate], pr.Actions[backfill.ActionFailed])
	pad := max(0, p.width-len(line))
	p.width = len(line)
	fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
}

// clear erases the line.
func (p *progressLine) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.width > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.width))
	}
}
