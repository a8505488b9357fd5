package sweep

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/kms-autotagger/kms-autotagger/internal/audit"
	"github.com/kms-autotagger/kms-autotagger/internal/metrics"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// Message kinds and version.
const (
	// MessageKind is the kind of every sweep message.
	MessageKind = "kms-autotagger.sweep"
	// MessageVersion is the version of the message format.
	MessageVersion = 1
	// MaxShards is the most shards a partition is cut into: at the default
	// lookup rate a shard of a 15-minute invocation holds some 800 keys,
	// so 4096 shards is over three million keys in one account and region.
	MaxShards = 4096
)

// Message is one partition of a sweep (or one shard of it), the body of
// one SQS message: the keys of Account in Region whose shard of Shards is
// Shard.
type Message struct {
	Version int    `json:"version"`
	Kind    string `json:"kind"`
	// Run names the sweep the message belongs to: the schedule event's id.
	Run     string `json:"run"`
	Account string `json:"account"`
	Region  string `json:"region"`
	// Shard of Shards: 0 of 1 for a whole partition.
	Shard  int `json:"shard"`
	Shards int `json:"shards"`
	// Planned is when the run was planned.
	Planned time.Time `json:"planned"`
}

// Partition returns the account and region of m.
func (m Message) Partition() audit.Partition {
	return audit.Partition{Account: m.Account, Region: m.Region}
}

func (m Message) String() string {
	return fmt.Sprintf("%s/%s shard %d of %d", m.Account, m.Region, m.Shard, m.Shards)
}

var (
	accountPattern = regexp.MustCompile(`^\d{12}$`)
	regionPattern  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d{1,2}$`)
	runPattern     = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)
)

// check reports what is wrong with m's form; "" when nothing.
func (m Message) check() string {
	switch {
	case m.Version != MessageVersion || m.Kind != MessageKind:
		return fmt.Sprintf("not a sweep message (version %d, kind %q; want %d, %q)", m.Version, m.Kind, MessageVersion, MessageKind)
	case !runPattern.MatchString(m.Run):
		return fmt.Sprintf("run %q is not 1 to 64 of letters, digits and ._:-", m.Run)
	case !accountPattern.MatchString(m.Account):
		return fmt.Sprintf("account %q is not a 12-digit account ID", m.Account)
	case !regionPattern.MatchString(m.Region):
		return fmt.Sprintf("region %q is not a region name", m.Region)
	case m.Shards < 1 || m.Shards > MaxShards || m.Shard < 0 || m.Shard >= m.Shards:
		return fmt.Sprintf("shard %d of %d does not exist (at most %d shards)", m.Shard, m.Shards, MaxShards)
	}
	return ""
}

// inShard reports whether the key keyARN is in shard i of n.
func inShard(keyARN string, i, n int) bool {
	if n <= 1 {
		return true
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(keyARN[strings.LastIndex(keyARN, "/")+1:]))
	return int(h.Sum32()%uint32(n)) == i
}

// split returns the m shards that together hold exactly the keys of
// shard, in a partition cut into m times as many.
func split(msg Message, m int) []Message {
	out := make([]Message, m)
	for k := range m {
		out[k] = msg
		out[k].Shard = msg.Shard + k*msg.Shards
		out[k].Shards = msg.Shards * m
	}
	return out
}

// QueueAPI is the SQS call the sweep makes: SendMessageBatch, to its
// queue.
type QueueAPI interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

var _ QueueAPI = (*sqs.Client)(nil)

// Scope is what the sweep covers.
type Scope struct {
	// Accounts returns the accounts to sweep (the function's own, a list,
	// or the organization's ACTIVE accounts).
	Accounts func(ctx context.Context) ([]string, error)
	// Regions returns the regions to sweep in account.
	Regions func(ctx context.Context, account string) ([]string, error)
}

// Options configure a Sweeper.
type Options struct {
	// Policy is the handler's tag policy.
	Policy *tagger.Policy
	// Clients are the audit's clients of every account and region.
	Clients audit.ClientsFunc
	// Scope is what the sweep covers; a message outside it is refused.
	Scope Scope
	// Queue and QueueURL are the sweep queue. A URL ending in .fifo is a
	// FIFO queue, whose messages get the partition as MessageGroupId and a
	// deduplication ID.
	Queue    QueueAPI
	QueueURL string
	// Repair repairs what is not compliant.
	Repair bool
	// LookupRate, TagRate and ReadRate are the requests per second per
	// account and region (audit.Options); zero means the audit's
	// defaults.
	LookupRate, TagRate, ReadRate float64
	// KeyWorkers is the number of keys of a partition audited at once;
	// zero means audit.DefaultKeyWorkers.
	KeyWorkers int
	// Archive is the trail archive, nil for none.
	Archive audit.CreationArchive
	// Stacks finds the stack and operator of keys CloudFormation made
	// (CreatedByStack, CreatedByUser), as the handler does; nil for none.
	Stacks tagger.StackFinder
	// Metrics receives a coverage line per partition; nil writes none.
	Metrics *metrics.Emitter
	// Log is the function's logger; nil means slog.Default().
	Log *slog.Logger
	// Reserve is the time kept before the invocation's deadline, to report
	// and send what is left; zero means DefaultReserve.
	Reserve time.Duration
	// Overhead is the time a partition is expected to take beyond its
	// lookups (clients, ListKeys, the last key's reads and writes); zero
	// means DefaultOverhead.
	Overhead time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultReserve is the time a partition leaves before the invocation's
// deadline: to write its coverage line, and to send the shards of what it
// could not finish.
const DefaultReserve = 30 * time.Second

// estimateFactor and Overhead make the time a partition is expected to
// take out of its keys: one LookupEvents each at the lookup rate (AWS
// managed keys need none, replicas two), with a margin.
const (
	estimateFactor = 1.2
	// DefaultOverhead is Options.Overhead's default.
	DefaultOverhead = 5 * time.Second
)

// Sweeper plans and processes sweeps. It is safe for concurrent use.
type Sweeper struct {
	opts Options
	log  *slog.Logger
}

// New checks opts and returns the Sweeper.
func New(opts Options) (*Sweeper, error) {
	switch {
	case opts.Policy == nil:
		return nil, errors.New("new sweeper: no tag policy")
	case opts.Clients == nil:
		return nil, errors.New("new sweeper: no clients")
	case opts.Scope.Accounts == nil || opts.Scope.Regions == nil:
		return nil, errors.New("new sweeper: no scope")
	case opts.Queue == nil || opts.QueueURL == "":
		return nil, errors.New("new sweeper: no queue")
	}
	if opts.LookupRate < 0 || opts.TagRate < 0 || opts.ReadRate < 0 {
		return nil, fmt.Errorf("new sweeper: rates %g, %g, %g are not positive", opts.LookupRate, opts.TagRate, opts.ReadRate)
	}
	if opts.LookupRate == 0 {
		opts.LookupRate = audit.DefaultLookupRate
	}
	if opts.Reserve <= 0 {
		opts.Reserve = DefaultReserve
	}
	if opts.Overhead <= 0 {
		opts.Overhead = DefaultOverhead
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	return &Sweeper{opts: opts, log: log}, nil
}

// PlanResult is what Plan did.
type PlanResult struct {
	Run        string    `json:"run"`
	Planned    time.Time `json:"planned"`
	Accounts   int       `json:"accounts"`
	Partitions int       `json:"partitions"`
	// Sent is the number of messages sent; Errors what kept accounts out.
	Sent   int      `json:"sent"`
	Errors []string `json:"errors,omitempty"`
}

// Plan sends one message per account and region of the scope to the
// queue, for the run named run (the schedule event's id). An account whose
// regions cannot be listed is left out, with an error in the result and a
// failed coverage line; the error is returned when nothing could be sent
// (then the schedule's next run starts over) or a message could not be.
func (s *Sweeper) Plan(ctx context.Context, run string) (PlanResult, error) {
	now := s.opts.Now().UTC()
	if !runPattern.MatchString(run) {
		run = now.Format("20060102T150405Z")
	}
	res := PlanResult{Run: run, Planned: now}
	accounts, err := s.opts.Scope.Accounts(ctx)
	if err != nil {
		return res, fmt.Errorf("sweep plan: %w", err)
	}
	res.Accounts = len(accounts)
	var msgs []Message
	for _, a := range accounts {
		regions, err := s.opts.Scope.Regions(ctx, a)
		if err != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("account %s: %v", a, err))
			s.log.Error("sweep: regions of an account not listed", slog.String("account", a), slog.String("error", err.Error()))
			s.record(metrics.Coverage{Account: a, Region: metrics.Unknown, Failed: true})
			continue
		}
		for _, r := range regions {
			msgs = append(msgs, Message{Version: MessageVersion, Kind: MessageKind, Run: run, Account: a, Region: r, Shard: 0, Shards: 1, Planned: now})
		}
	}
	res.Partitions = len(msgs)
	res.Sent, err = s.send(ctx, msgs)
	s.log.Info("sweep planned", slog.String("run", run), slog.Int("accounts", res.Accounts), slog.Int("partitions", res.Partitions), slog.Int("sent", res.Sent))
	if err != nil {
		return res, fmt.Errorf("sweep plan: %w", err)
	}
	if res.Sent == 0 && len(res.Errors) > 0 {
		return res, fmt.Errorf("sweep plan: no partition to sweep: %s", strings.Join(res.Errors, "; "))
	}
	return res, nil
}

// fifo reports whether the queue is a FIFO queue.
func (s *Sweeper) fifo() bool { return strings.HasSuffix(s.opts.QueueURL, ".fifo") }

// send sends msgs, ten per SendMessageBatch, and returns how many were
// sent. An entry SQS fails is tried once more.
func (s *Sweeper) send(ctx context.Context, msgs []Message) (int, error) {
	sent := 0
	for chunk := range slices.Chunk(msgs, 10) {
		entries := make([]sqstypes.SendMessageBatchRequestEntry, len(chunk))
		for i, m := range chunk {
			body, err := json.Marshal(m)
			if err != nil {
				return sent, err
			}
			e := sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(string(body))}
			if s.fifo() {
				e.MessageGroupId = aws.String(m.Account + "." + m.Region)
				e.MessageDeduplicationId = aws.String(fmt.Sprintf("%s.%s.%s.%d-%d", m.Run, m.Account, m.Region, m.Shard, m.Shards))
			}
			entries[i] = e
		}
		for attempt := 0; len(entries) > 0; attempt++ {
			out, err := s.opts.Queue.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(s.opts.QueueURL), Entries: entries})
			if err != nil {
				return sent, fmt.Errorf("sending %d messages to %s: %w", len(entries), s.opts.QueueURL, err)
			}
			sent += len(out.Successful)
			if len(out.Failed) == 0 {
				break
			}
			if attempt > 0 {
				f := out.Failed[0]
				return sent, fmt.Errorf("sending to %s: %d messages failed, the first %s: %s", s.opts.QueueURL, len(out.Failed), aws.ToString(f.Code), aws.ToString(f.Message))
			}
			var again []sqstypes.SendMessageBatchRequestEntry
			for _, f := range out.Failed {
				for _, e := range entries {
					if aws.ToString(e.Id) == aws.ToString(f.Id) {
						again = append(again, e)
					}
				}
			}
			entries = again
		}
	}
	return sent, nil
}

// record writes one coverage line; a failure to write it is logged.
func (s *Sweeper) record(c metrics.Coverage) {
	if err := s.opts.Metrics.RecordCoverage(c); err != nil {
		s.log.Warn("sweep: writing the coverage metrics failed", slog.String("error", err.Error()))
	}
}

// inScope reports whether account and region are the sweep's, asking the
// scope once per account per invocation.
type scopeCache struct {
	mu       sync.Mutex
	accounts []string
	regions  map[string][]string
}

func (s *Sweeper) inScope(ctx context.Context, c *scopeCache, m Message) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.accounts == nil {
		accounts, err := s.opts.Scope.Accounts(ctx)
		if err != nil {
			return false, fmt.Errorf("the sweep's accounts: %w", err)
		}
		c.accounts, c.regions = accounts, map[string][]string{}
	}
	if !slices.Contains(c.accounts, m.Account) {
		return false, nil
	}
	regions, ok := c.regions[m.Account]
	if !ok {
		var err error
		if regions, err = s.opts.Scope.Regions(ctx, m.Account); err != nil {
			return false, fmt.Errorf("the sweep's regions of account %s: %w", m.Account, err)
		}
		c.regions[m.Account] = regions
	}
	return slices.Contains(regions, m.Region), nil
}
