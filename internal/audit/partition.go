package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/kms-autotagger/kms-autotagger/internal/events"
	"github.com/kms-autotagger/kms-autotagger/internal/history"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
	"github.com/kms-autotagger/kms-autotagger/internal/trailarchive"
)

// run is the state of one Auditor.Run.
type run struct {
	ctx   context.Context
	a     *Auditor
	meter *Meter

	clientsMu sync.Mutex
	clients   map[Partition]*clientsEntry

	mu         sync.Mutex
	partitions []PartitionReport
	rows       []Row
	progress   Progress

	progressMu sync.Mutex
}

// clientsEntry is the clients of one scope, made once.
type clientsEntry struct {
	once sync.Once
	c    Clients
	err  error
}

func newRun(ctx context.Context, a *Auditor) *run {
	return &run{
		ctx:      ctx,
		a:        a,
		meter:    a.meter,
		clients:  make(map[Partition]*clientsEntry),
		progress: Progress{Partitions: len(a.opts.Partitions)},
	}
}

// clientsOf returns the clients of s, made on first use.
func (r *run) clientsOf(s Partition) (Clients, error) {
	r.clientsMu.Lock()
	e, ok := r.clients[s]
	if !ok {
		e = new(clientsEntry)
		r.clients[s] = e
	}
	r.clientsMu.Unlock()
	e.once.Do(func() {
		e.c, e.err = r.a.clients(r.ctx, s.Account, s.Region)
		if e.err == nil && (e.c.KMS == nil || e.c.CloudTrail == nil) {
			e.err = errors.New("no KMS or CloudTrail client")
		}
		if e.err != nil {
			e.err = fmt.Errorf("clients of account %s in %s: %w", s.Account, s.Region, e.err)
		}
	})
	return e.c, e.err
}

// partition audits the keys of p and records its report and rows.
func (r *run) partition(p Partition) {
	if r.ctx.Err() != nil {
		return
	}
	s := p
	start := time.Now()
	rep := PartitionReport{Account: p.Account, Region: p.Region, Statuses: map[Status]int{},
		LookupEventsLimit: r.a.opts.LookupRate, TagWritesLimit: r.a.opts.TagRate}
	var rows []Row
	c, err := r.clientsOf(s)
	if err == nil {
		var keys []string
		keys, err = r.listKeys(s, c)
		r.addProgress(func(pr *Progress) { pr.Keys += len(keys) })
		rows, rep.AWSManagedKeys = r.auditKeys(s, c, keys)
	}
	if err != nil && r.ctx.Err() == nil {
		rep.Error = err.Error()
		r.a.log.Error("audit of a partition failed", slog.String("account", p.Account), slog.String("region", p.Region), slog.String("error", rep.Error))
	}
	rep.Elapsed = time.Since(start)
	rep.ElapsedSeconds = rep.Elapsed.Seconds()
	tally(&rep.Keys, rep.Statuses, &rep.Repaired, &rep.Coverage, &rep.CoverageAfterRepair, rows, r.a.opts.Repair)

	r.mu.Lock()
	r.partitions = append(r.partitions, rep)
	r.rows = append(r.rows, rows...)
	r.mu.Unlock()
	r.addProgress(func(pr *Progress) { pr.PartitionsDone++ })
	r.a.log.Info("partition audited", slog.String("account", p.Account), slog.String("region", p.Region),
		slog.Int("keys", rep.Keys), slog.Any("statuses", rep.Statuses), slog.Duration("elapsed", rep.Elapsed))
}

// listKeys returns the ARNs of every key of s.
func (r *run) listKeys(s Partition, c Clients) ([]string, error) {
	var keys []string
	pages := kms.NewListKeysPaginator(c.KMS, &kms.ListKeysInput{Limit: aws.Int32(1000)})
	for pages.HasMorePages() {
		out, err := pages.NextPage(r.ctx, r.meter.KMS(s, OpListKeys))
		if err != nil {
			return keys, fmt.Errorf("listing the keys of account %s in %s: %w", s.Account, s.Region, err)
		}
		for _, k := range out.Keys {
			if arn := aws.ToString(k.KeyArn); r.a.opts.KeyFilter == nil || r.a.opts.KeyFilter(arn) {
				keys = append(keys, arn)
			}
		}
	}
	return keys, nil
}

// auditKeys audits keys, KeyWorkers at a time, and returns the rows of the
// customer managed ones and the number of AWS managed ones.
func (r *run) auditKeys(s Partition, c Clients, keys []string) (rows []Row, awsManaged int) {
	work := make(chan string)
	var (
		mu      sync.Mutex
		workers sync.WaitGroup
	)
	for range min(r.a.opts.KeyWorkers, len(keys)) {
		workers.Go(func() {
			for arn := range work {
				row, kind := r.key(s, c, arn)
				mu.Lock()
				switch kind {
				case keyRow:
					rows = append(rows, row)
				case keyAWSManaged:
					awsManaged++
				}
				mu.Unlock()
				r.addProgress(func(pr *Progress) { pr.KeysDone++ })
			}
		})
	}
	for _, arn := range keys {
		if r.ctx.Err() != nil {
			break
		}
		work <- arn
	}
	close(work)
	workers.Wait()
	return rows, awsManaged
}

// keyKind says what became of a key ListKeys gave.
type keyKind int

const (
	keyRow        keyKind = iota // audited: a row
	keyAWSManaged                // AWS managed: left out
	keyNone                      // gone since ListKeys, or the run cancelled
)

// key audits one key and, with Options.Repair, repairs it.
func (r *run) key(s Partition, c Clients, keyARN string) (row Row, kind keyKind) {
	row = Row{Account: s.Account, Region: s.Region, KeyARN: keyARN, KeyID: keyARN[strings.LastIndex(keyARN, "/")+1:]}
	described, err := c.KMS.DescribeKey(r.ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyARN)}, r.meter.KMS(s, OpDescribeKey))
	if err != nil {
		if r.ctx.Err() != nil {
			return row, keyNone
		}
		if _, code := tagger.Classify(err); code == tagger.CodeNotFound {
			r.a.log.Debug("key gone since ListKeys", slog.String("key_arn", keyARN))
			return row, keyNone
		}
		return r.failed(row, fmt.Errorf("describing key %s: %w", keyARN, err)), keyRow
	}
	md := described.KeyMetadata
	if md == nil {
		return r.failed(row, fmt.Errorf("describing key %s: no key metadata", keyARN)), keyRow
	}
	if md.KeyManager != kmstypes.KeyManagerTypeCustomer {
		return row, keyAWSManaged
	}
	row.KeyState = string(md.KeyState)
	row.CreationDate = aws.ToTime(md.CreationDate).UTC()
	if md.KeyState == kmstypes.KeyStatePendingDeletion || md.KeyState == kmstypes.KeyStatePendingReplicaDeletion {
		row.Status = StatusPendingDeletion
		row.DeletionDate = aws.ToTime(md.DeletionDate).UTC()
		row.Reason = "the key is " + string(md.KeyState)
		if !row.DeletionDate.IsZero() {
			row.Reason += ", to be deleted " + row.DeletionDate.Format(time.RFC3339)
		}
		return row, keyRow
	}
	// The creation event first: the lookups bound a partition's time, and
	// the first of them need not wait for the tags' reads.
	ev, why, err := r.findCreation(s, c, keyARN, described)
	if err != nil {
		if r.ctx.Err() != nil {
			return row, keyNone
		}
		return r.failed(row, err), keyRow
	}
	current, err := r.listTags(s, c, keyARN)
	if err != nil {
		if r.ctx.Err() != nil {
			return row, keyNone
		}
		return r.failed(row, err), keyRow
	}
	if ev == nil {
		row.Status, row.Reason = StatusUnattributable, why
		for _, t := range current {
			if r.a.policy.Owns(t.Key) && !r.a.policy.Exact(t.Key) {
				row.Forged = append(row.Forged, t)
			}
		}
		if len(row.Forged) > 0 {
			row.Reason += fmt.Sprintf("; it carries case variants of governance tags, forgeries whatever its creation: %s", tagKeys(row.Forged))
		}
		if r.a.opts.Repair {
			row.Action = ActionNotRepaired
			row.Reason += "; not repaired: governance tags are derived only from CloudTrail's record of the key's creation (its event history, or the trail's archive with --trail-bucket)"
		}
		return row, keyRow
	}
	row.EventID, row.EventName, row.EventTime, row.Evidence = ev.EventID, ev.EventName, ev.EventTime.UTC(), ev.Evidence
	// The policy's own plan, with the stack lookups of a key CloudFormation
	// made, as the handler plans it.
	var in tagger.PlanInput
	if stack, operator := r.a.policy.StackLookup(ev); stack && r.a.opts.Stacks != nil {
		in.Stack = r.a.opts.Stacks.FindStack(r.ctx, ev, operator)
	}
	plan := r.a.policy.PlanWith(ev, current, in)
	r.judge(&row, plan, current)
	if r.a.opts.Repair && row.Status != StatusCompliant {
		r.repair(s, c, &row, plan)
	}
	return row, keyRow
}

// judge sets the row's status and findings from the policy's plan for the
// key's creation event against its tags.
func (r *run) judge(row *Row, plan tagger.Plan, current []tagger.Tag) {
	carried := make(map[string]string, len(current))
	for _, t := range current {
		if _, seen := carried[t.Key]; !seen {
			carried[t.Key] = t.Value
		}
	}
	row.Expected = plan.Tags
	for _, t := range plan.Write {
		if v, ok := carried[t.Key]; ok {
			row.Wrong = append(row.Wrong, Mismatch{Key: t.Key, Value: v, Want: t.Value})
		} else {
			row.Missing = append(row.Missing, t)
		}
	}
	var variants, untrue []string
	for _, k := range plan.Remove {
		row.Forged = append(row.Forged, tagger.Tag{Key: k, Value: carried[k]})
		if r.a.policy.Exact(k) {
			untrue = append(untrue, k)
		} else {
			variants = append(variants, k)
		}
	}
	row.Dropped = plan.Dropped
	var why []string
	if len(variants) > 0 {
		why = append(why, "case variants of governance tags: "+strings.Join(variants, ", "))
	}
	if len(untrue) > 0 {
		why = append(why, "governance tags with no true value for this key: "+strings.Join(untrue, ", "))
	}
	if len(row.Wrong) > 0 {
		keys := make([]string, len(row.Wrong))
		for i, m := range row.Wrong {
			keys[i] = m.Key
		}
		why = append(why, "wrong values of "+strings.Join(keys, ", "))
	}
	if len(row.Missing) > 0 {
		why = append(why, "missing "+tagKeys(row.Missing))
	}
	if len(row.Dropped) > 0 {
		why = append(why, fmt.Sprintf("no room within %d tags for %s", tagger.MaxTagsPerKey, tagKeys(row.Dropped)))
	}
	switch {
	case len(row.Forged) > 0:
		row.Status = StatusForged
	case len(row.Wrong) > 0:
		row.Status = StatusWrong
	case len(row.Missing) > 0 || len(row.Dropped) > 0:
		row.Status = StatusMissing
	default:
		row.Status = StatusCompliant
	}
	if len(why) > 0 {
		row.Reason = strings.Join(why, "; ") + fmt.Sprintf(" (against %s %s)", row.EventName, row.EventID)
	}
}

// repair makes the key carry exactly its governance tags, as the handler
// does: UntagResource of the owned keys that must go, then TagResource of
// the tags missing or wrong.
func (r *run) repair(s Partition, c Clients, row *Row, plan tagger.Plan) {
	if plan.NoOp() {
		row.Action = ActionNotRepaired
		row.Reason += "; not repaired: the key has no room for its governance tags"
		return
	}
	if len(plan.Remove) > 0 {
		in := &kms.UntagResourceInput{KeyId: aws.String(row.KeyARN), TagKeys: plan.Remove}
		if _, err := c.KMS.UntagResource(r.ctx, in, r.meter.KMS(s, OpUntagResource)); err != nil {
			r.repairFailed(row, fmt.Errorf("removing tags %v from key %s: %w", plan.Remove, row.KeyARN, err))
			return
		}
		row.Removed = plan.Remove
	}
	if len(plan.Write) > 0 {
		in := &kms.TagResourceInput{KeyId: aws.String(row.KeyARN), Tags: make([]kmstypes.Tag, len(plan.Write))}
		for i, t := range plan.Write {
			in.Tags[i] = kmstypes.Tag{TagKey: aws.String(t.Key), TagValue: aws.String(t.Value)}
		}
		if _, err := c.KMS.TagResource(r.ctx, in, r.meter.KMS(s, OpTagResource)); err != nil {
			r.repairFailed(row, fmt.Errorf("tagging key %s: %w", row.KeyARN, err))
			return
		}
		row.Written = plan.Write
	}
	row.Action = ActionRepaired
}

func (r *run) repairFailed(row *Row, err error) {
	_, row.ErrorCode = tagger.Classify(err)
	row.Action = ActionRepairFailed
	row.Reason += "; repair failed: " + err.Error()
	r.a.log.Warn("repair failed", slog.String("key_arn", row.KeyARN), slog.String("error", err.Error()))
}

// failed makes row a failed one.
func (r *run) failed(row Row, err error) Row {
	row.Status = StatusFailed
	_, row.ErrorCode = tagger.Classify(err)
	row.Reason = err.Error()
	if r.a.opts.Repair {
		row.Action = ActionNotRepaired
	}
	r.a.log.Warn("key not audited", slog.String("key_arn", row.KeyARN), slog.String("error", row.Reason))
	return row
}

// listTags returns every tag of a key.
func (r *run) listTags(s Partition, c Clients, keyARN string) ([]tagger.Tag, error) {
	var tags []tagger.Tag
	pages := kms.NewListResourceTagsPaginator(c.KMS, &kms.ListResourceTagsInput{KeyId: aws.String(keyARN), Limit: aws.Int32(50)})
	for pages.HasMorePages() {
		out, err := pages.NextPage(r.ctx, r.meter.KMS(s, OpListResourceTags))
		if err != nil {
			return nil, fmt.Errorf("listing the tags of key %s: %w", keyARN, err)
		}
		for _, t := range out.Tags {
			tags = append(tags, tagger.Tag{Key: aws.ToString(t.TagKey), Value: aws.ToString(t.TagValue)})
		}
	}
	return tags, nil
}

// findCreation returns the key's creation event from CloudTrail's event
// history, or nil and why there is none; an error when the history could
// not be read. It searches as the tamper repair does (history.Finder: the
// key's events around its CreationDate, and for a replica the ReplicateKey
// in its primary's region), every LookupEvents within its account and
// region's bucket, and checks the event against the key as the handler
// does before its first write.
func (r *run) findCreation(s Partition, c Clients, keyARN string, described *kms.DescribeKeyOutput) (*events.KeyEvent, string, error) {
	md := described.KeyMetadata
	created := aws.ToTime(md.CreationDate)
	now := r.a.opts.Now()
	if !created.IsZero() && created.Before(now.Add(-MaxHistory-history.Window)) {
		return r.fromArchive(s, keyARN, md, fmt.Sprintf("created %s, before the 90 days CloudTrail's event history holds: no creation event to check its governance tags against",
			created.UTC().Format(time.RFC3339)))
	}
	finder := &history.Finder{
		Lookup: func(region string) history.LookupAPI {
			rs := Partition{Account: s.Account, Region: region}
			trail := c.CloudTrail
			if region != s.Region {
				other, err := r.clientsOf(rs)
				if err != nil {
					return failingTrail{err}
				}
				trail = other.CloudTrail
			}
			return meteredTrail{next: trail, opt: r.meter.CloudTrail(rs, OpLookupEvents)}
		},
		// The key is described already: the finder gets that answer.
		Describe: func(string) history.DescribeAPI { return describedKey{described} },
	}
	ev, err := finder.FindCreation(r.ctx, keyARN)
	switch {
	case errors.Is(err, tagger.ErrNoCreationEvent):
		why := fmt.Sprintf("no %s event of the key in CloudTrail's event history", strings.Join(events.CreationEventNames(), " or "))
		if !created.IsZero() {
			why += fmt.Sprintf(" around its creation (%s)", created.UTC().Format(time.RFC3339))
			if now.Sub(created) < tagger.YoungKeyAge {
				why += fmt.Sprintf("; the key is %s old and the history lags by minutes: audit it again later", now.Sub(created).Round(time.Second))
				return nil, why, nil // nor is its log file in the archive yet
			}
		}
		return r.fromArchive(s, keyARN, md, why)
	case err != nil:
		return nil, "", err
	}
	if why := contradicts(ev, md); why != "" {
		return nil, fmt.Sprintf("the %s event %s CloudTrail's history holds for the key contradicts it: %s", ev.EventName, ev.EventID, why), nil
	}
	return ev, "", nil
}

// fromArchive returns the key's creation record from the trail archive
// (Options.Archive) when the event history has none (why says so), or nil
// and why it has none either; an error when the archive could not be read.
// The record is checked against the key as the history's is.
func (r *run) fromArchive(s Partition, keyARN string, md *kmstypes.KeyMetadata, why string) (*events.KeyEvent, string, error) {
	if r.a.opts.Archive == nil {
		return nil, why, nil
	}
	q := trailarchive.Query{KeyARN: keyARN, Created: aws.ToTime(md.CreationDate)}
	if mr := md.MultiRegionConfiguration; mr != nil && mr.MultiRegionKeyType == kmstypes.MultiRegionKeyTypeReplica && mr.PrimaryKey != nil {
		q.PrimaryARN = aws.ToString(mr.PrimaryKey.Arn)
	}
	ev, err := r.a.opts.Archive.FindCreation(r.ctx, q, r.meter.S3(s))
	var conflict *trailarchive.ConflictError
	switch {
	case errors.Is(err, trailarchive.ErrNotFound), errors.As(err, &conflict):
		return nil, why + "; " + err.Error(), nil
	case err != nil:
		return nil, "", err
	}
	if bad := contradicts(ev, md); bad != "" {
		return nil, fmt.Sprintf("%s; the %s record %s in the trail archive contradicts the key: %s", why, ev.EventName, ev.EventID, bad), nil
	}
	return ev, "", nil
}

// contradicts checks an event against what KMS says of its key with the
// handler's own key check (tagger.CheckKey): the CreationDate within
// tagger.CreationTolerance of the event, and the key of a ReplicateKey a
// replica of the event's primary.
func contradicts(ev *events.KeyEvent, md *kmstypes.KeyMetadata) string {
	skip, err := tagger.CheckKey(ev, md)
	switch {
	case err != nil:
		return err.Error()
	case skip != "":
		return skip
	}
	return ""
}

// describedKey answers the finder's DescribeKey with the answer the audit
// already has.
type describedKey struct{ out *kms.DescribeKeyOutput }

func (d describedKey) DescribeKey(context.Context, *kms.DescribeKeyInput, ...func(*kms.Options)) (*kms.DescribeKeyOutput, error) {
	return d.out, nil
}

// failingTrail is the LookupAPI of a region whose clients could not be made.
type failingTrail struct{ err error }

func (f failingTrail) LookupEvents(context.Context, *cloudtrail.LookupEventsInput, ...func(*cloudtrail.Options)) (*cloudtrail.LookupEventsOutput, error) {
	return nil, f.err
}

// addProgress changes the progress and reports it.
func (r *run) addProgress(change func(*Progress)) {
	r.mu.Lock()
	change(&r.progress)
	p := r.progress
	r.mu.Unlock()
	if r.a.opts.Progress == nil {
		return
	}
	r.progressMu.Lock()
	defer r.progressMu.Unlock()
	r.a.opts.Progress(p)
}

// report builds the report of the run.
func (r *run) report(took time.Duration) *Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := &Report{Partitions: slices.Clone(r.partitions), Keys: slices.Clone(r.rows)}
	slices.SortFunc(rep.Partitions, func(a, b PartitionReport) int {
		return strings.Compare(a.Account+"/"+a.Region, b.Account+"/"+b.Region)
	})
	slices.SortFunc(rep.Keys, func(a, b Row) int {
		return strings.Compare(a.Account+"/"+a.Region+"/"+a.KeyARN, b.Account+"/"+b.Region+"/"+b.KeyARN)
	})
	s := &rep.Summary
	s.Partitions, s.Repair, s.Parallel = len(r.a.opts.Partitions), r.a.opts.Repair, r.a.opts.Parallel
	s.LookupEventsLimit, s.TagWritesLimit, s.ReadLimit = r.a.opts.LookupRate, r.a.opts.TagRate, r.a.opts.ReadRate
	s.Statuses = map[Status]int{}
	for _, p := range r.a.opts.Partitions {
		if !slices.Contains(s.Accounts, p.Account) {
			s.Accounts = append(s.Accounts, p.Account)
		}
		if !slices.Contains(s.Regions, p.Region) {
			s.Regions = append(s.Regions, p.Region)
		}
	}
	slices.Sort(s.Accounts)
	slices.Sort(s.Regions)
	tally(&s.Keys, s.Statuses, &s.Repaired, &s.Coverage, &s.CoverageAfterRepair, rep.Keys, r.a.opts.Repair)
	for _, row := range rep.Keys {
		if !row.Compliant() {
			s.NonCompliant++
		}
		if row.Status == StatusUnattributable {
			s.Unattributable = append(s.Unattributable, row.KeyARN)
		}
		if row.Evidence == tagger.EvidenceTrailArchive {
			s.FromArchive++
		}
	}
	for i := range rep.Partitions {
		// The requests of the partition's account and region are counted
		// at the end: the partition of a replica's region looks up its
		// ReplicateKey in the primary's, maybe after that one finished.
		p := &rep.Partitions[i]
		u := r.meter.Usage(Partition{Account: p.Account, Region: p.Region})
		p.Requests = u.Requests
		p.LookupEvents, p.LookupEventsPerSecond = u.LookupEvents, u.LookupEventsPerSecond
		p.TagWrites, p.TagWritesPerSecond = u.TagWrites, u.TagWritesPerSecond
		p.BoundSeconds = u.Bound.Seconds()
		s.SlowestBoundSeconds = max(s.SlowestBoundSeconds, p.BoundSeconds)
		s.AWSManagedKeys += p.AWSManagedKeys
		s.SlowestPartitionSeconds = max(s.SlowestPartitionSeconds, p.ElapsedSeconds)
		s.SumPartitionSeconds += p.ElapsedSeconds
		if p.Error != "" {
			s.Errors = append(s.Errors, p.Error)
		}
	}
	s.Elapsed = took
	s.ElapsedSeconds = took.Seconds()
	s.Interrupted = r.ctx.Err() != nil
	if s.Interrupted {
		for _, p := range r.a.opts.Partitions {
			if !slices.ContainsFunc(rep.Partitions, func(pr PartitionReport) bool { return pr.Account == p.Account && pr.Region == p.Region }) {
				s.Errors = append(s.Errors, fmt.Sprintf("account %s in %s not audited: interrupted", p.Account, p.Region))
			}
		}
	}
	return rep
}

// tally counts rows into a report's figures.
func tally(keys *int, statuses map[Status]int, repaired *int, coverage, after **float64, rows []Row, repair bool) {
	live, compliant, fixed := 0, 0, 0
	for _, row := range rows {
		statuses[row.Status]++
		if row.Action == ActionRepaired {
			*repaired++
		}
		if row.Status == StatusPendingDeletion {
			continue
		}
		live++
		switch {
		case row.Status == StatusCompliant:
			compliant++
		case row.Compliant():
			fixed++
		}
	}
	*keys = len(rows)
	*coverage = percent(compliant, live)
	if repair {
		*after = percent(compliant+fixed, live)
	}
}

// tagKeys lists the keys of tags, comma separated.
func tagKeys(tags []tagger.Tag) string {
	keys := make([]string, len(tags))
	for i, t := range tags {
		keys[i] = t.Key
	}
	return strings.Join(keys, ", ")
}
