package audit_test

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/kms-autotagger/kms-autotagger/internal/audit"
	"github.com/kms-autotagger/kms-autotagger/internal/audit/audittest"
	"github.com/kms-autotagger/kms-autotagger/internal/events"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws/localawstest"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

const (
	acctA = "111122223333"
	acctB = "444455556666"
)

// staticTag is the policy's static tag, which every attributable key must
// carry too.
var staticTag = tagger.Tag{Key: "Governance", Value: "kms-autotagger"}

// world is one local-kms per account (local-kms serves one account per
// process), each serving the regions of the world, and one CloudTrail
// stand-in per account with CloudTrail's real LookupEvents quota of 2 per
// second per region: each account has its own event history and quota, as
// in AWS. Clients reach them directly, routed by account in clients().
type world struct {
	regions []string
	kms     map[string]*localaws.KMS
	trails  map[string]*localaws.CloudTrail
	policy  *tagger.Policy
}

func startWorld(tb testing.TB, accounts, regions []string) *world {
	tb.Helper()
	org := audittest.StartOrganization(tb, accounts, regions, 0)
	w := &world{regions: regions, kms: org.KMS, trails: org.Trails}
	var err error
	if w.policy, err = tagger.NewPolicy(tagger.DefaultNames(), "", []tagger.Tag{staticTag}); err != nil {
		tb.Fatal(err)
	}
	return w
}

// clients routes each account to its stand-ins.
func (w *world) clients() audit.ClientsFunc {
	return func(_ context.Context, account, region string) (audit.Clients, error) {
		k, ok := w.kms[account]
		if !ok {
			return audit.Clients{}, &accountError{account}
		}
		return audit.Clients{
			KMS:        k.Client(region, func(o *kms.Options) { o.RetryMaxAttempts = 3 }),
			CloudTrail: w.trails[account].Client(region, func(o *cloudtrail.Options) { o.RetryMaxAttempts = 3 }),
		}, nil
	}
}

type accountError struct{ account string }

func (e *accountError) Error() string { return "no stand-in for account " + e.account }

func (w *world) partitions() []audit.Partition {
	var ps []audit.Partition
	for _, account := range slices.Sorted(maps.Keys(w.kms)) {
		for _, region := range w.regions {
			ps = append(ps, audit.Partition{Account: account, Region: region})
		}
	}
	return ps
}

func (w *world) auditor(tb testing.TB, opts audit.Options) *audit.Auditor {
	tb.Helper()
	if opts.Partitions == nil {
		opts.Partitions = w.partitions()
	}
	a, err := audit.New(w.policy, w.clients(), slog.New(slog.NewTextHandler(io.Discard, nil)), opts)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

func accountOf(keyARN string) string { return strings.Split(keyARN, ":")[4] }
func regionOf(keyARN string) string  { return strings.Split(keyARN, ":")[3] }

func (w *world) client(keyARN string) *kms.Client {
	return w.kms[accountOf(keyARN)].Client(regionOf(keyARN))
}

func (w *world) createKey(tb testing.TB, account, region string) string {
	tb.Helper()
	out, err := w.kms[account].Client(region).CreateKey(context.Background(), &kms.CreateKeyInput{})
	if err != nil {
		tb.Fatalf("CreateKey in %s %s: %v", account, region, err)
	}
	return aws.ToString(out.KeyMetadata.Arn)
}

// addEvent puts record into the event history of its key's account and
// returns the event it is for the tagger.
func (w *world) addEvent(tb testing.TB, account string, record []byte) *events.KeyEvent {
	tb.Helper()
	if err := w.trails[account].AddEvent(audittest.RegionOf(record), record); err != nil {
		tb.Fatal(err)
	}
	dec, err := events.DecodeRecord(record)
	if err != nil {
		tb.Fatal(err)
	}
	dec.Key.Evidence = tagger.EvidenceHistory // as the audit finds it
	return dec.Key
}

// created makes a key created by by now, with its CreateKey in the event
// history, and returns it with the governance tags it must carry.
func (w *world) created(tb testing.TB, account, region, eventID string, by audittest.Principal) (string, []tagger.Tag) {
	tb.Helper()
	key := w.createKey(tb, account, region)
	ev := w.addEvent(tb, account, audittest.CreateKeyRecord(eventID, key, by, time.Now()))
	return key, w.policy.Plan(ev, nil).Tags
}

func (w *world) tag(tb testing.TB, keyARN string, tags ...tagger.Tag) {
	tb.Helper()
	in := &kms.TagResourceInput{KeyId: aws.String(keyARN)}
	for _, t := range tags {
		in.Tags = append(in.Tags, kmstypes.Tag{TagKey: aws.String(t.Key), TagValue: aws.String(t.Value)})
	}
	if _, err := w.client(keyARN).TagResource(context.Background(), in); err != nil {
		tb.Fatalf("TagResource %s: %v", keyARN, err)
	}
}

func (w *world) tags(tb testing.TB, keyARN string) map[string]string {
	tb.Helper()
	return localawstest.KeyTags(tb, w.kms[strings.Split(keyARN, ":")[4]], keyARN)
}

// with returns tags with t set (by exact key), or added.
func with(tags []tagger.Tag, set ...tagger.Tag) []tagger.Tag {
	out := slices.Clone(tags)
	for _, t := range set {
		if i := slices.IndexFunc(out, func(o tagger.Tag) bool { return o.Key == t.Key }); i >= 0 {
			out[i] = t
		} else {
			out = append(out, t)
		}
	}
	return out
}

// value returns the value of key among tags.
func value(tags []tagger.Tag, key string) string {
	for _, t := range tags {
		if t.Key == key {
			return t.Value
		}
	}
	return ""
}

func asMap(tags []tagger.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[t.Key] = t.Value
	}
	return m
}

// throttled counts the LookupEvents the CloudTrail stand-ins answered with
// ThrottlingException.
func (w *world) throttled() int {
	n := 0
	for _, ct := range w.trails {
		for _, r := range ct.Requests(localaws.AnyRegion, "LookupEvents") {
			if r.ErrorCode == "ThrottlingException" {
				n++
			}
		}
	}
	return n
}
