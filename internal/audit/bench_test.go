package audit_test

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/kms-autotagger/kms-autotagger/internal/audit"
	"github.com/kms-autotagger/kms-autotagger/internal/audit/audittest"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// Size of BenchmarkAudit's organization.
const (
	benchAccounts = 20
	benchKeys     = 10 // per account and region
)

var benchRegions = []string{"us-east-1", "eu-west-1", "ap-southeast-2"}

// BenchmarkAudit audits an organization of benchAccounts accounts ×
// 3 regions × benchKeys keys. Each account is simulated by its own
// local-kms processes, one per region (local-kms serves one account and
// region per process: 60 processes), and its own CloudTrail stand-in, whose
// event history holds every key's CreateKey and answers LookupEvents with
// CloudTrail's quota of 2 per second per region. A third of the keys are
// compliant, a third miss their tags, a third carry a wrong CreatedBy.
//
// It reports the run's time against its slowest partition's and the sum
// of all, and against the slowest partition's rate-limit bound (the least
// time its limits allow for the requests it sent: 9 intervals of
// LookupEvents at 2 per second, 4.5s); each partition's achieved
// LookupEvents rate (lookups/s-ACCOUNT-REGION) and that rate against its
// limit (rate/bound-ACCOUNT-REGION, at most 1), with the lowest and highest
// of them. With every partition at once the run must end within 10 % of
// the slowest partition's time and of its bound.
func BenchmarkAudit(b *testing.B) {
	accounts := make([]string, benchAccounts)
	for i := range accounts {
		accounts[i] = fmt.Sprintf("2000%08d", i)
	}
	start := time.Now()
	w := startWorld(b, accounts, benchRegions)
	for _, p := range w.partitions() {
		for i := range benchKeys {
			key, truth := w.created(b, p.Account, p.Region, fmt.Sprintf("%s-%s-%02d", p.Account, p.Region, i), audittest.User(p.Account, "alice"))
			switch i % 3 {
			case 0:
				w.tag(b, key, truth...)
			case 1:
				w.tag(b, key, with(truth, tagger.Tag{Key: "CreatedBy", Value: "arn:aws:iam::" + p.Account + ":user/mallory"})...)
			}
		}
	}
	b.Logf("%d accounts × %d regions × %d keys set up in %s", benchAccounts, len(benchRegions), benchKeys, time.Since(start).Round(time.Millisecond))

	for _, parallel := range []int{benchAccounts * len(benchRegions), audit.DefaultParallel} {
		b.Run("parallel="+strconv.Itoa(parallel), func(b *testing.B) {
			var rep *audit.Report
			for b.Loop() {
				var err error
				if rep, err = w.auditor(b, audit.Options{Parallel: parallel}).Run(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			s := rep.Summary
			if s.Keys != benchAccounts*len(benchRegions)*benchKeys {
				b.Fatalf("got %d keys, want %d", s.Keys, benchAccounts*len(benchRegions)*benchKeys)
			}
			lo, hi := math.Inf(1), 0.0
			for _, p := range rep.Partitions {
				ratio := p.LookupEventsPerSecond / p.LookupEventsLimit
				lo, hi = min(lo, ratio), max(hi, ratio)
				b.ReportMetric(ratio, "rate/bound-"+p.Account+"-"+p.Region)
				b.ReportMetric(p.LookupEventsPerSecond, "lookups/s-"+p.Account+"-"+p.Region)
			}
			b.ReportMetric(s.ElapsedSeconds, "s/audit")
			b.ReportMetric(s.SlowestPartitionSeconds, "s-slowest-partition")
			b.ReportMetric(s.SumPartitionSeconds, "s-partitions-added-up")
			b.ReportMetric(s.SlowestBoundSeconds, "s-slowest-bound")
			b.ReportMetric(s.ElapsedSeconds/s.SlowestPartitionSeconds, "of-slowest-partition")
			b.ReportMetric(s.ElapsedSeconds/s.SlowestBoundSeconds, "of-slowest-bound")
			if parallel >= s.Partitions && (s.ElapsedSeconds > 1.1*s.SlowestPartitionSeconds || s.ElapsedSeconds > 1.1*s.SlowestBoundSeconds) {
				b.Errorf("every partition at once: took %.2fs, more than 10 %% over the slowest partition's %.2fs or its rate-limit bound of %.2fs",
					s.ElapsedSeconds, s.SlowestPartitionSeconds, s.SlowestBoundSeconds)
			}
			b.ReportMetric(lo, "min-rate/bound")
			b.ReportMetric(hi, "max-rate/bound")
			b.ReportMetric(float64(s.Keys)/s.ElapsedSeconds, "keys/s")
			if throttled := w.throttled(); throttled != 0 {
				b.Errorf("got %d LookupEvents throttled by CloudTrail, want none", throttled)
			}
			if hi > 1.02 {
				b.Errorf("a partition kept to %.3f of its LookupEvents bound, want at most 1", hi)
			}
		})
	}
}
