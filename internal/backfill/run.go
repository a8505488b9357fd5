package backfill

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
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/kms-autotagger/kms-autotagger/internal/audit"
	"github.com/kms-autotagger/kms-autotagger/internal/events"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
	"github.com/kms-autotagger/kms-autotagger/internal/trailarchive"
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

// run is the backfill of one account in a Backfiller.Run.
type run struct {
	ctx          context.Context
	b            *Backfiller
	account      string
	since, until time.Time
	meter        *audit.Meter
	shared       *progressState
	workers      sync.WaitGroup

	mu         sync.Mutex
	clients    map[string]*regionClients
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
	archived   int
}

// regionClients are the clients of one region, made once.
type regionClients struct {
	once   sync.Once
	lookup LookupAPI
	keys   KeyAPI
	err    error
}

func newRun(ctx context.Context, b *Backfiller, account string, since, until time.Time, meter *audit.Meter, shared *progressState) *run {
	return &run{
		ctx:      ctx,
		b:        b,
		account:  account,
		since:    since,
		until:    until,
		meter:    meter,
		shared:   shared,
		clients:  make(map[string]*regionClients),
		best:     make(map[string]*job),
		rows:     make(map[string]Row),
		keyLocks: make(map[string]*sync.Mutex),
		queues:   make(map[string]chan *job),
		failed:   make(map[string]bool),
	}
}

// execute backfills the account: its regions' events, then their keys
// without one.
func (r *run) execute() {
	var producers sync.WaitGroup
	for _, region := range r.b.regionsOf(r.account) {
		producers.Go(func() { r.lookup(region) })
	}
	producers.Wait()
	if r.ctx.Err() == nil {
		var sweepers sync.WaitGroup
		for _, region := range r.b.regionsOf(r.account) {
			if r.lookupFailed(region) {
				r.fail(fmt.Errorf("keys of account %s in %s not listed: without its event history every key would look like one without a creation event", r.account, region))
				continue
			}
			sweepers.Go(func() { r.sweep(region) })
		}
		sweepers.Wait()
	}
	r.closeQueues()
	r.workers.Wait()
}

// part is the partition of region in the run's account, as the meter
// knows it.
func (r *run) part(region string) audit.Partition {
	return audit.Partition{Account: r.account, Region: region}
}

// clientsOf returns the clients of region, made on first use.
func (r *run) clientsOf(region string) (LookupAPI, KeyAPI, error) {
	r.mu.Lock()
	c, ok := r.clients[region]
	if !ok {
		c = new(regionClients)
		r.clients[region] = c
	}
	r.mu.Unlock()
	c.once.Do(func() {
		c.lookup, c.keys, c.err = r.b.clients(r.ctx, r.account, region)
		if c.err == nil && (c.lookup == nil || c.keys == nil) {
			c.err = errors.New("no CloudTrail or KMS client")
		}
		if c.err != nil {
			c.err = fmt.Errorf("clients of account %s in %s: %w", r.account, region, c.err)
		}
	})
	return c.lookup, c.keys, c.err
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
	client, _, err := r.clientsOf(region)
	if err != nil {
		r.mu.Lock()
		r.failed[region] = true
		r.mu.Unlock()
		r.fail(err)
		return
	}
	for _, name := range creationNames {
		in := &cloudtrail.LookupEventsInput{
			LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyEventName, AttributeValue: aws.String(name)}},
			StartTime:        aws.Time(r.since),
			EndTime:          aws.Time(r.until),
			MaxResults:       aws.Int32(r.b.opts.PageSize),
		}
		pages := cloudtrail.NewLookupEventsPaginator(client, in)
		for pages.HasMorePages() {
			out, err := pages.NextPage(r.ctx, r.meter.CloudTrail(r.part(region), OpLookupEvents))
			if err != nil {
				if r.ctx.Err() != nil {
					return
				}
				r.mu.Lock()
				r.failed[region] = true
				r.mu.Unlock()
				r.fail(fmt.Errorf("looking up %s events of account %s in %s: %w", name, r.account, region, err))
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
		row := Row{Account: r.account, Region: region, EventID: id, EventName: name, EventTime: aws.ToTime(ev.EventTime).UTC(), Action: ActionFailed,
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
		row := Row{Account: r.account, Region: region, EventID: dec.EventID, EventName: dec.EventName, EventTime: aws.ToTime(ev.EventTime).UTC(), Action: ActionSkipped, Reason: dec.Reason}
		r.rows["event:"+region+":"+dec.EventID] = row
		r.mu.Unlock()
		r.logRow(row)
		return
	}
	if dec.Key.Account != r.account {
		// The history of one account holds only its own keys' creations:
		// a record of another account's key is not this account's to act on.
		row := Row{Account: r.account, Region: region, KeyARN: dec.Key.KeyARN, EventID: dec.EventID, EventName: dec.EventName, EventTime: dec.Key.EventTime,
			Action: ActionFailed, Reason: fmt.Sprintf("the event history of account %s holds the creation of a key of account %s", r.account, dec.Key.Account),
			ErrorCode: tagger.CodeInconsistentEvent, ErrorClass: tagger.Permanent.String()}
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
		row := r.row(j, ActionSkipped)
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
	_, client, err := r.clientsOf(region)
	if err != nil {
		r.fail(err)
		return
	}
	pages := kms.NewListKeysPaginator(client, &kms.ListKeysInput{Limit: aws.Int32(1000)})
	for pages.HasMorePages() {
		out, err := pages.NextPage(r.ctx, r.meter.KMS(r.part(region), OpListKeys))
		if err != nil {
			if r.ctx.Err() == nil {
				r.fail(fmt.Errorf("listing the keys of account %s in %s: %w", r.account, region, err))
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
func (r *run) row(j *job, a Action) Row {
	row := Row{Account: r.account, Region: j.region, KeyARN: j.keyARN, Action: a}
	if j.key != nil {
		row.EventID, row.EventName, row.EventTime, row.Evidence = j.key.EventID, j.key.EventName, j.key.EventTime, j.key.Evidence
	}
	return row
}

// tagFromEvent tags the key of an event job with the policy's plan. done
// is false when the run was cancelled before the outcome was known.
func (r *run) tagFromEvent(j *job) (Row, bool) {
	_, keys, err := r.clientsOf(j.region)
	if err != nil {
		return r.errorRow(r.row(j, ActionFailed), err)
	}
	// The key's tags are read while it is described: the two reads do not
	// depend on each other, and a key's write waits for neither longer than
	// it must. They take consecutive read tokens, so the partition's first
	// write waits for one key's reads, not for those of every worker.
	type listed struct {
		tags []tagger.Tag
		err  error
	}
	inTurn := r.meter.KMSInTurn(r.part(j.region), OpDescribeKey, OpListResourceTags)
	tags := make(chan listed, 1)
	go func() {
		t, err := r.listTags(keys, j.keyARN, inTurn[1])
		tags <- listed{t, err}
	}()
	md, err := keys.DescribeKey(r.ctx, &kms.DescribeKeyInput{KeyId: aws.String(j.keyARN)}, inTurn[0])
	current := <-tags
	if err != nil {
		return r.errorRow(r.row(j, ActionFailed), fmt.Errorf("describing key %s: %w", j.keyARN, err))
	}
	meta := md.KeyMetadata
	if state := string(meta.KeyState); isPendingDeletion(state) {
		row := r.row(j, ActionPendingDeletion)
		row.Reason = pendingReason(state, aws.ToTime(meta.DeletionDate))
		return row, true
	}
	if meta.KeyManager != "" && string(meta.KeyManager) != events.KeyManagerCustomer {
		row := r.row(j, ActionSkipped)
		row.Reason = fmt.Sprintf("%s managed key: its tags are managed by AWS", meta.KeyManager)
		return row, true
	}
	if current.err != nil {
		return r.errorRow(r.row(j, ActionFailed), current.err)
	}
	return r.tagWithTags(j, keys, current.tags, "")
}

// tagWith tags the key of j with the policy's plan for its event, noting
// note in the row's reason.
func (r *run) tagWith(j *job, keys KeyAPI, note string) (Row, bool) {
	current, err := r.listTags(keys, j.keyARN, r.meter.KMS(r.part(j.region), OpListResourceTags))
	if err != nil {
		return r.errorRow(r.row(j, ActionFailed), err)
	}
	return r.tagWithTags(j, keys, current, note)
}

// tagWithTags is tagWith with the key's tags read.
func (r *run) tagWithTags(j *job, keys KeyAPI, current []tagger.Tag, note string) (Row, bool) {
	// The plan is made against the key's tags now, as the handler's is: the
	// budget fits the key as it is, and the owned keys end up exactly those
	// with a true value. The event is CloudTrail's own record, so it
	// overwrites whatever creation event the key's tags name.
	var in tagger.PlanInput
	if stack, operator := r.b.policy.StackLookup(j.key); stack && r.b.opts.Stacks != nil {
		in.Stack = r.b.opts.Stacks.FindStack(r.ctx, j.key, operator)
	}
	plan := r.b.policy.PlanWith(j.key, current, in)
	if len(plan.Write) == 0 && len(plan.Remove) == 0 && len(plan.Dropped) > 0 {
		row := r.row(j, ActionFailed)
		row.Reason = fmt.Sprintf("key %s already has %d tags of its own: no room for governance tags", j.keyARN, tagger.MaxTagsPerKey)
		row.ErrorCode, row.ErrorClass = tagger.CodeTagBudgetExceeded, tagger.Permanent.String()
		return row, true
	}
	reason := note
	if len(plan.Dropped) > 0 {
		reason = strings.TrimPrefix(reason+"; "+fmt.Sprintf("%d governance tags did not fit within %d tags: %s", len(plan.Dropped), tagger.MaxTagsPerKey, tagKeys(plan.Dropped)), "; ")
	}
	return r.apply(j, keys, plan.Write, plan.Remove, current, reason)
}

// tagUnknown handles a key without a creation event: reported, or with
// TagUnknown given CreatedAt from its creation date. Keys of AWS give no
// row (done is false).
func (r *run) tagUnknown(j *job) (Row, bool) {
	_, keys, err := r.clientsOf(j.region)
	if err != nil {
		return r.errorRow(r.row(j, ActionFailed), err)
	}
	md, err := keys.DescribeKey(r.ctx, &kms.DescribeKeyInput{KeyId: aws.String(j.keyARN)}, r.meter.KMS(r.part(j.region), OpDescribeKey))
	if err != nil {
		return r.errorRow(r.row(j, ActionFailed), fmt.Errorf("describing key %s: %w", j.keyARN, err))
	}
	meta := md.KeyMetadata
	if string(meta.KeyManager) != events.KeyManagerCustomer {
		return Row{}, false
	}
	if state := string(meta.KeyState); isPendingDeletion(state) {
		row := r.row(j, ActionPendingDeletion)
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
	if r.b.opts.Archive != nil && !created.IsZero() {
		ev, why, err := r.fromArchive(j, meta)
		switch {
		case err != nil:
			return r.errorRow(r.row(j, ActionFailed), err)
		case ev != nil:
			j.key = ev
			r.mu.Lock()
			r.archived++
			r.mu.Unlock()
			return r.tagWith(j, keys, missing+"; tagged from its "+ev.EventName+" record in the trail archive")
		}
		missing += "; " + why
	}

	current, err := r.listTags(keys, j.keyARN, r.meter.KMS(r.part(j.region), OpListResourceTags))
	if err != nil {
		return r.errorRow(r.row(j, ActionFailed), err)
	}
	createdAt := r.b.opts.CreatedAtKey
	for _, t := range current {
		if createdAt != "" && t.Key == createdAt {
			row := r.row(j, ActionUpToDate)
			row.Reason = fmt.Sprintf("%s; it already carries %s=%s", missing, t.Key, t.Value)
			return row, true
		}
	}
	if !r.b.opts.TagUnknown {
		row := r.row(j, ActionNoCreationEvent)
		row.Reason = missing
		return row, true
	}
	if created.IsZero() {
		row := r.row(j, ActionNoCreationEvent)
		row.Reason = missing + "; KMS gives no creation date to tag it with"
		return row, true
	}
	tags := []tagger.Tag{{Key: createdAt, Value: created.Format(time.RFC3339)}}
	if k := r.b.opts.EvidenceKey; k != "" {
		tags = append(tags, tagger.Tag{Key: k, Value: tagger.EvidenceCreationDateOnly})
	}
	return r.apply(j, keys, tags, nil, current, missing+": only "+createdAt+", from the key's creation date")
}

// fromArchive returns the key's creation record from the trail archive,
// checked against the key as the handler checks an event
// (tagger.CheckKey), or nil and why there is none to use; an error when the
// archive could not be read.
func (r *run) fromArchive(j *job, meta *kmstypes.KeyMetadata) (*events.KeyEvent, string, error) {
	q := trailarchive.Query{KeyARN: j.keyARN, Created: aws.ToTime(meta.CreationDate)}
	if mr := meta.MultiRegionConfiguration; mr != nil && mr.MultiRegionKeyType == kmstypes.MultiRegionKeyTypeReplica && mr.PrimaryKey != nil {
		q.PrimaryARN = aws.ToString(mr.PrimaryKey.Arn)
	}
	ev, err := r.b.opts.Archive.FindCreation(r.ctx, q, r.meter.S3(r.part(j.region)))
	var conflict *trailarchive.ConflictError
	switch {
	case errors.Is(err, trailarchive.ErrNotFound), errors.As(err, &conflict):
		return nil, err.Error(), nil
	case err != nil:
		return nil, "", err
	}
	skip, err := tagger.CheckKey(ev, meta)
	switch {
	case err != nil:
		return nil, fmt.Sprintf("the %s record %s in the trail archive contradicts the key: %v", ev.EventName, ev.EventID, err), nil
	case skip != "":
		return nil, fmt.Sprintf("the %s record %s in the trail archive is not one to tag from: %s", ev.EventName, ev.EventID, skip), nil
	}
	return ev, "", nil
}

// apply removes the tag keys remove and writes the tags of want that
// current lacks or holds with another value, or says it would in a dry run.
// UntagResource shares TagResource's rate limit.
func (r *run) apply(j *job, keys KeyAPI, want []tagger.Tag, remove []string, current []tagger.Tag, reason string) (Row, bool) {
	changes, previous := diff(want, current)
	if len(changes) == 0 && len(remove) == 0 {
		row := r.row(j, ActionUpToDate)
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
	row := r.row(j, ActionTagged)
	row.Tags, row.Previous, row.Removed, row.Reason = changes, previous, remove, reason
	if r.b.opts.DryRun {
		row.Action = ActionWouldTag
		return row, true
	}
	if len(remove) > 0 {
		in := &kms.UntagResourceInput{KeyId: aws.String(j.keyARN), TagKeys: remove}
		if _, err := keys.UntagResource(r.ctx, in, r.meter.KMS(r.part(j.region), OpUntagResource)); err != nil {
			return r.errorRow(row, fmt.Errorf("removing tags %v from key %s: %w", remove, j.keyARN, err))
		}
	}
	if len(changes) > 0 {
		in := &kms.TagResourceInput{KeyId: aws.String(j.keyARN), Tags: toKMSTags(changes)}
		if _, err := keys.TagResource(r.ctx, in, r.meter.KMS(r.part(j.region), OpTagResource)); err != nil {
			return r.errorRow(row, fmt.Errorf("tagging key %s: %w", j.keyARN, err))
		}
	}
	return row, true
}

// listTags returns every tag of a key, each page metered by metered.
func (r *run) listTags(keys KeyAPI, keyARN string, metered func(*kms.Options)) ([]tagger.Tag, error) {
	var tags []tagger.Tag
	pages := kms.NewListResourceTagsPaginator(keys, &kms.ListResourceTagsInput{KeyId: aws.String(keyARN), Limit: aws.Int32(50)})
	for pages.HasMorePages() {
		out, err := pages.NextPage(r.ctx, metered)
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
	attrs := []slog.Attr{slog.String("account", row.Account), slog.String("region", row.Region), slog.String("key_arn", row.KeyARN), slog.String("event_id", row.EventID), slog.String("action", string(row.Action))}
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

// progress reports the run's figures to Options.Progress, added up with
// those of the other accounts' runs.
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
	r.shared.update(r.account, p)
}

// progressState adds up the progress of the runs of every account.
type progressState struct {
	b         *Backfiller
	mu        sync.Mutex
	byAccount map[string]Progress
}

func (ps *progressState) update(account string, p Progress) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.byAccount == nil {
		ps.byAccount = make(map[string]Progress)
	}
	ps.byAccount[account] = p
	total := Progress{Actions: make(map[Action]int)}
	for _, a := range ps.byAccount {
		total.Events += a.Events
		total.Keys += a.Keys
		for k, v := range a.Actions {
			total.Actions[k] += v
		}
	}
	ps.b.opts.Progress(total)
}

// report builds the report of the runs of every account.
func report(ctx context.Context, b *Backfiller, runs []*run, meter *audit.Meter, since, until, start time.Time, took time.Duration) *Report {
	s := Summary{
		Accounts:          slices.Sorted(slices.Values(b.opts.Accounts)),
		Regions:           slices.Clone(b.opts.Regions),
		Since:             since,
		Until:             until,
		DryRun:            b.opts.DryRun,
		Requests:          map[string]int{},
		Duration:          took,
		Seconds:           took.Seconds(),
		Interrupted:       ctx.Err() != nil,
		Parallel:          b.opts.Parallel,
		LookupEventsLimit: b.opts.LookupRate,
		TagWritesLimit:    b.opts.TagRate,
		ReadLimit:         b.opts.ReadRate,
	}
	var rows []Row
	done := map[string]bool{}
	for _, r := range runs {
		r.mu.Lock()
		for _, row := range r.rows {
			rows = append(rows, row)
		}
		s.Events += r.events
		s.IgnoredEvents += r.ignored
		s.SupersededEvents += r.superseded
		s.NoCreationEvent += r.noCreation
		s.FromArchive += r.archived
		for _, err := range r.errs {
			s.Errors = append(s.Errors, err.Error())
		}
		r.mu.Unlock()
		done[r.account] = true
	}
	sortRows(rows)
	s.Keys = len(rows)
	s.Actions = summarize(rows)
	var parts []PartitionReport
	for _, account := range s.Accounts {
		if !done[account] {
			if s.Interrupted {
				s.Errors = append(s.Errors, fmt.Sprintf("account %s not backfilled: interrupted", account))
			}
			continue
		}
		regions := slices.Clone(b.regionsOf(account))
		for _, r := range regions {
			if !slices.Contains(s.Regions, r) {
				s.Regions = append(s.Regions, r)
			}
		}
		for _, row := range rows { // a replica's region may be outside the list
			if row.Account == account && !slices.Contains(regions, row.Region) {
				regions = append(regions, row.Region)
			}
		}
		slices.Sort(regions)
		for _, region := range regions {
			u := meter.Usage(audit.Partition{Account: account, Region: region})
			p := PartitionReport{Account: account, Region: region, Actions: map[Action]int{}, Requests: u.Requests,
				LookupEventsPerSecond: u.LookupEventsPerSecond, TagWritesPerSecond: u.TagWritesPerSecond, ReadsPerSecond: u.ReadsPerSecond,
				ElapsedSeconds: u.Last.Sub(u.First).Seconds(), BoundSeconds: u.Bound.Seconds()}
			if !u.First.IsZero() {
				p.StartSeconds, p.EndSeconds = u.First.Sub(start).Seconds(), u.Last.Sub(start).Seconds()
			}
			for _, row := range rows {
				if row.Account == account && row.Region == region {
					p.Keys++
					p.Actions[row.Action]++
				}
			}
			for op, n := range u.Requests {
				s.Requests[op] += n
			}
			s.SlowestPartitionSeconds = max(s.SlowestPartitionSeconds, p.ElapsedSeconds)
			s.SlowestBoundSeconds = max(s.SlowestBoundSeconds, p.BoundSeconds)
			parts = append(parts, p)
		}
	}
	slices.Sort(s.Regions)
	return &Report{Summary: s, Partitions: parts, Rows: rows}
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
