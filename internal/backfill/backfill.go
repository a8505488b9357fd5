package backfill

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kms-autotagger/kms-autotagger/internal/audit"
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
	DefaultLookupRate = audit.DefaultLookupRate
	// DefaultTagRate is the TagResource and UntagResource requests per
	// second per account and region the backfill keeps to by default, both
	// together: the audit's share (audit.DefaultTagRate), half of KMS's
	// TagResource quota of 10 per second, which leaves the other half to
	// the live handler (it never needs more than KMS's CreateKey quota of 5
	// per second for new keys).
	DefaultTagRate = audit.DefaultTagRate
	// DefaultReadRate is the ListKeys, DescribeKey and ListResourceTags
	// requests per second per account and region, together. A key needs
	// two reads before its write, 10 per second at DefaultTagRate: twice
	// that keeps the writes fed, while reading faster would only read keys
	// long before they can be written, taking read quota from the live
	// handler and, at the start of a run, keeping the first key's reads
	// waiting behind those of keys written later. It is less than the
	// audit's (audit.DefaultReadRate), whose keys wait for lookups, not
	// writes.
	DefaultReadRate = 20.0
	// DefaultWorkers is the number of keys handled at once per region.
	DefaultWorkers = 4
	// DefaultParallel is the number of accounts backfilled at once, each
	// with all its regions at once.
	DefaultParallel = audit.DefaultParallel
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
	// Account is the key's account (for a malformed event, the account
	// whose event history holds it); Region is the key's region, where it
	// is tagged, or for a malformed event the region whose event history
	// holds it.
	Account string `json:"account"`
	Region  string `json:"region"`
	// KeyARN is the key; empty for a malformed event that names none.
	KeyARN string `json:"keyArn,omitempty"`
	// EventID and EventName are the creation event the tags derive from;
	// empty for a key without one.
	EventID   string `json:"eventId,omitempty"`
	EventName string `json:"eventName,omitempty"`
	// EventTime is when the event happened.
	EventTime time.Time `json:"eventTime,omitzero"`
	// Evidence is where the event was found: tagger.EvidenceHistory, or
	// tagger.EvidenceTrailArchive for a key older than the history found in
	// the trail's archive (Options.Archive).
	Evidence string `json:"evidence,omitempty"`
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

// PartitionReport is what a run did in one account and region.
type PartitionReport struct {
	Account string `json:"account"`
	Region  string `json:"region"`
	// Keys counts the rows of the partition, Actions by action.
	Keys    int            `json:"keys"`
	Actions map[Action]int `json:"actions"`
	// Requests counts the requests sent per operation in this account and
	// region, retries included.
	Requests map[string]int `json:"requests"`
	// LookupEventsPerSecond, TagWritesPerSecond (TagResource and
	// UntagResource) and ReadsPerSecond are the rates achieved between the
	// first and the last request of each, kept at or below the limits of
	// the Summary.
	LookupEventsPerSecond float64 `json:"lookupEventsPerSecond"`
	TagWritesPerSecond    float64 `json:"tagWritesPerSecond"`
	ReadsPerSecond        float64 `json:"readsPerSecond"`
	// ElapsedSeconds is the time from the partition's first request to its
	// last; BoundSeconds the least its rate limits allow for them.
	ElapsedSeconds float64 `json:"elapsedSeconds"`
	BoundSeconds   float64 `json:"boundSeconds"`
	// StartSeconds and EndSeconds are the times of the partition's first
	// and last request, from the start of the run.
	StartSeconds float64 `json:"startSeconds"`
	EndSeconds   float64 `json:"endSeconds"`
}

// Summary counts what a run did.
type Summary struct {
	// Accounts are the accounts backfilled, Regions the regions whose
	// event history was read in each.
	Accounts []string `json:"accounts"`
	Regions  []string `json:"regions"`
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
	// FromArchive counts the keys tagged (or to be) from a creation record
	// of the trail's archive.
	FromArchive int `json:"fromArchive,omitempty"`
	// Requests counts the requests sent per operation, retries included,
	// in every account and region.
	Requests map[string]int `json:"requests"`
	// Parallel is the number of accounts backfilled at once (each with all
	// its regions); the limits are those of each account and region.
	Parallel          int     `json:"parallel"`
	LookupEventsLimit float64 `json:"lookupEventsLimit"`
	TagWritesLimit    float64 `json:"tagWritesLimit"`
	ReadLimit         float64 `json:"readLimit"`
	// SlowestPartitionSeconds and SlowestBoundSeconds are the largest
	// ElapsedSeconds and BoundSeconds of the partitions.
	SlowestPartitionSeconds float64 `json:"slowestPartitionSeconds"`
	SlowestBoundSeconds     float64 `json:"slowestBoundSeconds"`
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

// Report is the result of a run: one row per key, sorted by account,
// region and key; the partitions by account and region.
type Report struct {
	Summary    Summary           `json:"summary"`
	Partitions []PartitionReport `json:"partitions"`
	Rows       []Row             `json:"rows"`
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
	// Stacks finds the stack that made a key CloudFormation created, and
	// its operator, for CreatedByStack and CreatedByUser (internal/awscfn),
	// as the handler does; nil leaves those two tags of such keys pending:
	// neither written nor removed.
	Stacks tagger.StackFinder
	// Accounts are the accounts to backfill, each with the clients
	// ClientsFunc gives for it. At least one.
	Accounts []string
	// Regions whose event history is read and whose keys are listed, in
	// every account. At least one. A ReplicateKey event names a replica in
	// another region, which is tagged there, listed or not.
	Regions []string
	// AccountRegions, when it has an entry for an account, are the regions
	// of that account in place of Regions (each account's enabled regions,
	// for --regions all).
	AccountRegions map[string][]string
	// Parallel is the number of accounts backfilled at once, each with all
	// its regions at once; zero means DefaultParallel.
	Parallel int
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
	// LookupRate is the LookupEvents requests per second per account and
	// region; zero means DefaultLookupRate.
	LookupRate float64
	// TagRate is the TagResource and UntagResource requests per second per
	// account and region, together; zero means DefaultTagRate.
	TagRate float64
	// ReadRate is the ListKeys, DescribeKey and ListResourceTags requests
	// per second per account and region, together; zero means
	// DefaultReadRate.
	ReadRate float64
	// Archive, when set, finds the creation records of the keys without a
	// creation event in the event history (older than its 90 days) in the
	// trail's log files in S3; such a key is tagged from its record there,
	// checked against the key as the handler checks an event (Row.Evidence
	// trail-archive). Its S3 calls keep to audit.DefaultArchiveRate per
	// account and region.
	Archive audit.CreationArchive
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
	for a, regions := range opts.AccountRegions {
		for i, r := range regions {
			if !regionName.MatchString(r) || slices.Contains(regions[:i], r) {
				return nil, fmt.Errorf("new backfiller: regions %v of account %s: %q is not a region name, or twice", regions, a, r)
			}
		}
	}
	if len(opts.Accounts) == 0 {
		return nil, errors.New("new backfiller: no accounts")
	}
	for i, a := range opts.Accounts {
		if !accountPattern.MatchString(a) {
			return nil, fmt.Errorf("new backfiller: %q is not a 12-digit account ID", a)
		}
		if slices.Contains(opts.Accounts[:i], a) {
			return nil, fmt.Errorf("new backfiller: account %s listed twice", a)
		}
	}
	opts.Accounts = slices.Clone(opts.Accounts)
	if opts.LookupRate < 0 || opts.TagRate < 0 || opts.ReadRate < 0 {
		return nil, fmt.Errorf("new backfiller: rates must be positive, got lookup %g, tag %g and read %g per second", opts.LookupRate, opts.TagRate, opts.ReadRate)
	}
	if opts.LookupRate == 0 {
		opts.LookupRate = DefaultLookupRate
	}
	if opts.TagRate == 0 {
		opts.TagRate = DefaultTagRate
	}
	if opts.ReadRate == 0 {
		opts.ReadRate = DefaultReadRate
	}
	if opts.Workers < 0 || opts.Parallel < 0 {
		return nil, fmt.Errorf("new backfiller: %d workers and %d accounts at once", opts.Workers, opts.Parallel)
	}
	if opts.Workers == 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.Parallel == 0 {
		opts.Parallel = DefaultParallel
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

// Run backfills every account, Options.Parallel at a time, each with all
// its regions at once: for each account it looks up the CreateKey and
// ReplicateKey events of every region since Options.Since and tags each key
// they name with the policy's tags, then lists each region's keys to report
// (or, with the trail archive or TagUnknown, tag) those with no creation
// event. Lookups and tagging run as a pipeline: one goroutine per region
// pages through LookupEvents, and Workers per key region tag the keys as
// their events arrive, each call within the rate limits of its account and
// region (audit.Meter, the audit's), so a run takes about as long as its
// slowest account and region.
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
	meter := audit.NewMeter(audit.Rates{Read: b.opts.ReadRate, Lookup: b.opts.LookupRate, Write: b.opts.TagRate, Archive: audit.DefaultArchiveRate})
	b.log.Info("backfill started", slog.Any("accounts", b.opts.Accounts), slog.Any("regions", b.opts.Regions), slog.Time("since", since), slog.Time("until", until),
		slog.Bool("dry_run", b.opts.DryRun), slog.Float64("lookup_rate", b.opts.LookupRate), slog.Float64("tag_rate", b.opts.TagRate),
		slog.Float64("read_rate", b.opts.ReadRate), slog.Int("parallel", b.opts.Parallel))

	var (
		mu   sync.Mutex
		runs []*run
	)
	progress := &progressState{b: b}
	audit.ForEach(ctx, b.opts.Parallel, b.opts.Accounts, func(account string) {
		r := newRun(ctx, b, account, since, until, meter, progress)
		mu.Lock()
		runs = append(runs, r)
		mu.Unlock()
		r.execute()
	})

	rep := report(ctx, b, runs, meter, since, until, start, time.Since(start))
	b.log.Info("backfill finished", slog.Int("keys", rep.Summary.Keys), slog.Any("actions", rep.Summary.Actions),
		slog.Any("requests", rep.Summary.Requests), slog.Duration("duration", rep.Summary.Duration), slog.Bool("interrupted", rep.Summary.Interrupted))
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("backfill interrupted: %w", err)
	}
	if len(rep.Summary.Errors) > 0 {
		var errs []error
		for _, r := range runs {
			errs = append(errs, r.errs...)
		}
		return rep, fmt.Errorf("backfill: %w", errors.Join(errs...))
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

// sortRows orders rows by account, region, key and event.
func sortRows(rows []Row) {
	slices.SortFunc(rows, func(a, b Row) int {
		if c := strings.Compare(a.Account, b.Account); c != 0 {
			return c
		}
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

var (
	// accountPattern is a 12-digit account ID.
	accountPattern = regexp.MustCompile(`^\d{12}$`)
	// regionName is the form of a region name.
	regionName = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d{1,2}$`)
)

// regionsOf returns the regions of account.
func (b *Backfiller) regionsOf(account string) []string {
	if r := b.opts.AccountRegions[account]; len(r) > 0 {
		return r
	}
	return b.opts.Regions
}
