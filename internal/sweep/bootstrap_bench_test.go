package sweep_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	lambdaevents "github.com/aws/aws-lambda-go/events"

	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/sweep"
)

// BenchmarkSweepBootstrap runs the real bootstrap (built with the Lambda
// build's flags) under the Lambda runtime interface emulator and hands it
// the SQS event of one partition of SWEEP_BENCH_KEYS keys (default
// benchPartitionKeys), at the sweep's highest allowed lookup rate
// (SWEEP_LOOKUP_RATE=2, CloudTrail's quota, which the stand-in enforces):
// 1000 keys take some 500s. It reports the peak resident memory of the
// function's process (VmHWM, which Lambda's "Max Memory Used" counts) and
// its time. Run it alone:
//
//	go test -run '^$' -bench SweepBootstrap -benchtime 1x -timeout 30m ./internal/sweep/
func BenchmarkSweepBootstrap(b *testing.B) {
	keys := benchPartitionKeys
	if v := os.Getenv("SWEEP_BENCH_KEYS"); v != "" {
		keys, _ = strconv.Atoi(v)
	}
	w := startWorld(b, []string{acctA}, []string{east}, 0) // CloudTrail's quota: 2 per second
	for i := range keys {
		key, truth := w.created(b, acctA, east, fmt.Sprintf("r-%04d", i))
		if i%2 == 0 {
			w.tag(b, key, truth)
		}
	}
	root, err := localaws.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(b.TempDir(), "bootstrap")
	build := exec.Command("go", "build", "-trimpath", "-tags", "lambda.norpc,lambdaonly", "-ldflags", "-s -w", "-o", bin, "./cmd/autotagger")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building the bootstrap: %v\n%s", err, out)
	}
	rie, err := localaws.StartRIE(context.Background(), localaws.RIEOptions{Bootstrap: bin, Env: []string{
		"AWS_ENDPOINT_URL_KMS=" + w.kms[acctA].URL(), "AWS_ENDPOINT_URL_CLOUDTRAIL=" + w.trails[acctA].URL(), "AWS_ENDPOINT_URL_SQS=" + w.sqs.URL(),
		"SWEEP_QUEUE_URL=" + w.queue, "SWEEP_REGIONS=" + east, "SWEEP_LOOKUP_RATE=2", "SWEEP_TAG_RATE=5", "HOME_ACCOUNT_ID=" + acctA,
		"STATIC_TAGS=Governance=kms-autotagger", "LOG_LEVEL=WARN", "AWS_LAMBDA_FUNCTION_TIMEOUT=900", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128",
	}})
	if err != nil {
		b.Fatal(err)
	}
	defer rie.Close()
	body, _ := json.Marshal(sweep.Message{Version: sweep.MessageVersion, Kind: sweep.MessageKind, Run: "bench", Account: acctA, Region: east, Shards: 1, Planned: time.Now()})
	payload, _ := json.Marshal(lambdaevents.SQSEvent{Records: []lambdaevents.SQSMessage{{MessageId: "m", Body: string(body), EventSource: "aws:sqs", EventSourceARN: w.queueARN(), AWSRegion: east}}})
	var took time.Duration
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 16*time.Minute)
		t0 := time.Now()
		status, out, err := rie.Invoke(ctx, payload)
		took = time.Since(t0)
		cancel()
		var resp lambdaevents.SQSEventResponse
		if err != nil || status != 200 || json.Unmarshal(out, &resp) != nil || len(resp.BatchItemFailures) != 0 {
			b.Fatalf("invoke: %d %v %s; want 200 and no batch item failure", status, err, out)
		}
	}
	hwm, rss := peakMemory(b, bin)
	b.ReportMetric(hwm/1024, "peak-MiB")
	b.ReportMetric(rss/1024, "rss-MiB")
	b.ReportMetric(took.Seconds(), "s/partition")
	b.ReportMetric(float64(keys), "keys")
}

// peakMemory returns the VmHWM and VmRSS, in KiB, of the one process whose
// executable is exe.
func peakMemory(tb testing.TB, exe string) (hwm, rss float64) {
	tb.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var found []string
	for _, d := range dirs {
		if target, err := os.Readlink(filepath.Join(d, "exe")); err == nil && target == exe {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		tb.Fatalf("processes of %s: got %v, want one", exe, found)
	}
	raw, err := os.ReadFile(filepath.Join(found[0], "status"))
	if err != nil {
		tb.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		n, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		switch k {
		case "VmHWM":
			hwm = n
		case "VmRSS":
			rss = n
		}
	}
	return hwm, rss
}
