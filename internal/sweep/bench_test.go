package sweep_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	lambdaevents "github.com/aws/aws-lambda-go/events"

	"github.com/kms-autotagger/kms-autotagger/internal/sweep"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// benchPartitionKeys is the size of BenchmarkSweepPartition's partition:
// more than one invocation holds at the default lookup rate of 1 per second
// (some 720 keys in 15 minutes), so the largest a shard is.
const benchPartitionKeys = 1000

// BenchmarkSweepPartition measures the memory of one sweep invocation over
// a partition of benchPartitionKeys keys (local-kms, one process; the
// CloudTrail stand-in in this process, its quota off; the sweep's rate
// limits raised so that the measure takes seconds, not the 17 minutes the
// default rate would): a third of the keys compliant, a third with a
// forged CreatedBy, a third without tags, repaired in the first run.
//
// A goroutine samples runtime.MemStats every 5ms during Process: it
// reports the peak of HeapInuse above the heap before the invocation
// (peak-heap-MiB, the memory the partition holds at once), the peak Sys
// (sys-MiB, all the Go runtime took from the OS: what Lambda's "Max Memory
// Used" counts, with the binary's text), the bytes allocated over the
// invocation (alloc-MiB, garbage included) and the keys per second. The
// stand-in's own allocations are counted too, so the figures are an upper
// bound of the sweep's.
func BenchmarkSweepPartition(b *testing.B) {
	w := startWorld(b, []string{acctA}, []string{east}, -1)
	start := time.Now()
	for i := range benchPartitionKeys {
		key, truth := w.created(b, acctA, east, fmt.Sprintf("m-%04d", i))
		switch i % 3 {
		case 0:
			w.tag(b, key, truth)
		case 1:
			forged := append([]tagger.Tag(nil), truth...)
			forged[0].Value = "arn:aws:iam::" + acctA + ":user/mallory"
			w.tag(b, key, forged)
		}
	}
	b.Logf("%d keys set up in %s", benchPartitionKeys, time.Since(start).Round(time.Millisecond))
	s := w.sweeper(b, sweep.Options{Repair: true, LookupRate: 1000, TagRate: 1000, ReadRate: 1000, Overhead: time.Second, Reserve: time.Second})
	body, _ := json.Marshal(sweep.Message{Version: sweep.MessageVersion, Kind: sweep.MessageKind, Run: "bench", Account: acctA, Region: east, Shards: 1, Planned: time.Now()})
	ev := lambdaevents.SQSEvent{Records: []lambdaevents.SQSMessage{{MessageId: "m", Body: string(body), EventSource: "aws:sqs", EventSourceARN: w.queueARN()}}}

	var peakHeap, peakSys, alloc, took float64
	for b.Loop() {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		stop := make(chan struct{})
		var (
			wg              sync.WaitGroup
			maxHeap, maxSys uint64
		)
		wg.Go(func() {
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			var m runtime.MemStats
			for {
				runtime.ReadMemStats(&m)
				maxHeap, maxSys = max(maxHeap, m.HeapInuse), max(maxSys, m.Sys)
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		})
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		t0 := time.Now()
		resp, results, err := s.Process(ctx, ev)
		took = time.Since(t0).Seconds()
		cancel()
		close(stop)
		wg.Wait()
		if err != nil || len(resp.BatchItemFailures) != 0 || results[0].Outcome != sweep.OutcomeSwept || results[0].Keys != benchPartitionKeys {
			b.Fatalf("got %+v, %+v, %v; want the partition of %d keys swept", resp, results, err, benchPartitionKeys)
		}
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		peakHeap = float64(maxHeap-min(maxHeap, before.HeapInuse)) / (1 << 20)
		peakSys = float64(maxSys) / (1 << 20)
		alloc = float64(after.TotalAlloc-before.TotalAlloc) / (1 << 20)
	}
	b.ReportMetric(peakHeap, "peak-heap-MiB")
	b.ReportMetric(peakSys, "sys-MiB")
	b.ReportMetric(alloc, "alloc-MiB")
	b.ReportMetric(benchPartitionKeys/took, "keys/s")
}
