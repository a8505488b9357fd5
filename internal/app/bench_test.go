package app_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/kms-autotagger/kms-autotagger/internal/app"
	"github.com/kms-autotagger/kms-autotagger/internal/config"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws/localawstest"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// BenchmarkHandlerOverhead measures what the handler adds to the KMS calls
// it makes. Against local-kms (one region, behind the region router), each
// iteration runs, in alternating order, the full handler built by
// app.NewHandler from the environment on one CreateKey event, and the same
// KMS calls made bare by an SDK client from the same configuration
// (config.LoadDefaultConfig's): DescribeKey, ListResourceTags and a
// TagResource of the same tags on the same key, the handler's happy path
// (issue 11: the key is checked against its event and its tags read before
// the first write). It also times a bare TagResource alone. Before every
// run the key's governance tags are removed (not timed), so each handler
// run writes them all.
//
// It reports the 50th and 90th percentile of each one's latency, the
// handler's overhead over the three bare calls (what its own code adds) and
// over a bare TagResource alone (the two extra reads included), and the
// allocations per event (from testing.AllocsPerRun; both include those of
// the in-process router, so the difference is the handler's own). The
// handler logs JSON at INFO and writes its metrics line, both to
// io.Discard.
func BenchmarkHandlerOverhead(b *testing.B) {
	ctx := context.Background()
	s := localawstest.Start(b, localawstest.Options{Regions: []string{"us-east-1"}, NoSQS: true, Env: map[string]string{
		"STATIC_TAGS":    "ManagedBy=kms-autotagger",
		"TAG_RATE_LIMIT": "0", // measure the handler, not the limiter
	}})
	cfg, err := config.FromEnv(os.Getenv)
	if err != nil {
		b.Fatal(err)
	}
	awsCfg := localawstest.FunctionConfig(b) // as in Lambda: config.LoadDefaultConfig
	h, err := app.NewHandler(cfg, awsCfg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	if h.Metrics, err = app.NewMetrics(io.Discard, cfg); err != nil {
		b.Fatal(err)
	}
	bare := kms.NewFromConfig(awsCfg)

	key := s.CreateKey(b, "us-east-1")
	event := localawstest.CreateKeyEvent("be7c0000-0000-4000-8000-000000000001", key, nil)
	policy, err := cfg.Policy()
	if err != nil {
		b.Fatal(err)
	}
	untag := func() {
		if _, err := bare.UntagResource(ctx, &kms.UntagResourceInput{KeyId: aws.String(key), TagKeys: policy.Keys()}); err != nil {
			b.Fatalf("UntagResource: %v", err)
		}
	}

	runHandler := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // as Lambda gives it
		defer cancel()
		res, err := h.Handle(ctx, event)
		if err != nil || res.Outcome != tagger.OutcomeTagged {
			b.Fatalf("handler: got %s (%s), %v; want tagged", res.Outcome, res.Reason, err)
		}
	}
	// The bare calls write exactly the tags the handler writes.
	res, err := h.Handle(ctx, event)
	if err != nil || res.Outcome != tagger.OutcomeTagged {
		b.Fatalf("handler: got %s, %v; want tagged", res.Outcome, err)
	}
	tags := make([]kmstypes.Tag, len(res.Tags))
	for i, t := range res.Tags {
		tags[i] = kmstypes.Tag{TagKey: aws.String(t.Key), TagValue: aws.String(t.Value)}
	}
	tagBare := func(ctx context.Context) {
		if _, err := bare.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(key), Tags: tags}); err != nil {
			b.Fatalf("bare TagResource: %v", err)
		}
	}
	runBareTag := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		tagBare(ctx)
	}
	runBare := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := bare.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(key)}); err != nil {
			b.Fatalf("bare DescribeKey: %v", err)
		}
		if _, err := bare.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(key)}); err != nil {
			b.Fatalf("bare ListResourceTags: %v", err)
		}
		tagBare(ctx)
	}
	timed := func(f func()) time.Duration {
		untag()
		start := time.Now()
		f()
		return time.Since(start)
	}

	// Warm up every path (local-kms, connections, caches, the heap) before
	// measuring: without it the first of several runs came out slower,
	// and its overhead higher, than the rest.
	for range 300 {
		timed(runBare)
		timed(runHandler)
		timed(runBareTag)
	}

	var bareTimes, bareTagTimes, handlerTimes []time.Duration
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			bareTimes = append(bareTimes, timed(runBare))
			handlerTimes = append(handlerTimes, timed(runHandler))
		} else {
			handlerTimes = append(handlerTimes, timed(runHandler))
			bareTimes = append(bareTimes, timed(runBare))
		}
		bareTagTimes = append(bareTagTimes, timed(runBareTag))
	}
	b.StopTimer()
	pb50, pb90 := percentile(bareTimes, 50), percentile(bareTimes, 90)
	pt50, pt90 := percentile(bareTagTimes, 50), percentile(bareTagTimes, 90)
	ph50, ph90 := percentile(handlerTimes, 50), percentile(handlerTimes, 90)
	b.ReportMetric(µs(pt50), "p50-bare-tag-µs")
	b.ReportMetric(µs(pb50), "p50-bare-3calls-µs")
	b.ReportMetric(µs(pb90), "p90-bare-3calls-µs")
	b.ReportMetric(µs(ph50), "p50-handler-µs")
	b.ReportMetric(µs(ph90), "p90-handler-µs")
	b.ReportMetric(µs(ph50-pb50), "overhead-p50-µs")
	b.ReportMetric(µs(ph90-pb90), "overhead-p90-µs")
	b.ReportMetric(µs(ph50-pt50), "over-tag-alone-p50-µs")
	b.ReportMetric(µs(ph90-pt90), "over-tag-alone-p90-µs")

	allocsBare := testing.AllocsPerRun(100, func() { untag(); runBare() })
	allocsHandler := testing.AllocsPerRun(100, func() { untag(); runHandler() })
	b.ReportMetric(allocsBare, "allocs-bare/3calls")
	b.ReportMetric(allocsHandler, "allocs-handler/event")
	b.ReportMetric(allocsHandler-allocsBare, "allocs-overhead/event")
}

// percentile returns the p-th percentile (nearest rank) of d.
func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p+99)/100 - 1
	return s[max(i, 0)]
}

func µs(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
