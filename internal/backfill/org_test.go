package backfill_test

import (
	"context"
	"fmt"
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
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kms-autotagger/kms-autotagger/internal/audit"
	"github.com/kms-autotagger/kms-autotagger/internal/audit/audittest"
	"github.com/kms-autotagger/kms-autotagger/internal/backfill"
	"github.com/kms-autotagger/kms-autotagger/internal/events"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws/localawstest"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
	"github.com/kms-autotagger/kms-autotagger/internal/trailarchive"
	"github.com/kms-autotagger/kms-autotagger/internal/trailarchive/archivetest"
)

// org is an organization of accounts: local-kms per account (one process
// per region; local-kms serves one account per process) and a CloudTrail
// stand-in per account with CloudTrail's LookupEvents quota per region, so
// each account has its own keys, event history and quotas, as in AWS. The
// clients route each account to its own.
type org struct {
	regions []string
	kms     map[string]*localaws.KMS
	trails  map[string]*localaws.CloudTrail
	policy  *tagger.Policy
}

func startOrg(tb testing.TB, accounts, regions []string, lookupRate float64) *org {
	tb.Helper()
	stands := audittest.StartOrganization(tb, accounts, regions, lookupRate)
	o := &org{regions: regions, kms: stands.KMS, trails: stands.Trails}
	var err error
	if o.policy, err = tagger.NewPolicy(tagger.DefaultNames(), "", []tagger.Tag{{Key: "ManagedBy", Value: "kms-autotagger"}}); err != nil {
		tb.Fatal(err)
	}
	return o
}

func (o *org) accounts() []string { return slices.Sorted(maps.Keys(o.kms)) }

func (o *org) clients() backfill.ClientsFunc {
	return func(_ context.Context, account, region string) (backfill.LookupAPI, backfill.KeyAPI, error) {
		k, ok := o.kms[account]
		if !ok {
			return nil, nil, fmt.Errorf("no stand-in for account %s", account)
		}
		return o.trails[account].Client(region, func(o *cloudtrail.Options) { o.RetryMaxAttempts = 3 }),
			k.Client(region, func(o *kms.Options) { o.RetryMaxAttempts = 3 }), nil
	}
}

func (o *org) backfiller(tb testing.TB, opts backfill.Options) *backfill.Backfiller {
	tb.Helper()
	if opts.Accounts == nil {
		opts.Accounts = o.accounts()
	}
	if opts.Regions == nil {
		opts.Regions = o.regions
	}
	opts.CreatedAtKey = tagger.DefaultCreatedAt
	opts.EvidenceKey = tagger.DefaultEvidence
	b, err := backfill.New(o.policy, o.clients(), slog.New(slog.DiscardHandler), opts)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// created makes a key in account and region with its CreateKey by alice in
// the event history at at, and returns it with the tags it must get.
func (o *org) created(tb testing.TB, account, region, eventID string, at time.Time) (string, map[string]string) {
	tb.Helper()
	out, err := o.kms[account].Client(region).CreateKey(context.Background(), &kms.CreateKeyInput{})
	if err != nil {
		tb.Fatal(err)
	}
	key := aws.ToString(out.KeyMetadata.Arn)
	rec := audittest.CreateKeyRecord(eventID, key, audittest.User(account, "alice"), at)
	if err := o.trails[account].AddEvent(region, rec); err != nil {
		tb.Fatal(err)
	}
	return key, o.truth(tb, rec, tagger.EvidenceHistory)
}

func (o *org) truth(tb testing.TB, record []byte, evidence string) map[string]string {
	tb.Helper()
	dec, err := events.DecodeRecord(record)
	if err != nil {
		tb.Fatal(err)
	}
	dec.Key.Evidence = evidence
	return tagMap(o.policy.Plan(dec.Key, nil).Tags)
}

func (o *org) tags(tb testing.TB, keyARN string) map[string]string {
	tb.Helper()
	return localawstest.KeyTags(tb, o.kms[strings.Split(keyARN, ":")[4]], keyARN)
}

func (o *org) tag(tb testing.TB, keyARN string, tags map[string]string) {
	tb.Helper()
	f := strings.Split(keyARN, ":")
	in := &kms.TagResourceInput{KeyId: aws.String(keyARN)}
	for k, v := range tags {
		in.Tags = append(in.Tags, kmstypes.Tag{TagKey: aws.String(k), TagValue: aws.String(v)})
	}
	if _, err := o.kms[f[4]].Client(f[3]).TagResource(context.Background(), in); err != nil {
		tb.Fatal(err)
	}
}

// TestBackfillOrganization: two accounts of two regions each, backfilled
// at once, each account and region within its own rate limits: every
// key is tagged in its own account, each partition reports its own
// figures, and the run takes about as long as the slowest partition, not
// the sum.
func TestBackfillOrganization(t *testing.T) {
	const (
		acctA   = "111122223333"
		acctB   = "444455556666"
		perPart = 6
		tagRate = 4.0
	)
	regions := []string{east, west}
	o := startOrg(t, []string{acctA, acctB}, regions, 0)
	at := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Second)
	want := map[string]map[string]string{}
	for _, a := range []string{acctA, acctB} {
		for _, r := range regions {
			for i := range perPart {
				key, truth := o.created(t, a, r, fmt.Sprintf("%s-%s-%d", a, r, i), at.Add(time.Duration(i)*time.Minute))
				want[key] = truth
			}
		}
	}
	// A key of account B whose CreateKey someone also put into account A's
	// history: B tags it from its own history, A does not touch it.
	strayKey, strayTruth := o.created(t, acctB, east, "stray-b", at)
	want[strayKey] = strayTruth
	if err := o.trails[acctA].AddEvent(east, audittest.CreateKeyRecord("stray-in-a", strayKey, audittest.User(acctA, "mallory"), at)); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		parallel int
	}{
		{"one account at a time", 1},
		{"every account at once", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for key := range want { // untag, so that each run tags every key
				f := strings.Split(key, ":")
				var keys []string
				for k := range o.tags(t, key) {
					keys = append(keys, k)
				}
				if len(keys) > 0 {
					if _, err := o.kms[f[4]].Client(f[3]).UntagResource(ctx, &kms.UntagResourceInput{KeyId: aws.String(key), TagKeys: keys}); err != nil {
						t.Fatal(err)
					}
				}
			}
			rep, err := o.backfiller(t, backfill.Options{Parallel: tc.parallel, TagRate: tagRate}).Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for key, truth := range want {
				if got := o.tags(t, key); !maps.Equal(got, truth) {
					t.Errorf("%s: got tags %v, want %v", key, got, truth)
				}
			}
			var stray *backfill.Row
			for i, r := range rep.Rows {
				if r.EventID == "stray-in-a" {
					stray = &rep.Rows[i]
				}
			}
			if stray == nil || stray.Account != acctA || stray.Action != backfill.ActionFailed || stray.ErrorCode != tagger.CodeInconsistentEvent {
				t.Errorf("got row %+v for the stray event, want failed in account %s with %s", stray, acctA, tagger.CodeInconsistentEvent)
			}
			s := rep.Summary
			if !slices.Equal(s.Accounts, []string{acctA, acctB}) || s.Actions[backfill.ActionTagged] != 4*perPart+1 {
				t.Errorf("got accounts %v and actions %v, want both accounts and %d tagged", s.Accounts, s.Actions, 4*perPart+1)
			}
			if len(rep.Partitions) != 4 {
				t.Fatalf("got %d partitions, want 4: %+v", len(rep.Partitions), rep.Partitions)
			}
			sum := 0.0
			for i, p := range rep.Partitions {
				wantAcct, wantRegion := []string{acctA, acctA, acctB, acctB}[i], []string{west, east, west, east}[i%2]
				if p.Account != wantAcct || p.Region != wantRegion {
					t.Errorf("partition %d: got %s %s, want %s %s", i, p.Account, p.Region, wantAcct, wantRegion)
				}
				wantTagged := perPart
				if p.Account == acctB && p.Region == east {
					wantTagged++ // the stray key, from its own history
				}
				if p.Actions[backfill.ActionTagged] != wantTagged || p.Requests[backfill.OpTagResource] != wantTagged {
					t.Errorf("%s %s: got actions %v and requests %v, want %d tagged with as many TagResource", p.Account, p.Region, p.Actions, p.Requests, wantTagged)
				}
				if p.TagWritesPerSecond > tagRate*1.02 || p.LookupEventsPerSecond > backfill.DefaultLookupRate*1.02 || p.ReadsPerSecond > backfill.DefaultReadRate*1.02 {
					t.Errorf("%s %s: got %.2f tag writes, %.2f lookups and %.2f reads per second, want at most %g, %g and %g",
						p.Account, p.Region, p.TagWritesPerSecond, p.LookupEventsPerSecond, p.ReadsPerSecond, tagRate, backfill.DefaultLookupRate, backfill.DefaultReadRate)
				}
				if min := float64(wantTagged-1) / tagRate; p.BoundSeconds < min*0.99 || p.ElapsedSeconds < p.BoundSeconds*0.98 {
					t.Errorf("%s %s: got %.2fs for a bound of %.2fs, want at least %.2fs at the tag rate", p.Account, p.Region, p.ElapsedSeconds, p.BoundSeconds, min)
				}
				sum += p.ElapsedSeconds
			}
			t.Logf("%s: %.2fs, slowest partition %.2fs (bound %.2fs), partitions added up %.2fs", tc.name, s.Seconds, s.SlowestPartitionSeconds, s.SlowestBoundSeconds, sum)
			if tc.parallel == 2 && s.Seconds > s.SlowestBoundSeconds*1.1+0.5 {
				t.Errorf("every account at once: took %.2fs, want about the slowest partition's bound %.2fs", s.Seconds, s.SlowestBoundSeconds)
			}
			if tc.parallel == 1 && s.Seconds < 1.5*s.SlowestBoundSeconds {
				t.Errorf("one account at a time: took %.2fs, want about two accounts' worth of %.2fs", s.Seconds, s.SlowestBoundSeconds)
			}
		})
	}
}

// TestBackfillFromArchive: keys older than the event history are tagged
// from their creation records in the organization trail's log files (moto's
// S3, the real format), checked against the key; a contradicted record and
// a key with none stay no-creation-event, and --tag-unknown gives those
// CreatedAt only.
func TestBackfillFromArchive(t *testing.T) {
	const acct = "111122223333"
	o := startOrg(t, []string{acct}, []string{east}, 0)
	ctx := context.Background()
	m, err := localaws.StartMoto(ctx, localaws.MotoOptions{Account: acct})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	const bucket = "trail-archive-111122223333"
	if err := m.CreateBucket(ctx, east, bucket); err != nil {
		t.Fatal(err)
	}
	s3c := s3.NewFromConfig(m.Config(east), func(o *s3.Options) { o.UsePathStyle = true })
	created := time.Date(2022, 11, 8, 6, 30, 0, 0, time.UTC)
	k := o.kms[acct]
	newKey := func(at time.Time) string {
		out, err := k.Client(east).CreateKey(ctx, &kms.CreateKeyInput{})
		if err != nil {
			t.Fatal(err)
		}
		key := aws.ToString(out.KeyMetadata.Arn)
		k.SetKeyFacts(key, localaws.KeyFacts{CreationDate: at})
		return key
	}
	archived := newKey(created)
	archivedRec := audittest.CreateKeyRecord("arch-1", archived, audittest.Role(acct, "platform"), created)
	contradicted := newKey(created)
	absent := newKey(created.Add(-24 * time.Hour))
	if _, err := archivetest.Put(ctx, s3c, bucket, archivetest.LogFile{Account: acct, Region: east, At: created.Add(6 * time.Minute), Records: [][]byte{
		archivetest.Record(events.EventSourceKMS, "Decrypt", acct, east, created),
		archivedRec,
		audittest.CreateKeyRecord("arch-2", contradicted, audittest.User(acct, "mallory"), created.Add(-20*time.Minute)),
		archivetest.Record("sts.amazonaws.com", "AssumeRole", acct, east, created),
	}}); err != nil {
		t.Fatal(err)
	}
	o.tag(t, archived, map[string]string{"createdby": "mallory", "team": "db"})
	archive, err := trailarchive.New(s3c, bucket, "")
	if err != nil {
		t.Fatal(err)
	}

	rep, err := o.backfiller(t, backfill.Options{Archive: archive}).Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rows := rowsByKey(rep.Rows)
	wantTags := merge(o.truth(t, archivedRec, tagger.EvidenceTrailArchive), map[string]string{"team": "db"})
	if got := o.tags(t, archived); !maps.Equal(got, wantTags) {
		t.Errorf("archived key: got tags %v, want %v (the case variant removed)", got, wantTags)
	}
	if r := rows[archived]; r.Action != backfill.ActionTagged || r.EventID != "arch-1" || r.Evidence != tagger.EvidenceTrailArchive ||
		!slices.Equal(r.Removed, []string{"createdby"}) || !strings.Contains(r.Reason, "tagged from its CreateKey record in the trail archive") {
		t.Errorf("archived key: got row %+v, want tagged from arch-1 in the trail archive, createdby removed", r)
	}
	for key, reason := range map[string]string{
		contradicted: "the CreateKey record arch-2 in the trail archive contradicts the key",
		absent:       "no CreateKey or ReplicateKey record of key " + absent,
	} {
		if r := rows[key]; r.Action != backfill.ActionNoCreationEvent || !strings.Contains(r.Reason, reason) {
			t.Errorf("%s: got row %+v, want no-creation-event saying %q", key, r, reason)
		}
		if got := o.tags(t, key); len(got) != 0 {
			t.Errorf("%s: got tags %v, want none", key, got)
		}
	}
	if rep.Summary.FromArchive != 1 {
		t.Errorf("got %d keys from the archive, want 1", rep.Summary.FromArchive)
	}
	if p := rep.Partitions[0]; p.Requests[audit.OpGetObject] != 1 {
		t.Errorf("got requests %v, want one GetObject: the file is read once for the three keys", p.Requests)
	}

	// With --tag-unknown the two without a usable record get CreatedAt,
	// from their creation dates, and say creation-date-only.
	if _, err := o.backfiller(t, backfill.Options{Archive: archive, TagUnknown: true}).Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := o.tags(t, contradicted), map[string]string{"CreatedAt": created.Format(time.RFC3339), "CreatedByEvidence": tagger.EvidenceCreationDateOnly}; !maps.Equal(got, want) {
		t.Errorf("contradicted key with --tag-unknown: got %v, want %v", got, want)
	}
	if got := o.tags(t, archived); !maps.Equal(got, wantTags) {
		t.Errorf("archived key after a second run: got %v, want it unchanged %v", got, wantTags)
	}
}
