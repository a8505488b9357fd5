package backfill_test

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/kms-autotagger/kms-autotagger/internal/backfill"
)

// Size of BenchmarkBackfillOrganization's organization.
const (
	benchAccounts = 20
	benchKeys     = 10 // per account and region
)

var benchRegions = []string{"us-east-1", "eu-west-1", "ap-southeast-2"}

// BenchmarkBackfillOrganization backfills an organization of
// benchAccounts accounts × 3 regions × benchKeys keys, each key's
// CreateKey in its account's event history and no tag on it. Each account
// is simulated by its own local-kms processes, one per region (local-kms
// serves one account and region per process: 60 processes), and its own
// CloudTrail stand-in answering LookupEvents with CloudTrail's quota of 2
// per second per region. Every run tags every key (the keys are untagged
// again between runs, off the clock) at the default rates: 5 tag writes
// per second per account and region, the bound of a partition's time (9
// intervals: 1.8s).
//
// It reports the run's time against the slowest partition's
// (of-slowest-partition; with every account at once at most 1.1) and
// against that partition's rate-limit bound (of-slowest-bound: the least
// time its limits allow for its requests, which its first write waits
// for its first lookup and reads to exceed), each partition's achieved
// TagResource rate (tags/s-ACCOUNT-REGION; at the limit, the partition is
// held by its limit alone) and LookupEvents rate (lookups/s-ACCOUNT-REGION),
// with the lowest and highest tag rates against the limit.
func BenchmarkBackfillOrganization(b *testing.B) {
	accounts := make([]string, benchAccounts)
	for i := range accounts {
		accounts[i] = fmt.Sprintf("3000%08d", i)
	}
	start := time.Now()
	o := startOrg(b, accounts, benchRegions, 0)
	at := time.Now().UTC().Add(-72 * time.Hour).Truncate(time.Second)
	var keys []string
	for _, a := range accounts {
		for _, r := range benchRegions {
			for i := range benchKeys {
				key, _ := o.created(b, a, r, fmt.Sprintf("%s-%s-%02d", a, r, i), at.Add(time.Duration(i)*time.Minute))
				keys = append(keys, key)
			}
		}
	}
	untag := func() {
		for _, key := range keys {
			f := strings.Split(key, ":")
			var tagKeys []string
			for k := range o.tags(b, key) {
				tagKeys = append(tagKeys, k)
			}
			if len(tagKeys) > 0 {
				if _, err := o.kms[f[4]].Client(f[3]).UntagResource(context.Background(), &kms.UntagResourceInput{KeyId: aws.String(key), TagKeys: tagKeys}); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.Logf("%d accounts × %d regions × %d keys set up in %s", benchAccounts, len(benchRegions), benchKeys, time.Since(start).Round(time.Millisecond))

	for _, parallel := range []int{benchAccounts, backfill.DefaultParallel} {
		b.Run("parallel="+strconv.Itoa(parallel), func(b *testing.B) {
			var rep *backfill.Report
			b.StopTimer()
			for i := 0; i < b.N; i++ {
				untag()
				bf := o.backfiller(b, backfill.Options{Parallel: parallel})
				b.StartTimer()
				var err error
				rep, err = bf.Run(context.Background())
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
			}
			s := rep.Summary
			if got, want := s.Actions[backfill.ActionTagged], len(keys); got != want {
				b.Fatalf("got %d keys tagged, want %d", got, want)
			}
			lo, hi := math.Inf(1), 0.0
			for _, p := range rep.Partitions {
				ratio := p.TagWritesPerSecond / s.TagWritesLimit
				lo, hi = min(lo, ratio), max(hi, ratio)
				b.ReportMetric(p.TagWritesPerSecond, "tags/s-"+p.Account+"-"+p.Region)
				b.ReportMetric(p.LookupEventsPerSecond, "lookups/s-"+p.Account+"-"+p.Region)
			}
			first, last := math.Inf(1), 0.0
			for _, p := range rep.Partitions {
				first, last = min(first, p.StartSeconds), max(last, p.EndSeconds)
			}
			b.ReportMetric(first, "s-to-first-request")
			b.ReportMetric(s.Seconds-last, "s-after-last-request")
			b.ReportMetric(s.Seconds, "s/backfill")
			b.ReportMetric(s.SlowestPartitionSeconds, "s-slowest-partition")
			b.ReportMetric(s.SlowestBoundSeconds, "s-slowest-bound")
			b.ReportMetric(s.Seconds/s.SlowestPartitionSeconds, "of-slowest-partition")
			b.ReportMetric(s.Seconds/s.SlowestBoundSeconds, "of-slowest-bound")
			b.ReportMetric(lo, "min-tag-rate/limit")
			b.ReportMetric(hi, "max-tag-rate/limit")
			b.ReportMetric(float64(s.Keys)/s.Seconds, "keys/s")
			if hi > 1.02 || lo < 0.95 {
				b.Errorf("partitions kept to %.3f to %.3f of their tag limit, want about 1: held by the limit alone", lo, hi)
			}
			if parallel >= benchAccounts && s.Seconds > 1.1*s.SlowestPartitionSeconds {
				b.Errorf("every account at once: took %.2fs, more than 10 %% over the slowest partition's %.2fs (its rate limits' bound %.2fs; first request after %.3fs, %.3fs after the last)",
					s.Seconds, s.SlowestPartitionSeconds, s.SlowestBoundSeconds, first, s.Seconds-last)
			}
		})
	}
}
