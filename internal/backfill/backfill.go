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

	"github.com/kms-autotagger/kms-autotagger/internal/events"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// Defaults and bounds of Options.
const (
	// MaxHistory is how far back CloudTrail event history goes, the default
	// and the earliest Since.
	MaxHistory = 90 * 24 * time.Hour
	// DefaultLookupRate is CloudTrail's LookupEvents quota: two requests per
	// second, per account, per region.
	DefaultLookupRate = 2.0
	// DefaultTagRate is the TagResource rate per region the backfill keeps
	// to by default, well within KMS's quota so that the Lambda and other
	// tools keep room.
	DefaultTagRate = 10.0
	// DefaultWorkers is the number of keys handled at once per region.
	DefaultWorkers = 4
	// MaxPageSize is the most events one LookupEvents call returns, and the
	// default page size.
	MaxPageSize = 50
)

// Action is what the backfill did, or would do, with one key.
type Action string

// The actions of a row. Every row has exactly one.
const (
	// ActionTagged: TagResource wrote Row.Tags.
	ActionTagged Action = "tagged"
	// ActionWouldTag: a dry run; TagResource would write Row.Tags.
	ActionWouldTag Action = "would-tag"
	// ActionUpToDate: the key already carries the tags; no call was made.
	ActionUpToDate Action = "up-to-date"
	// ActionSkipped: nothing to do, for Row.Reason (an AWS managed key, a
	// replica AWS created for a ReplicateKey call).
	ActionSkipped Action = "skipped"
	// ActionNotFound: the key no longer exists.
	ActionNotFound Action = "not-found"
	// ActionPendingDeletion: the key is pending deletion; it is not tagged.
	ActionPendingDeletion Action = "pending-deletion"
	// ActionNoCreationEvent: a customer managed key whose creation event is
	// not in the event history; it is left alone unless Options.TagUnknown.
	ActionNoCreationEvent Action = "no-creation-event"
	// ActionFailed: a call failed or the event is malformed; Row.ErrorCode
	// and Row.ErrorClass say how, as tagger.Classify names it.
	ActionFailed Action = "failed"
)

// Actions lists every action, in the order reports show them.
var Actions = []Action{ActionTagged, ActionWouldTag, ActionUpToDate, ActionSkipped, ActionNotFound, ActionPendingDeletion, ActionNoCreationEvent, ActionFailed}

// Row is the outcome for one key (or, for a malformed event, one event).
type Row struct {
	// Region is the key's region, where it is tagged; for a malformed event,
	// the region whose event history holds it.
	Region string `json:"region"`
	// KeyARN is the key; empty for a malformed event that names none.
	KeyARN string `json:"keyArn,omitempty"`
	// EventID and EventName are the creation event the tags derive from;
	// empty for a key without one.
	EventID   string `json:"eventId,omitempty"`
	EventName string `json:"eventName,omitempty"`
	// EventTime is when the event happened.
	EventTime time.Time `json:"eventTime,omitzero"`
	// Action is what was done.
	Action Action `json:"action"`
	// Tags are the tags added or changed (tagged), or to be (would-tag).
	Tags []tagger.Tag `json:"tags,omitempty"`
	// Previous are the values the key had under the keys of Tags it
	// changes, and of Removed.
	Previous []tagger.Tag `json:"previous,omitempty"`
	// Removed are the owned tag keys removed (or to be): case variants of
	// governance keys, and owned keys with no true value for the key.
	Removed []string `json:"removed,omitempty"`
	// Reason explains the action in a sentence when it needs one.
	Reason string `json:"reason,omitempty"`
	// ErrorCode and ErrorClass (transient or permanent) name a failure.
	ErrorCode  string `json:"errorCode,omitempty"`
	ErrorClass string `json:"errorClass,omitempty"`
}

// Summary counts what a run did.
type Summary struct {
	// Regions are the regions whose event history was read.
	Regions []string `json:"regions"`
	// Since and Until bound the events looked up.
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// DryRun is true when nothing was changed.
	DryRun bool `json:"dryRun"`
	// Events is the number of CreateKey and ReplicateKey events read.
	Events int `json:"events"`
	// IgnoredEvents are events that created no key (failed calls).
	IgnoredEvents int `json:"ignoredEvents"`
	// SupersededEvents are events of a key that has a newer (or, for an
	// event AWS logged for a replica, a ReplicateKey) event: the newest
	// wins.
	SupersededEvents int `json:"supersededEvents"`
	// Keys is the number of rows.
	Keys int `json:"keys"`
	// Actions counts the rows by action.
	Actions map[Action]int `json:"actions"`
	// NoCreationEvent counts the customer managed keys found by ListKeys
	// without a creation event in the event history, whatever was done
	// with them.
	NoCreationEvent int `json:"noCreationEvent"`
	// Requests counts the requests sent per operation, retries included.
	Requests map[string]int `json:"requests"`
	// Duration is how long the run took; Seconds is the same in seconds.
	Duration time.Duration `json:"-"`
	Seconds  float64       `json:"durationSeconds"`
	// Interrupted is true when the run was cancelled before it finished:
	// the rows are what was done by then.
	Interrupted bool `json:"interrupted"`
	// Errors are the failures that stopped part of the run (a region whose
	// event history or keys could not be listed).
	Errors []string `json:"errors,omitempty"`
}

// Report is the result of a run: one row per key, sorted by region and key.
type Report struct {
	Summary Summary `json:"summary"`
	Rows    []Row   `json:"rows"`
}

// Progress is a snapshot of a run, for a progress display.
type Progress struct {
	// Events is the number of creation events read so far.
	Events int
	// Keys is the number of rows so far.
	Keys int
	// Actions counts those rows by action.
	Actions map[Action]int
}

// Options configure a Backfiller.
type Options struct {
	// Regions whose event history is read and whose keys are listed. At
	// least one. A ReplicateKey event names a replica in another region,
	// which is tagged there, listed or not.
	Regions []string
	// Since is the start of the events looked up. Zero, or earlier than
	// MaxHistory ago, means MaxHistory ago: event history holds no more.
	Since time.Time
	// DryRun reads everything and changes nothing: rows say would-tag.
	DryRun bool
	// TagUnknown tags the customer managed keys that have no creation event
	// in the event history with CreatedAtKey only, from the key's creation
	// date (and EvidenceKey saying so); without it they are reported as
	// no-creation-event.
	TagUnknown bool
	// CreatedAtKey is the key of the policy's CreatedAt tag, prefix
	// included (config.Config.TagKeyPrefix + Names.CreatedAt). Required
	// with TagUnknown. A key without a creation event that already carries
	// it is up-to-date: its value is never replaced by the creation date.
	CreatedAtKey string
	// EvidenceKey is the key of the policy's CreatedByEvidence tag, prefix
	// included; with TagUnknown, such keys also get it, with the value
	// tagger.EvidenceCreationDateOnly. Empty writes none.
	EvidenceKey string
	// LookupRate is the LookupEvents requests per second per region;
	// zero means DefaultLookupRate.
	LookupRate float64
	// TagRate is the TagResource requests per second per region; zero
	// means DefaultTagRate.
	TagRate float64
	// Workers is the number of keys handled at once per region; zero means
	// DefaultWorkers.
	Workers int
	// PageSize is MaxResults of each LookupEvents call, 1 to 50; zero
	// means 50, the fewest calls.
	PageSize int32
	// Progress, when set, is called after each page of events and each
	// row, one call at a time.
	Progress func(Progress)
}

// Backfiller tags the KMS keys created before the Lambda was deployed,
// from their creation events in CloudTrail event history.
type Backfiller struct {
	policy  *tagger.Policy
	clients ClientsFunc
	log     *slog.Logger
	opts    Options
}

// New checks opts and returns a Backfiller that tags with policy (the
// Lambda's), using the clients clients returns and logging to log (nil
// means slog.Default()).
func New(policy *tagger.Policy, clients ClientsFunc, log *slog.Logger, opts Options) (*Backfiller, error) {
	if policy == nil {
		return nil, errors.New("new backfiller: no tag policy")
	}
	if clients == nil {
		return nil, errors.New("new backfiller: no clients")
	}
	if log == nil {
		log = slog.Default()
	}
	if len(opts.Regions) == 0 {
		return nil, errors.New("new backfiller: no regions")
	}
	for i, r := range opts.Regions {
		if r == "" || strings.ContainsAny(r, " ,/") {
			return nil, fmt.Errorf("new backfiller: %q is not a region name", r)
		}
		if slices.Contains(opts.Regions[:i], r) {
			return nil, fmt.Errorf("new backfiller: region %s listed twice", r)
		}
	}
	opts.Regions = slices.Clone(opts.Regions)
	if opts.LookupRate < 0 || opts.TagRate < 0 {
		return nil, fmt.Errorf("new backfiller: rates must be positive, got lookup %g and tag %g per second", opts.LookupRate, opts.TagRate)
	}
	if opts.LookupRate == 0 {
		opts.LookupRate = DefaultLookupRate
	}
	if opts.TagRate == 0 {
		opts.TagRate = DefaultTagRate
	}
	if opts.Workers < 0 {
		return nil, fmt.Errorf("new backfiller: %d workers", opts.Workers)
	}
	if opts.Workers == 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.PageSize < 0 || opts.PageSize > MaxPageSize {
		return nil, fmt.Errorf("new backfiller: page size %d is not between 1 and %d", opts.PageSize, MaxPageSize)
	}
	if opts.PageSize == 0 {
		opts.PageSize = MaxPageSize
	}
	if opts.TagUnknown && opts.CreatedAtKey == "" {
		return nil, errors.New("new backfiller: tagging keys without a creation event needs the CreatedAt tag, which is switched off")
	}
	return &Backfiller{policy: policy, clients: clients, log: log, opts: opts}, nil
}

// Run looks up the CreateKey and ReplicateKey events of every region since
// Options.Since and tags each key they name with the policy's tags, then
// lists each region's keys to report (or, with TagUnknown, tag) those with
// no creation event. Lookups and tagging run as a pipeline: one goroutine
// per region pages through LookupEvents, and Workers per key region tag the
// keys as their events arrive, each call within its rate limit.
//
// Tags come from the newest event of a key; a ReplicateKey event wins over
// the CreateKey AWS logs for the replica. A key that already carries them
// gets no TagResource call, so running again is safe and cheap.
//
// Run returns the report with an error when part of the run failed (the
// rows say what was done); when ctx is cancelled it stops promptly and
// returns what was done by then, Summary.Interrupted and ctx's error.
func (b *Backfiller) Run(ctx context.Context) (*Report, error) {
	start := time.Now()
	until := start.UTC().Truncate(time.Second)
	since := b.opts.Since.UTC()
	earliest := until.Add(-MaxHistory)
	if since.IsZero() || since.Before(earliest) {
		if !since.IsZero() {
			b.log.Warn("event history holds 90 days: looking up events since then",
				slog.Time("asked", since), slog.Time("since", earliest))
		}
		since = earliest
	}
	if !since.Before(until) {
		return nil, fmt.Errorf("backfill: since %s is not in the past", since.Format(time.RFC3339))
	}
	r := newRun(ctx, b, since, until)
	b.log.Info("backfill started", slog.Any("regions", b.opts.Regions), slog.Time("since", since), slog.Time("until", until),
		slog.Bool("dry_run", b.opts.DryRun), slog.Float64("lookup_rate", b.opts.LookupRate), slog.Float64("tag_rate", b.opts.TagRate))

	var producers sync.WaitGroup
	for _, region := range b.opts.Regions {
		producers.Go(func() { r.lookup(region) })
	}
	producers.Wait()
	if ctx.Err() == nil {
		var sweepers sync.WaitGroup
		for _, region := range b.opts.Regions {
			if r.lookupFailed(region) {
				r.fail(fmt.Errorf("keys of %s not listed: without its event history every key would look like one without a creation event", region))
				continue
			}
			sweepers.Go(func() { r.sweep(region) })
		}
		sweepers.Wait()
	}
	r.closeQueues()
	r.workers.Wait()

	rep := r.report(time.Since(start))
	b.log.Info("backfill finished", slog.Int("keys", rep.Summary.Keys), slog.Any("actions", rep.Summary.Actions),
		slog.Any("requests", rep.Summary.Requests), slog.Duration("duration", rep.Summary.Duration), slog.Bool("interrupted", rep.Summary.Interrupted))
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("backfill interrupted: %w", err)
	}
	if len(r.errs) > 0 {
		return rep, fmt.Errorf("backfill: %w", errors.Join(r.errs...))
	}
	return rep, nil
}

// summarize counts rows by action.
func summarize(rows []Row) map[Action]int {
	counts := make(map[Action]int, len(Actions))
	for _, row := range rows {
		counts[row.Action]++
	}
	return counts
}

// sortRows orders rows by region, key and event.
func sortRows(rows []Row) {
	slices.SortFunc(rows, func(a, b Row) int {
		if c := strings.Compare(a.Region, b.Region); c != 0 {
			return c
		}
		if c := strings.Compare(a.KeyARN, b.KeyARN); c != 0 {
			return c
		}
		return strings.Compare(a.EventID, b.EventID)
	})
}

// isPendingDeletion reports whether a KMS key state is one of deletion.
func isPendingDeletion(state string) bool {
	return state == "PendingDeletion" || state == "PendingReplicaDeletion"
}

// creationNames are the CloudTrail events that create a key, looked up one
// name at a time: a lookup by EventSource kms.amazonaws.com would page
// through every Decrypt and GenerateDataKey as well, far more calls.
var creationNames = events.CreationEventNames()
