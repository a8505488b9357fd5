package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kms-autotagger/kms-autotagger/internal/events"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
	"github.com/kms-autotagger/kms-autotagger/internal/trailarchive"
)

// Defaults of Options.
const (
	// DefaultParallel is how many partitions (account and region) are
	// audited at once.
	DefaultParallel = 8
	// DefaultKeyWorkers is how many keys of one partition are audited at
	// once: enough to keep the partition's LookupEvents bucket busy while
	// the other calls of a key are under way.
	DefaultKeyWorkers = 4
	// DefaultLookupRate is CloudTrail's LookupEvents quota: two requests
	// per second, per account, per region. The audit needs one (rarely
	// two) per key, so it is the bound of a partition's time.
	DefaultLookupRate = 2.0
	// DefaultTagRate is the TagResource and UntagResource requests per
	// second per account and region a repair sends, both together. KMS
	// allows 10 of each per second per account and region, shared with
	// everyone else who tags keys there, the live handler first. New keys
	// cannot come faster than KMS's CreateKey quota of 5 per second, so the
	// handler never needs more than 5 TagResource per second for them: the
	// repair takes the other half, and a handler that bursts beyond it is
	// throttled only into its own retries, not failed.
	DefaultTagRate = 5.0
	// DefaultReadRate is the ListKeys, DescribeKey and ListResourceTags
	// requests per second per account and region, all together: half of
	// the smallest read quota KMS ever documented (ListKeys' 100 per
	// second; it is 500 now, DescribeKey's and ListResourceTags' 2000), so
	// that the live handler's DescribeKey and ListResourceTags always have
	// room. A key needs two reads per LookupEvents, 4 per second at the
	// lookup quota: the reads never bound a run, and the first lookups
	// wait for no more than a few of them.
	DefaultReadRate = 50.0
	// MaxHistory is how far back CloudTrail's event history goes: a key
	// created before then has no creation event to find.
	MaxHistory = 90 * 24 * time.Hour
)

// Status is what the audit found for one key. Every row has exactly one.
type Status string

// The statuses, from best to worst; a key with several findings gets the
// worst (pending-deletion and failed aside).
const (
	// StatusCompliant: the key carries exactly its governance tags, as the
	// policy derives them from its creation event.
	StatusCompliant Status = "compliant"
	// StatusMissing: governance tags the key should carry are missing
	// (Row.Missing, and Row.Dropped when there is no room for them).
	StatusMissing Status = "missing"
	// StatusWrong: governance tags carry values other than the truth
	// (Row.Wrong), such as a CreatedBy someone passed to CreateKey.
	StatusWrong Status = "wrong"
	// StatusForged: the key carries owned keys that must go (Row.Forged):
	// case variants of governance keys (IAM ignores case, so createdby
	// grants what CreatedBy does), or owned keys with no true value for it
	// (CreatedByRole on a key an IAM user created).
	StatusForged Status = "forged"
	// StatusUnattributable: CloudTrail's event history holds no creation
	// event of the key (it keeps 90 days), so its governance tags cannot be
	// checked, nor repaired. Row.Forged names the case variants it carries,
	// which are forgeries whatever the event.
	StatusUnattributable Status = "unattributable"
	// StatusPendingDeletion: the key is pending deletion; it is not
	// checked and does not count against the coverage.
	StatusPendingDeletion Status = "pending-deletion"
	// StatusFailed: the key could not be read (Row.ErrorCode, Row.Reason).
	StatusFailed Status = "failed"
)

// Statuses lists every status, in the order reports show them.
var Statuses = []Status{StatusCompliant, StatusMissing, StatusWrong, StatusForged, StatusUnattributable, StatusPendingDeletion, StatusFailed}

// Action is what a repair did with a key that is not compliant.
type Action string

// The actions of a repair; a row without one was not touched.
const (
	// ActionRepaired: UntagResource removed Row.Removed and TagResource
	// wrote Row.Written; the key now carries exactly its governance tags
	// (but Row.Dropped, for which it has no room).
	ActionRepaired Action = "repaired"
	// ActionNotRepaired: the key is not compliant but cannot be repaired
	// (Row.Reason): unattributable, unreadable, or no room for its tags.
	ActionNotRepaired Action = "not-repaired"
	// ActionRepairFailed: a call of the repair failed (Row.ErrorCode).
	ActionRepairFailed Action = "repair-failed"
)

// Mismatch is a governance tag with a value other than the truth.
type Mismatch struct {
	// Key is the tag key, exactly as configured.
	Key string `json:"key"`
	// Value is the value the key carries.
	Value string `json:"value"`
	// Want is the true value.
	Want string `json:"want"`
}

// Row is the audit of one customer managed key.
type Row struct {
	Account string `json:"account"`
	Region  string `json:"region"`
	KeyARN  string `json:"keyArn"`
	KeyID   string `json:"keyId"`
	// KeyState is KMS's (Enabled, Disabled, PendingDeletion...).
	KeyState string `json:"keyState,omitempty"`
	// CreationDate is the key's, as KMS says; DeletionDate when it is
	// pending deletion.
	CreationDate time.Time `json:"creationDate,omitzero"`
	DeletionDate time.Time `json:"deletionDate,omitzero"`
	// Status is what the audit found.
	Status Status `json:"status"`
	// EventID, EventName and EventTime are the creation event found in
	// CloudTrail's event history (or the trail's archive), which the
	// expected tags derive from; Evidence says where it was found:
	// tagger.EvidenceHistory or tagger.EvidenceTrailArchive.
	EventID   string    `json:"eventId,omitempty"`
	EventName string    `json:"eventName,omitempty"`
	EventTime time.Time `json:"eventTime,omitzero"`
	Evidence  string    `json:"evidence,omitempty"`
	// Expected are the governance tags the key must carry, in the policy's
	// priority order.
	Expected []tagger.Tag `json:"expected,omitempty"`
	// Missing are expected tags the key does not carry, with their true
	// values.
	Missing []tagger.Tag `json:"missing,omitempty"`
	// Wrong are expected tags the key carries with another value.
	Wrong []Mismatch `json:"wrong,omitempty"`
	// Forged are the owned tags the key carries that must go, with the
	// values they carry: case variants of governance keys, and owned keys
	// with no true value for the key.
	Forged []tagger.Tag `json:"forged,omitempty"`
	// Dropped are expected tags for which the key has no room within the
	// 50 tags KMS allows next to the tags the tagger does not own.
	Dropped []tagger.Tag `json:"dropped,omitempty"`
	// Action is what the repair did; empty without --repair or for a key
	// that needs none.
	Action Action `json:"action,omitempty"`
	// Written and Removed are what the repair wrote and removed.
	Written []tagger.Tag `json:"written,omitempty"`
	Removed []string     `json:"removed,omitempty"`
	// Reason explains the status (and the action) in a sentence.
	Reason string `json:"reason,omitempty"`
	// ErrorCode names the failure of a failed key or a failed repair, as
	// tagger.Classify names it.
	ErrorCode string `json:"errorCode,omitempty"`
}

// Compliant reports whether the key counts as compliant after the run: it
// is compliant, pending deletion (which does not count), or repaired with
// room for all its tags.
func (r Row) Compliant() bool {
	switch {
	case r.Status == StatusCompliant, r.Status == StatusPendingDeletion:
		return true
	case r.Action == ActionRepaired:
		return len(r.Dropped) == 0
	}
	return false
}

// Partition is one account and region to audit.
type Partition struct {
	Account string `json:"account"`
	Region  string `json:"region"`
}

func (p Partition) String() string { return p.Account + "/" + p.Region }

// PartitionReport is the audit of one account and region.
type PartitionReport struct {
	Account string `json:"account"`
	Region  string `json:"region"`
	// Keys is the number of customer managed keys (rows); AWSManagedKeys
	// those left out.
	Keys           int `json:"keys"`
	AWSManagedKeys int `json:"awsManagedKeys"`
	// Statuses counts the rows by status; Repaired those repaired.
	Statuses map[Status]int `json:"statuses"`
	Repaired int            `json:"repaired"`
	// Coverage is the percentage of compliant keys among the customer
	// managed keys not pending deletion, before any repair; nil when there
	// is none. CoverageAfterRepair counts the repaired ones too (with
	// --repair only).
	Coverage            *float64 `json:"coverage"`
	CoverageAfterRepair *float64 `json:"coverageAfterRepair,omitempty"`
	// Elapsed is how long the partition took, from its first call to its
	// last; ElapsedSeconds the same in seconds. BoundSeconds is the least
	// time its rate limits allow for the requests it sent (Usage.Bound):
	// the partition took about that long when its limits alone held it
	// back.
	Elapsed        time.Duration `json:"-"`
	ElapsedSeconds float64       `json:"elapsedSeconds"`
	BoundSeconds   float64       `json:"boundSeconds"`
	// Requests counts the requests sent per operation in this account and
	// region during the run, retries included: the LookupEvents of the
	// replicas of other regions whose primary is here count here, in this
	// account and region's quota.
	Requests map[string]int `json:"requests"`
	// LookupEvents is the number of LookupEvents requests;
	// LookupEventsPerSecond the rate achieved between the first and the
	// last of them, which the token bucket keeps at or below
	// LookupEventsLimit (zero with fewer than two requests).
	LookupEvents          int     `json:"lookupEvents"`
	LookupEventsPerSecond float64 `json:"lookupEventsPerSecond"`
	LookupEventsLimit     float64 `json:"lookupEventsLimit"`
	// TagWrites, TagWritesPerSecond and TagWritesLimit are the same for
	// TagResource and UntagResource together.
	TagWrites          int     `json:"tagWrites"`
	TagWritesPerSecond float64 `json:"tagWritesPerSecond"`
	TagWritesLimit     float64 `json:"tagWritesLimit"`
	// Error is what stopped the partition (its keys could not be listed);
	// its rows are then incomplete.
	Error string `json:"error,omitempty"`
}

// Summary adds up a run.
type Summary struct {
	// Accounts and Regions are those audited, sorted.
	Accounts   []string `json:"accounts"`
	Regions    []string `json:"regions"`
	Partitions int      `json:"partitions"`
	// Repair is true when the run repaired what it could.
	Repair bool `json:"repair"`
	// Keys, AWSManagedKeys, Statuses, Repaired, Coverage and
	// CoverageAfterRepair are as in PartitionReport, over every partition.
	Keys                int            `json:"keys"`
	AWSManagedKeys      int            `json:"awsManagedKeys"`
	Statuses            map[Status]int `json:"statuses"`
	Repaired            int            `json:"repaired"`
	Coverage            *float64       `json:"coverage"`
	CoverageAfterRepair *float64       `json:"coverageAfterRepair,omitempty"`
	// NonCompliant is the number of keys that are not compliant after the
	// run (Row.Compliant), which makes the command exit 1.
	NonCompliant int `json:"nonCompliant"`
	// Unattributable are the keys left unattributable, by ARN.
	Unattributable []string `json:"unattributable,omitempty"`
	// Parallel is the number of partitions audited at once; the limits
	// are those of each partition.
	Parallel          int     `json:"parallel"`
	LookupEventsLimit float64 `json:"lookupEventsLimit"`
	TagWritesLimit    float64 `json:"tagWritesLimit"`
	ReadLimit         float64 `json:"readLimit"`
	// ElapsedSeconds is the run's time; SlowestPartitionSeconds and
	// SumPartitionSeconds those of its slowest partition and of all of
	// them added up.
	Elapsed                 time.Duration `json:"-"`
	ElapsedSeconds          float64       `json:"elapsedSeconds"`
	SlowestPartitionSeconds float64       `json:"slowestPartitionSeconds"`
	SumPartitionSeconds     float64       `json:"sumPartitionSeconds"`
	// SlowestBoundSeconds is the largest BoundSeconds of the partitions:
	// with every partition at once, the least a run can take.
	SlowestBoundSeconds float64 `json:"slowestBoundSeconds"`
	// FromArchive counts the keys whose creation record was found in the
	// trail's archive (Options.Archive).
	FromArchive int `json:"fromArchive,omitempty"`
	// Interrupted is true when the run was cancelled: the rows are what
	// was done by then.
	Interrupted bool `json:"interrupted"`
	// Errors are what stopped partitions.
	Errors []string `json:"errors,omitempty"`
}

// Report is the result of a run: partitions sorted by account and region,
// keys by account, region and key ARN.
type Report struct {
	Summary    Summary           `json:"summary"`
	Partitions []PartitionReport `json:"partitions"`
	Keys       []Row             `json:"keys"`
}

// Compliant reports whether every key is compliant after the run and every
// partition was read: what exit code 0 means.
func (r *Report) Compliant() bool {
	return r.Summary.NonCompliant == 0 && len(r.Summary.Errors) == 0 && !r.Summary.Interrupted
}

// Progress is a snapshot of a run, for a progress display.
type Progress struct {
	// Partitions is the number to audit; PartitionsDone those finished.
	Partitions, PartitionsDone int
	// Keys is the number of keys listed so far (AWS managed ones
	// included); KeysDone those audited.
	Keys, KeysDone int
}

// Options configure an Auditor.
type Options struct {
	// Partitions are the accounts and regions to audit. At least one.
	Partitions []Partition
	// Stacks finds the stack that made a key CloudFormation created, and
	// its operator, for CreatedByStack and CreatedByUser (internal/awscfn),
	// as the handler does; nil leaves those two tags of such keys pending:
	// neither expected nor removed.
	Stacks tagger.StackFinder
	// Repair repairs the keys that are not compliant and whose creation
	// event CloudTrail's history holds.
	Repair bool
	// Parallel is the number of partitions audited at once; zero means
	// DefaultParallel.
	Parallel int
	// KeyWorkers is the number of keys of a partition audited at once;
	// zero means DefaultKeyWorkers.
	KeyWorkers int
	// LookupRate, TagRate and ReadRate are the requests per second per
	// account and region of LookupEvents, of TagResource and
	// UntagResource together, and of ListKeys, DescribeKey and
	// ListResourceTags together; zero means DefaultLookupRate,
	// DefaultTagRate and DefaultReadRate.
	LookupRate, TagRate, ReadRate float64
	// ArchiveRate is the trail archive's S3 requests per second per
	// account and region; zero means DefaultArchiveRate.
	ArchiveRate float64
	// Archive, when set, finds the creation records of the keys the event
	// history has none of (older than its 90 days) in the trail's log files
	// in S3: such a key is attributed, and repaired, from its record there
	// (Row.Evidence trail-archive). *trailarchive.Archive is one.
	Archive CreationArchive
	// KeyFilter, when set, audits only the keys of ListKeys for which it
	// returns true (the sweep's shards of a partition); the others get no
	// row and no call.
	KeyFilter func(keyARN string) bool
	// Progress, when set, is called as the run goes, one call at a time.
	Progress func(Progress)
	// Now is the clock keys' ages are measured by; nil means time.Now.
	Now func() time.Time
}

// CreationArchive finds a key's creation record beyond CloudTrail's event
// history, as *trailarchive.Archive does; optFns are added to its S3 calls
// (the partition's rate limit). Its error matches trailarchive.ErrNotFound
// when it has none.
type CreationArchive interface {
	FindCreation(ctx context.Context, q trailarchive.Query, optFns ...func(*s3.Options)) (*events.KeyEvent, error)
}

var _ CreationArchive = (*trailarchive.Archive)(nil)

// Auditor audits the keys of Options.Partitions with the tagger's policy.
type Auditor struct {
	policy  *tagger.Policy
	clients ClientsFunc
	log     *slog.Logger
	opts    Options
	meter   *Meter
}

var (
	accountPattern = regexp.MustCompile(`^\d{12}$`)
	regionPattern  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+$`)
)

// New checks opts and returns an Auditor that judges keys by policy (the
// Lambda's), calling AWS with the clients clients returns and logging to
// log (nil means slog.Default()).
func New(policy *tagger.Policy, clients ClientsFunc, log *slog.Logger, opts Options) (*Auditor, error) {
	if policy == nil {
		return nil, errors.New("new auditor: no tag policy")
	}
	if clients == nil {
		return nil, errors.New("new auditor: no clients")
	}
	if log == nil {
		log = slog.Default()
	}
	if len(opts.Partitions) == 0 {
		return nil, errors.New("new auditor: no account and region to audit")
	}
	for i, p := range opts.Partitions {
		if !accountPattern.MatchString(p.Account) {
			return nil, fmt.Errorf("new auditor: %q is not a 12-digit account ID", p.Account)
		}
		if !regionPattern.MatchString(p.Region) {
			return nil, fmt.Errorf("new auditor: %q is not a region name such as us-east-1", p.Region)
		}
		if slices.Contains(opts.Partitions[:i], p) {
			return nil, fmt.Errorf("new auditor: account %s region %s listed twice", p.Account, p.Region)
		}
	}
	opts.Partitions = slices.Clone(opts.Partitions)
	for _, r := range []struct {
		name string
		v    *float64
		def  float64
	}{{"lookup", &opts.LookupRate, DefaultLookupRate}, {"tag", &opts.TagRate, DefaultTagRate}, {"read", &opts.ReadRate, DefaultReadRate}, {"archive", &opts.ArchiveRate, DefaultArchiveRate}} {
		switch {
		case *r.v < 0 || *r.v != *r.v:
			return nil, fmt.Errorf("new auditor: %s rate %g is not a positive number of requests per second", r.name, *r.v)
		case *r.v == 0:
			*r.v = r.def
		}
	}
	if opts.Parallel < 0 || opts.KeyWorkers < 0 {
		return nil, fmt.Errorf("new auditor: %d partitions and %d keys at once", opts.Parallel, opts.KeyWorkers)
	}
	if opts.Parallel == 0 {
		opts.Parallel = DefaultParallel
	}
	if opts.KeyWorkers == 0 {
		opts.KeyWorkers = DefaultKeyWorkers
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Auditor{policy: policy, clients: clients, log: log, opts: opts,
		meter: NewMeter(Rates{Read: opts.ReadRate, Lookup: opts.LookupRate, Write: opts.TagRate, Archive: opts.ArchiveRate})}, nil
}

// Run audits every partition, Options.Parallel at a time, and returns the
// report. It returns an error with the report when a partition could not
// be read, and when ctx is cancelled it stops promptly and returns what was
// done by then with Summary.Interrupted and ctx's error. Keys that are not
// compliant are not an error: see Report.Compliant.
func (a *Auditor) Run(ctx context.Context) (*Report, error) {
	start := time.Now()
	r := newRun(ctx, a)
	a.log.Info("audit started", slog.Int("partitions", len(a.opts.Partitions)), slog.Int("parallel", a.opts.Parallel),
		slog.Bool("repair", a.opts.Repair), slog.Float64("lookup_rate", a.opts.LookupRate),
		slog.Float64("tag_rate", a.opts.TagRate), slog.Float64("read_rate", a.opts.ReadRate))

	ForEach(ctx, a.opts.Parallel, a.opts.Partitions, r.partition)

	rep := r.report(time.Since(start))
	a.log.Info("audit finished", slog.Int("keys", rep.Summary.Keys), slog.Any("statuses", rep.Summary.Statuses),
		slog.Int("repaired", rep.Summary.Repaired), slog.Int("non_compliant", rep.Summary.NonCompliant),
		slog.Duration("duration", rep.Summary.Elapsed), slog.Bool("interrupted", rep.Summary.Interrupted))
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("audit interrupted: %w", err)
	}
	if len(rep.Summary.Errors) > 0 {
		return rep, fmt.Errorf("audit: %s", strings.Join(rep.Summary.Errors, "; "))
	}
	return rep, nil
}

// percent returns 100*n/d, nil when d is zero.
func percent(n, d int) *float64 {
	if d == 0 {
		return nil
	}
	p := 100 * float64(n) / float64(d)
	return &p
}
