package metrics_test

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/kms-autotagger/kms-autotagger/internal/metrics"
)

func pct(v float64) *float64 { return &v }

// TestRecordCoverage: one line per partition, valid EMF, the counts and
// the coverage as given, the dimensions from closed forms.
func TestRecordCoverage(t *testing.T) {
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	for _, tc := range []struct {
		name string
		in   metrics.Coverage
		// want are the root members expected; a metric absent from want
		// must be absent from the line when listed in absent.
		want   map[string]any
		absent []string
	}{
		{"partly compliant", metrics.Coverage{Account: "111122223333", Region: "eu-west-1", Keys: 10, Compliant: 7, Repaired: 3, Unattributable: 2, Forged: 1, NonCompliant: 3, Percent: pct(70), Time: at},
			map[string]any{"Account": "111122223333", "Region": "eu-west-1", "CoverageKeys": 10.0, "CoverageCompliant": 7.0, "CoverageRepaired": 3.0,
				"CoverageUnattributable": 2.0, "CoverageForged": 1.0, "CoverageNonCompliant": 3.0, "CoveragePercent": 70.0, "CoverageFailed": 0.0}, nil},
		{"no keys is full coverage", metrics.Coverage{Account: "111122223333", Region: "us-east-1", Time: at},
			map[string]any{"CoverageKeys": 0.0, "CoveragePercent": 100.0, "CoverageFailed": 0.0}, nil},
		{"a failed partition has no coverage", metrics.Coverage{Account: "111122223333", Region: "us-east-1", Failed: true, Percent: pct(50), Time: at},
			map[string]any{"CoverageFailed": 1.0}, []string{"CoveragePercent"}},
		{"forms outside the closed sets", metrics.Coverage{Account: "1234", Region: "EU West", Percent: pct(math.NaN()), Keys: -1, Time: at},
			map[string]any{"Account": "unknown", "Region": "unknown", "CoverageKeys": 0.0}, []string{"CoveragePercent"}},
		{"a percentage over 100 is 100", metrics.Coverage{Account: "111122223333", Region: "us-east-1", Keys: 1, Percent: pct(250), Time: at},
			map[string]any{"CoveragePercent": 100.0}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			e, err := metrics.New(&buf, "KMSAutoTagger")
			if err != nil {
				t.Fatal(err)
			}
			if err := e.RecordCoverage(tc.in); err != nil {
				t.Fatal(err)
			}
			line := buf.Bytes()
			if n := bytes.Count(line, []byte("\n")); n != 1 {
				t.Fatalf("got %d lines, want 1", n)
			}
			root := mustValid(t, line, time.Now())
			for k, v := range tc.want {
				got := root[k]
				if n, ok := got.(json.Number); ok {
					f, _ := n.Float64()
					got = f
				}
				if got != v {
					t.Errorf("%s: got %v, want %v", k, got, v)
				}
			}
			for _, k := range tc.absent {
				if _, ok := root[k]; ok {
					t.Errorf("%s: got %v, want no such member", k, root[k])
				}
			}
			aws := root["_aws"].(map[string]any)
			if ts, _ := aws["Timestamp"].(json.Number).Int64(); ts != at.UnixMilli() {
				t.Errorf("Timestamp: got %d, want %d", ts, at.UnixMilli())
			}
			d := aws["CloudWatchMetrics"].([]any)[0].(map[string]any)
			if got, _ := json.Marshal(d["Dimensions"]); string(got) != `[["Account","Region"],[]]` {
				t.Errorf("dimensions: got %s, want per account and region, and none", got)
			}
			if d["Namespace"] != "KMSAutoTagger" {
				t.Errorf("namespace: got %v", d["Namespace"])
			}
			for _, m := range d["Metrics"].([]any) {
				def := m.(map[string]any)
				wantUnit := "Count"
				if def["Name"] == "CoveragePercent" {
					wantUnit = "Percent"
				}
				if def["Unit"] != wantUnit || !strings.HasPrefix(def["Name"].(string), "Coverage") {
					t.Errorf("metric %v: want a Coverage metric in %s", def, wantUnit)
				}
			}
		})
	}
	var nilEmitter *metrics.Emitter
	if err := nilEmitter.RecordCoverage(metrics.Coverage{}); err != nil {
		t.Errorf("nil emitter: got %v, want nothing recorded and no error", err)
	}
}
