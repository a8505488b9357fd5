package backfill

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/kms-autotagger/kms-autotagger/internal/events"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// jobKind says where a job comes from.
type jobKind int

const (
	// jobEvent is a key named by a creation event.
	jobEvent jobKind = iota + 1
	// jobUnknown is a key ListKeys found without a creation event.
	jobUnknown
)

// job is one key to handle.
type job struct {
	kind   jobKind
	region string // the key's region
	keyARN string
	// For jobEvent: the decoded event, and whether the decoder said skip
	// (with its reason).
	key    *events.KeyEvent
	skip   bool
	reason string
}

// better reports whether j should replace cur as the event a key's tags
// come from: an event to tag wins over one to skip, then the newest wins.
func (j *job) better(cur *job) bool {
	if j.skip != cur.skip {
		return !j.skip
	}
	return j.key.EventTime.After(cur.key.EventTime)
}

// run is the state of one Backfiller.Run.
type run struct {
	ctx          context.Context
	b            *Backfiller
	since, until time.Time
	meter        *meter
	workers      sync.WaitGroup

	mu         sync.Mutex
	clients    map[string]regionClients
	best       map[string]*job        // the job each key's tags come from, by key ARN
	rows       map[string]Row         // by key ARN, or "event:" + region + event ID
	keyLocks   map[string]*sync.Mutex // one job at a time per key
	queues     map[string]chan *job   // per key region
	failed     map[string]bool        // regions whose event history could not be read
	errs       []error
	events     int
	ignored    int
	superseded int
	noCreation int

	progressMu sync.Mutex
}

// regionClients are the clients of one region.
type regionClients struct {
	lookup LookupAPI
	keys   KeyAPI
}

func newRun(ctx context.Context, b *Backfiller, since, until time.Time) *run {
	return &run{
		ctx:      ctx,
		b:        b,
		since:    since,
		until:    until,
		meter:    newMeter(map[string]float64{OpLookupEvents: b.opts.LookupRate, OpTagResource: b.opts.TagRate}),
		clients:  make(map[string]regionClients),
		best:     make(map[string]*job),
		rows:     make(map[string]Row),
		keyLocks: make(map[string]*sync.Mutex),
		queues:   make(map[string]chan *job),
		failed:   make(map[string]bool),
	}
}

// clientsOf returns the clients of region, made on first use.
func (r *run) clientsOf(region string) regionClients {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.clients[region]
	if !ok {
		c.lookup, c.keys = r.b.clients(region)
		r.clients[region] = c
	}
	return c
}

// fail records an error that stopped part of the run.
func (r *run) fail(err error) {
	r.b.log.Error("backfill step failed", slog.String("error", err.Error()))
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

func (r *run) lookupFailed(region string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed[region]
}

// lookup pages through the creation events of region and hands each key to
// the workers of its region.
func (r *run) lookup(region string) {
	client := r.clientsOf(region).lookup
	for _, name := range creationNames {
		in := &cloudtrail.LookupEventsInput{
			LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyEventName, AttributeValue: aws.String(name)}},
			StartTime:        aws.Time(r.since),
			EndTime:          aws.Time(r.until),
			MaxResults:       aws.Int32(r.b.opts.PageSize),
		}
		pages := cloudtrail.NewLookupEventsPaginator(client, in)
		for pages.HasMorePages() {
			out, err := pages.NextPage(r.ctx, r.meter.cloudtrailOpts(region, OpLookupEvents))
			if err != nil {
				if r.ctx.Err() != nil {
					return
				}
				r.mu.Lock()
				r.failed[region] = true
				r.mu.Unlock()
				r.fail(fmt.Errorf("looking up %s events in %s: %w", name, region, err))
				return
			}
			for _, ev := range out.Events {
				r.collect(region, ev)
			}
			r.progress()
		}
	}
}

// collect decodes one event and dispatches its key, unless a better event
// of the same key was seen.
func (r *run) collect(region string, ev cttypes.Event) {
	dec, err := events.DecodeRecord([]byte(aws.ToString(ev.CloudTrailEvent)))
	if dec.Key != nil {
		dec.Key.Evidence = tagger.EvidenceHistory
	}
	r.mu.Lock()
	r.events++
	if err != nil {
		id, name := dec.EventID, dec.EventName
		if id == "" {
			id = aws.ToString(ev.EventId)
		}
		if name == "" {
			name = aws.ToString(ev.EventName)
		}
		row := Row{Region: region, EventID: id, EventName: name, EventTime: aws.ToTime(ev.EventTime).UTC(), Action: ActionFailed,
			Reason: err.Error(), ErrorCode: tagger.CodeMalformedEvent, ErrorClass: tagger.Permanent.String()}
		if dec.Key != nil {
			row.KeyARN = dec.Key.KeyARN
		}
		r.rows["event:"+region+":"+id] = row
		r.mu.Unlock()
		r.logRow(row)
		return
	}
	switch {
	case dec.Kind == events.KindIgnore || dec.Kind == events.KindFailedCall:
		r.ignored++
		r.mu.Unlock()
		r.b.log.Debug("event ignored", slog.String("region", region), slog.String("event_id", dec.EventID), slog.String("reason", dec.Reason))
		return
	case dec.Key == nil: // a skip that names no key
		row := Row{Region: region, EventID: dec.EventID, EventName: dec.EventName, EventTime: aws.ToTime(ev.EventTime).UTC(), Action: ActionSkipped, Reason: dec.Reason}
		r.rows["event:"+region+":"+dec.EventID] = row
		r.mu.Unlock()
		r.logRow(row)
		return
	}
	j := &job{kind: jobEvent, region: dec.Key.Region, keyARN: dec.Key.KeyARN, key: dec.Key, skip: dec.Kind == events.KindSkip, reason: dec.Reason}
	if cur, ok := r.best[j.keyARN]; ok {
		r.superseded++
		if !j.better(cur) {
			r.mu.Unlock()
			return
		}
		delete(r.rows, j.keyARN)
	}
	r.best[j.keyARN] = j
	if j.skip {
		row := j.row(ActionSkipped)
		row.Reason = j.reason
		r.rows[j.keyARN] = row
		r.mu.Unlock()
		r.logRow(row)
		return
	}
	r.mu.Unlock()
	r.dispatch(j)
}

// sweep lists the keys of region and hands those without a creation event
// to the workers.
func (r *run) sweep(region string) {
	client := r.clientsOf(region).keys
	pages := kms.NewListKeysPaginator(client, &kms.ListKeysInput{Limit: aws.Int32(1000)})
	for pages.HasMorePages() {
		out, err := pages.NextPage(r.ctx, r.meter.kmsOpts(region, OpListKeys))
		if err != nil {
			if r.ctx.Err() == nil {
				r.fail(fmt.Errorf("listing the keys of %s: %w", region, err))
			}
			return
		}
		for _, k := range out.Keys {
			arn := aws.ToString(k.KeyArn)
			r.mu.Lock()
			_, seen := r.best[arn]
			r.mu.Unlock()
			if !seen {
				r.dispatch(&job{kind: jobUnknown, region: region, keyARN: arn})
			}
		}
	}
}

// dispatch queues j for the workers of its region, starting them on first
// use. It gives up when the run is cancelled.
func (r *run) dispatch(j *job) {
	r.mu.Lock()
	q, ok := r.queues[j.region]
	if !ok {
		q = make(chan *job, 64)
		r.queues[j.region] = q
		for range r.b.opts.Workers {
			r.workers.Go(func() {
				for j := range q {
					if r.ctx.Err() == nil { // after a cancel, drain without work
						r.process(j)
					}
				}
			})
		}
	}
	r.mu.Unlock()
	select {
	case q <- j:
	case <-r.ctx.Done():
	}
}

// closeQueues ends the workers once every job is dispatched.
func (r *run) closeQueues() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, q := range r.queues {
		close(q)
	}
}

// process handles one job and records its row, unless a better event of the
// key came meanwhile or the run was cancelled.
func (r *run) process(j *job) {
	r.mu.Lock()
	lock, ok := r.keyLocks[j.keyARN]
	if !ok {
		lock = new(sync.Mutex)
		r.keyLocks[j.keyARN] = lock
	}
	r.mu.Unlock()
	lock.Lock()
	defer lock.Unlock()
	if j.kind == jobEvent && !r.isBest(j) {
		return
	}

	var (
		row  Row
		done bool
	)
	if j.kind == jobEvent {
		row, done = r.tagFromEvent(j)
	} else {
		row, done = r.tagUnknown(j)
	}
	if !done {
		return
	}
	r.mu.Lock()
	if j.kind == jobEvent && r.best[j.keyARN] != j {
		r.mu.Unlock()
		return
	}
	r.rows[j.keyARN] = row
	r.mu.Unlock()
	r.logRow(row)
}

func (r *run) isBest(j *job) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.best[j.keyARN] == j
}

// row returns the row of j with its event filled in.
func (j *job) row(a Action) Row {
	row := Row{Region: j.region, KeyARN: j.keyARN, Action: a}
	if j.key != nil {
		row.EventID, row.EventName, row.EventTime = j.key.EventID, j.key.EventName, j.key.EventTime
	}
	return row
}

// tagFromEvent tags the key of an event job with the policy's plan. done
// is false when the run was cancelled before the outcome was known.
func (r *run) tagFromEvent(j *job) (Row, bool) {
	keys := r.clientsOf(j.region).keys
	md, err := keys.DescribeKey(r.ctx, &kms.DescribeKeyInput{KeyId: aws.String(j.keyARN)}, r.meter.kmsOpts(j.region, OpDescribeKey))
	if err != nil {
		return r.errorRow(j.row(ActionFailed), fmt.Errorf("describing key %s: %w", j.keyARN, err))
	}
	meta := md.KeyMetadata
	if state := string(meta.KeyState); isPendingDeletion(state) {
		row := j.row(ActionPendingDeletion)
		row.Reason = pendingReason(state, aws.ToTime(meta.DeletionDate))
		return row, true
	}
	if meta.KeyManager != "" && string(meta.KeyManager) != events.KeyManagerCustomer {
		row := j.row(ActionSkipped)
		row.Reason = fmt.Sprintf("%s managed key: its tags are managed by AWS", meta.KeyManager)
		return row, true
	}
	current, err := r.listTags(j.region, keys, j.keyARN)
	if err != nil {
		return r.errorRow(j.row(ActionFailed), err)
	}
	// The plan is made against the key's tags now, as the handler's is: the
	// budget fits the key as it is, and the owned keys end up exactly those
	// with a true value. The event is CloudTrail's own record, so it
	// overwrites whatever creation event the key's tags name.
	plan := r.b.policy.Plan(j.key, current)
	if len(plan.Write) == 0 && len(plan.Remove) == 0 && len(plan.Dropped) > 0 {
		row := j.row(ActionFailed)
		row.Reason = fmt.Sprintf("key %s already has %d tags of its own: no room for governance tags", j.keyARN, tagger.MaxTagsPerKey)
		row.ErrorCode, row.ErrorClass = tagger.CodeTagBudgetExceeded, tagger.Permanent.String()
		return row, true
	}
	reason := ""
	if len(plan.Dropped) > 0 {
		reason = fmt.Sprintf("%d governance tags did not fit within %d tags: %s", len(plan.Dropped), tagger.MaxTagsPerKey, tagKeys(plan.Dropped))
	}
	return r.apply(j, keys, plan.Write, plan.Remove, current, reason)
}

// tagUnknown handles a key without a creation event: reported, or with
// TagUnknown given CreatedAt from its creation date. Keys of AWS give no
// row (done is false).
func (r *run) tagUnknown(j *job) (Row, bool) {
	keys := r.clientsOf(j.region).keys
	md, err := keys.DescribeKey(r.ctx, &kms.DescribeKeyInput{KeyId: aws.String(j.keyARN)}, r.meter.kmsOpts(j.region, OpDescribeKey))
	if err != nil {
		return r.errorRow(j.row(ActionFailed), fmt.Errorf("describing key %s: %w", j.keyARN, err))
	}
	meta := md.KeyMetadata
	if string(meta.KeyManager) != events.KeyManagerCustomer {
		return Row{}, false
	}
	if state := string(meta.KeyState); isPendingDeletion(state) {
		row := j.row(ActionPendingDeletion)
		row.Reason = "no creation event in the event history; " + pendingReason(state, aws.ToTime(meta.DeletionDate))
		return row, true
	}
	r.mu.Lock()
	r.noCreation++
	r.mu.Unlock()
	created := aws.ToTime(meta.CreationDate).UTC()
	missing := fmt.Sprintf("no %s event in the event history of %s since %s", strings.Join(creationNames, " or "), j.region, r.since.Format(time.RFC3339))
	if created.Before(r.since) {
		missing += fmt.Sprintf(" (the key was created %s, before that)", created.Format(time.RFC3339))
	}

	current, err := r.listTags(j.region, keys, j.keyARN)
	if err != nil {
		return r.errorRow(j.row(ActionFailed), err)
	}
	createdAt := r.b.opts.CreatedAtKey
	for _, t := range current {
		if createdAt != "" && t.Key == createdAt {
			row := j.row(ActionUpToDate)
			row.Reason = fmt.Sprintf("%s; it already carries %s=%s", missing, t.Key, t.Value)
			return row, true
		}
	}
	if !r.b.opts.TagUnknown {
		row := j.row(ActionNoCreationEvent)
		row.Reason = missing
		return row, true
	}
	if created.IsZero() {
		row := j.row(ActionNoCreationEvent)
		row.Reason = missing + "; KMS gives no creation date to tag it with"
		return row, true
	}
	tags := []tagger.Tag{{Key: createdAt, Value: created.Format(time.RFC3339)}}
	if k := r.b.opts.EvidenceKey; k != "" {
		tags = append(tags, tagger.Tag{Key: k, Value: tagger.EvidenceCreationDateOnly})
	}
	return r.apply(j, keys, tags, nil, current, missing+": only "+createdAt+", from the key's creation date")
}

// apply removes the tag keys remove and writes the tags of want that
// current lacks or holds with another value, or says it would in a dry run.
// UntagResource shares TagResource's rate limit.
func (r *run) apply(j *job, keys KeyAPI, want []tagger.Tag, remove []string, current []tagger.Tag, reason string) (Row, bool) {
	changes, previous := diff(want, current)
	if len(changes) == 0 && len(remove) == 0 {
		row := j.row(ActionUpToDate)
		row.Reason = reason
		return row, true
	}
	for _, k := range remove {
		for _, t := range current {
			if t.Key == k {
				previous = append(previous, t)
				break
			}
		}
	}
	row := j.row(ActionTagged)
	row.Tags, row.Previous, row.Removed, row.Reason = changes, previous, remove, reason
	if r.b.opts.DryRun {
		row.Action = ActionWouldTag
		return row, true
	}
	if len(remove) > 0 {
		in := &kms.UntagResourceInput{KeyId: aws.String(j.keyARN), TagKeys: remove}
		if _, err := keys.UntagResource(r.ctx, in, r.meter.kmsOpts(j.region, OpTagResource)); err != nil {
			return r.errorRow(row, fmt.Errorf("removing tags %v from key %s: %w", remove, j.keyARN, err))
		}
	}
	if len(changes) > 0 {
		in := &kms.TagResourceInput{KeyId: aws.String(j.keyARN), Tags: toKMSTags(changes)}
		if _, err := keys.TagResource(r.ctx, in, r.meter.kmsOpts(j.region, OpTagResource)); err != nil {
			return r.errorRow(row, fmt.Errorf("tagging key %s: %w", j.keyARN, err))
		}
	}
	return row, true
}

// listTags returns every tag of a key.
func (r *run) listTags(region string, keys KeyAPI, keyARN string) ([]tagger.Tag, error) {
	var tags []tagger.Tag
	pages := kms.NewListResourceTagsPaginator(keys, &kms.ListResourceTagsInput{KeyId: aws.String(keyARN), Limit: aws.Int32(50)})
	for pages.HasMorePages() {
		out, err := pages.NextPage(r.ctx, r.meter.kmsOpts(region, OpListResourceTags))
		if err != nil {
			return nil, fmt.Errorf("listing the tags of key %s: %w", keyARN, err)
		}
		for _, t := range out.Tags {
			tags = append(tags, tagger.Tag{Key: aws.ToString(t.TagKey), Value: aws.ToString(t.TagValue)})
		}
	}
	return tags, nil
}

// errorRow turns the failure of a KMS call into the row's action: a key
// that does not exist is not-found, one in an invalid state (pending
// deletion) pending-deletion, anything else failed with its code and
// class. done is false when the run was cancelled: the outcome is unknown.
func (r *run) errorRow(row Row, err error) (Row, bool) {
	if r.ctx.Err() != nil {
		return Row{}, false
	}
	class, code := tagger.Classify(err)
	row.Reason = err.Error()
	switch code {
	case tagger.CodeNotFound:
		row.Action, row.Tags, row.Previous = ActionNotFound, nil, nil
	case tagger.CodeKMSInvalidState:
		row.Action, row.Tags, row.Previous = ActionPendingDeletion, nil, nil
	default:
		row.Action = ActionFailed
		row.ErrorCode, row.ErrorClass = code, class.String()
	}
	return row, true
}

// pendingReason says a key is pending deletion, and until when.
func pendingReason(state string, until time.Time) string {
	if until.IsZero() {
		return "the key is " + state
	}
	return fmt.Sprintf("the key is %s, to be deleted %s", state, until.UTC().Format(time.RFC3339))
}

// logRow logs the outcome of one key at debug level, failures at warn.
func (r *run) logRow(row Row) {
	level := slog.LevelDebug
	if row.Action == ActionFailed {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{slog.String("region", row.Region), slog.String("key_arn", row.KeyARN), slog.String("event_id", row.EventID), slog.String("action", string(row.Action))}
	if len(row.Tags) > 0 {
		attrs = append(attrs, slog.Any("tags", row.Tags))
	}
	if row.Reason != "" {
		attrs = append(attrs, slog.String("reason", row.Reason))
	}
	if row.ErrorCode != "" {
		attrs = append(attrs, slog.String("error_code", row.ErrorCode), slog.String("error_class", row.ErrorClass))
	}
	r.b.log.LogAttrs(r.ctx, level, "key "+string(row.Action), attrs...)
	r.progress()
}

// progress reports a snapshot to Options.Progress.
func (r *run) progress() {
	if r.b.opts.Progress == nil {
		return
	}
	r.mu.Lock()
	p := Progress{Events: r.events, Keys: len(r.rows), Actions: make(map[Action]int)}
	for _, row := range r.rows {
		p.Actions[row.Action]++
	}
	r.mu.Unlock()
	r.progressMu.Lock()
	defer r.progressMu.Unlock()
	r.b.opts.Progress(p)
}

// report builds the report of the run.
func (r *run) report(took time.Duration) *Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	rows := make([]Row, 0, len(r.rows))
	for _, row := range r.rows {
		rows = append(rows, row)
	}
	sortRows(rows)
	s := Summary{
		Regions:          r.b.opts.Regions,
		Since:            r.since,
		Until:            r.until,
		DryRun:           r.b.opts.DryRun,
		Events:           r.events,
		IgnoredEvents:    r.ignored,
		SupersededEvents: r.superseded,
		Keys:             len(rows),
		Actions:          summarize(rows),
		NoCreationEvent:  r.noCreation,
		Requests:         r.meter.requests(),
		Duration:         took,
		Seconds:          took.Seconds(),
		Interrupted:      r.ctx.Err() != nil,
	}
	for _, err := range r.errs {
		s.Errors = append(s.Errors, err.Error())
	}
	return &Report{Summary: s, Rows: rows}
}

// diff returns the tags of want that current lacks or holds with another
// value, and the values current holds under those keys.
func diff(want, current []tagger.Tag) (changes, previous []tagger.Tag) {
	have := make(map[string]string, len(current))
	for _, t := range current {
		have[t.Key] = t.Value
	}
	for _, t := range want {
		v, ok := have[t.Key]
		if ok && v == t.Value {
			continue
		}
		changes = append(changes, t)
		if ok {
			previous = append(previous, tagger.Tag{Key: t.Key, Value: v})
		}
	}
	return changes, previous
}

// tagKeys lists the keys of tags, comma separated.
func tagKeys(tags []tagger.Tag) string {
	keys := make([]string, len(tags))
	for i, t := range tags {
		keys[i] = t.Key
	}
	return strings.Join(keys, ", ")
}

// toKMSTags converts tags to the SDK's type.
func toKMSTags(tags []tagger.Tag) []kmstypes.Tag {
	out := make([]kmstypes.Tag, len(tags))
	for i, t := range tags {
		out[i] = kmstypes.Tag{TagKey: aws.String(t.Key), TagValue: aws.String(t.Value)}
	}
	return out
}
