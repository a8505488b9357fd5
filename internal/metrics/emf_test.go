package metrics_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kms-autotagger/kms-autotagger/internal/events"
	"github.com/kms-autotagger/kms-autotagger/internal/metrics"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// The rules below are those of the CloudWatch "Specification: Embedded
// metric format" (structure, MetricDirective, DimensionSet,
// MetricDefinition, target members, the JSON schema it publishes) and the
// CloudWatch limits it refers to (MetricDatum: 30 dimensions, units,
// StorageResolution 1 or 60; Dimension: value of 1 to 1024 ASCII characters
// with a non-space; namespace: 1 to 255 printable ASCII characters not
// starting with ":"; timestamps at most two weeks old or two hours ahead).
const (
	maxLineBytes           = 256 * 1024
	maxMetricsPerDirective = 100
	maxDimensionsPerSet    = 30
	maxValuesPerMetric     = 100
	maxNameLength          = 255
	maxDimensionValueLen   = 1024
	maxTimestampAge        = 14 * 24 * time.Hour
	maxTimestampAhead      = 2 * time.Hour
)

// emfUnits are the units a MetricDefinition may name.
var emfUnits = map[string]bool{}

func init() {
	for _, u := range strings.Fields(`Seconds Microseconds Milliseconds Bytes Kilobytes Megabytes Gigabytes
		Terabytes Bits Kilobits Megabits Gigabits Terabits Percent Count Bytes/Second Kilobytes/Second
		Megabytes/Second Gigabytes/Second Terabytes/Second Bits/Second Kilobits/Second Megabits/Second
		Gigabits/Second Terabits/Second Count/Second None`) {
		emfUnits[u] = true
	}
}

// validateEMF checks one line as written to the log against every rule of
// the specification and returns the decoded root node and the violations.
func validateEMF(line []byte, now time.Time) (map[string]any, []string) {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }

	if len(line) > maxLineBytes {
		fail("line is %d bytes, more than %d", len(line), maxLineBytes)
	}
	if !bytes.HasSuffix(line, []byte("\n")) {
		fail("line does not end in a newline")
	}
	body := bytes.TrimSuffix(line, []byte("\n"))
	if bytes.ContainsAny(body, "\r\n") {
		fail("line holds more than one line")
	}
	// The LogEvent message is one JSON object with nothing before or after.
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var root map[string]any
	if err := dec.Decode(&root); err != nil {
		fail("not a JSON object: %v", err)
		return nil, errs
	}
	if root == nil {
		fail("not a JSON object: null")
		return nil, errs
	}
	if _, err := dec.Token(); err != io.EOF {
		fail("data after the JSON object")
	}

	aws, ok := root["_aws"].(map[string]any)
	if !ok {
		fail("root has no _aws object")
		return root, errs
	}
	onlyMembers(aws, "_aws", fail, "Timestamp", "CloudWatchMetrics")

	switch ts, ok := aws["Timestamp"].(json.Number); {
	case !ok:
		fail("_aws.Timestamp is missing or not a number")
	default:
		ms, err := ts.Int64()
		if err != nil {
			fail("_aws.Timestamp %s is not a whole number of milliseconds", ts)
			break
		}
		t := time.UnixMilli(ms)
		if t.Before(now.Add(-maxTimestampAge)) || t.After(now.Add(maxTimestampAhead)) {
			fail("_aws.Timestamp %s is more than two weeks old or two hours ahead of %s", t.UTC(), now.UTC())
		}
	}

	directives, ok := aws["CloudWatchMetrics"].([]any)
	if !ok {
		fail("_aws.CloudWatchMetrics is missing or not an array")
		return root, errs
	}
	if len(directives) == 0 {
		fail("_aws.CloudWatchMetrics is empty: no metric would be extracted")
	}
	dimensionNames := map[string]bool{}
	metricNames := map[string]string{} // name -> storage resolution
	for i, d := range directives {
		where := fmt.Sprintf("CloudWatchMetrics[%d]", i)
		dir, ok := d.(map[string]any)
		if !ok {
			fail("%s is not an object", where)
			continue
		}
		onlyMembers(dir, where, fail, "Namespace", "Dimensions", "Metrics")

		ns, ok := dir["Namespace"].(string)
		switch {
		case !ok:
			fail("%s.Namespace is missing or not a string", where)
		case len(ns) < 1 || len(ns) > maxNameLength:
			fail("%s.Namespace has %d characters, not 1 to %d", where, len(ns), maxNameLength)
		case !printableASCII(ns) || strings.TrimSpace(ns) == "":
			fail("%s.Namespace %q is not printable ASCII with a non-space", where, ns)
		case strings.HasPrefix(ns, ":"):
			fail("%s.Namespace %q starts with a colon", where, ns)
		}

		sets, ok := dir["Dimensions"].([]any)
		switch {
		case !ok:
			fail("%s.Dimensions is missing or not an array", where)
		case len(sets) == 0:
			fail("%s.Dimensions holds no DimensionSet", where)
		}
		for j, s := range sets {
			setWhere := fmt.Sprintf("%s.Dimensions[%d]", where, j)
			set, ok := s.([]any)
			if !ok {
				fail("%s is not an array", setWhere)
				continue
			}
			if len(set) > maxDimensionsPerSet {
				fail("%s has %d dimensions, more than %d", setWhere, len(set), maxDimensionsPerSet)
			}
			seen := map[string]bool{}
			for _, k := range set {
				key, ok := k.(string)
				if !ok {
					fail("%s holds a reference that is not a string", setWhere)
					continue
				}
				if seen[key] {
					fail("%s names %q twice", setWhere, key)
				}
				seen[key] = true
				dimensionNames[key] = true
				if len(key) < 1 || len(key) > maxNameLength || !printableASCII(key) || strings.HasPrefix(key, ":") {
					fail("%s: dimension name %q is not 1 to %d printable ASCII characters not starting with a colon", setWhere, key, maxNameLength)
				}
				target, present := root[key]
				if !present {
					fail("%s: dimension %q has no target member at the root", setWhere, key)
					continue
				}
				value, ok := target.(string)
				switch {
				case !ok:
					fail("%s: dimension target %q is not a string: %v", setWhere, key, target)
				case len(value) > maxDimensionValueLen || !printableASCII(value) || strings.TrimSpace(value) == "":
					fail("%s: dimension value %q is not 1 to %d ASCII characters with a non-space", setWhere, value, maxDimensionValueLen)
				}
			}
		}

		defs, ok := dir["Metrics"].([]any)
		if !ok {
			fail("%s.Metrics is missing or not an array", where)
			continue
		}
		if len(defs) > maxMetricsPerDirective {
			fail("%s.Metrics has %d definitions, more than %d", where, len(defs), maxMetricsPerDirective)
		}
		for j, m := range defs {
			defWhere := fmt.Sprintf("%s.Metrics[%d]", where, j)
			def, ok := m.(map[string]any)
			if !ok {
				fail("%s is not an object", defWhere)
				continue
			}
			onlyMembers(def, defWhere, fail, "Name", "Unit", "StorageResolution")
			name, ok := def["Name"].(string)
			if !ok || len(name) < 1 || len(name) > maxNameLength || strings.TrimSpace(name) == "" {
				fail("%s.Name is missing or not 1 to %d characters with a non-space", defWhere, maxNameLength)
				continue
			}
			if u, present := def["Unit"]; present {
				if unit, ok := u.(string); !ok || !emfUnits[unit] {
					fail("%s.Unit %v is not a CloudWatch unit", defWhere, u)
				}
			}
			resolution := "60"
			if r, present := def["StorageResolution"]; present {
				n, ok := r.(json.Number)
				if !ok || (n.String() != "1" && n.String() != "60") {
					fail("%s.StorageResolution %v is not 1 or 60", defWhere, r)
				} else {
					resolution = n.String()
				}
			}
			if prev, dup := metricNames[name]; dup && prev != resolution {
				fail("%s: metric %q has two storage resolutions", defWhere, name)
			}
			metricNames[name] = resolution
			target, present := root[name]
			if !present {
				fail("%s: metric %q has no target member at the root", defWhere, name)
				continue
			}
			checkMetricTarget(target, defWhere, name, fail)
		}
	}
	for name := range metricNames {
		if dimensionNames[name] {
			fail("%q is both a metric and a dimension", name)
		}
	}
	return root, errs
}

// checkMetricTarget checks that a metric target is a finite number or an
// array of at most 100 finite numbers.
func checkMetricTarget(target any, where, name string, fail func(string, ...any)) {
	number := func(v any) bool {
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		f, err := n.Float64()
		return err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
	}
	switch v := target.(type) {
	case []any:
		if len(v) > maxValuesPerMetric {
			fail("%s: metric %q has %d values, more than %d", where, name, len(v), maxValuesPerMetric)
		}
		for _, e := range v {
			if !number(e) {
				fail("%s: metric %q holds a value that is not a number: %v", where, name, e)
			}
		}
	default:
		if !number(v) {
			fail("%s: metric target %q is not a number or an array of numbers: %v", where, name, v)
		}
	}
}

// onlyMembers reports the members of obj other than allowed: objects the
// specification defines must not have any.
func onlyMembers(obj map[string]any, where string, fail func(string, ...any), allowed ...string) {
	for k := range obj {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			fail("%s has member %q, which the specification does not define", where, k)
		}
	}
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

var handled = time.Date(2026, 3, 14, 15, 9, 26, 535_000_000, time.UTC)

func recordOne(t *testing.T, namespace string, ev metrics.Event) []byte {
	t.Helper()
	var buf bytes.Buffer
	e, err := metrics.New(&buf, namespace)
	if err != nil {
		t.Fatalf("New(%q): %v", namespace, err)
	}
	if err := e.Record(ev); err != nil {
		t.Fatalf("Record: %v", err)
	}
	return buf.Bytes()
}

func mustValid(t *testing.T, line []byte, now time.Time) map[string]any {
	t.Helper()
	root, errs := validateEMF(line, now)
	if len(errs) > 0 {
		t.Fatalf("line breaks the EMF specification:\n  %s\nline: %s", strings.Join(errs, "\n  "), line)
	}
	return root
}

func TestRecordOutcomes(t *testing.T) {
	cases := []struct {
		name string
		ev   metrics.Event
		want map[string]string // root members, as JSON text
	}{
		{
			name: "tagged after retries",
			ev: metrics.Event{Outcome: "tagged", EventName: "CreateKey", Region: "us-east-1",
				Retries: 2, TagsWritten: 6, Duration: 1234567 * time.Microsecond, Time: handled},
			want: map[string]string{"Outcome": "tagged", "EventName": "CreateKey", "Region": "us-east-1",
				"Events": "1", "Retries": "2", "TagsWritten": "6", "Repairs": "0", "ForgedTagsKept": "0", "Duration": "1234.567"},
		},
		{
			name: "tamper repair",
			ev: metrics.Event{Outcome: "tagged", EventName: "UntagResource", Region: "us-east-1",
				TagsWritten: 3, Repairs: 1, Duration: 900 * time.Millisecond, Time: handled},
			want: map[string]string{"Outcome": "tagged", "EventName": "UntagResource", "Region": "us-east-1",
				"Events": "1", "Retries": "0", "TagsWritten": "3", "Repairs": "1", "ForgedTagsKept": "0", "Duration": "900"},
		},
		{
			name: "tagged replica first time",
			ev: metrics.Event{Outcome: "tagged", EventName: "ReplicateKey", Region: "eu-west-1",
				TagsWritten: 7, Duration: 80 * time.Millisecond, Time: handled},
			want: map[string]string{"Outcome": "tagged", "EventName": "ReplicateKey", "Region": "eu-west-1",
				"Events": "1", "Retries": "0", "TagsWritten": "7", "Repairs": "0", "ForgedTagsKept": "0", "Duration": "80"},
		},
		{
			name: "skipped without a call",
			ev: metrics.Event{Outcome: "skipped", EventName: "CreateKey", Region: "ap-southeast-2",
				Duration: 150 * time.Microsecond, Time: handled},
			want: map[string]string{"Outcome": "skipped", "EventName": "CreateKey", "Region": "ap-southeast-2",
				"Events": "1", "Retries": "0", "TagsWritten": "0", "Repairs": "0", "ForgedTagsKept": "0", "Duration": "0.15"},
		},
		{
			name: "dead-lettered after five attempts",
			ev: metrics.Event{Outcome: "dead-lettered", EventName: "CreateKey", Region: "us-gov-west-1",
				Retries: 4, Duration: 2 * time.Second, Time: handled},
			want: map[string]string{"Outcome": "dead-lettered", "EventName": "CreateKey", "Region": "us-gov-west-1",
				"Events": "1", "Retries": "4", "TagsWritten": "0", "Repairs": "0", "ForgedTagsKept": "0", "Duration": "2000"},
		},
		{
			name: "dead-lettered malformed event has no name or region",
			ev:   metrics.Event{Outcome: "dead-lettered", Time: handled},
			want: map[string]string{"Outcome": "dead-lettered", "EventName": "Other", "Region": "unknown",
				"Events": "1", "Retries": "0", "TagsWritten": "0", "Repairs": "0", "ForgedTagsKept": "0", "Duration": "0"},
		},
		{
			name: "error",
			ev: metrics.Event{Outcome: "error", EventName: "ReplicateKey", Region: "cn-north-1",
				Retries: 1, Duration: time.Nanosecond, Time: handled},
			want: map[string]string{"Outcome": "error", "EventName": "ReplicateKey", "Region": "cn-north-1",
				"Events": "1", "Retries": "1", "TagsWritten": "0", "Repairs": "0", "ForgedTagsKept": "0", "Duration": "0.000001"},
		},
		{
			name: "values outside the closed sets",
			ev: metrics.Event{Outcome: "Tagged", EventName: "ScheduleKeyDeletion", Region: "us-east-1\"}",
				Retries: -1, TagsWritten: -3, Duration: -time.Second, Time: handled},
			want: map[string]string{"Outcome": "unknown", "EventName": "Other", "Region": "unknown",
				"Events": "1", "Retries": "0", "TagsWritten": "0", "Repairs": "0", "ForgedTagsKept": "0", "Duration": "0"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			line := recordOne(t, "", tc.ev)
			root := mustValid(t, line, handled)
			got := map[string]string{}
			for k, v := range root {
				if k == "_aws" {
					continue
				}
				switch v := v.(type) {
				case string:
					got[k] = v
				case json.Number:
					got[k] = v.String()
				default:
					t.Errorf("root member %s = %v (%T), want a string or number", k, v, v)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("root members = %v, want %v", got, tc.want)
			}
			ts := root["_aws"].(map[string]any)["Timestamp"].(json.Number).String()
			if want := fmt.Sprint(handled.UnixMilli()); ts != want {
				t.Errorf("Timestamp = %s, want %s", ts, want)
			}
		})
	}
}

func TestRecordDirective(t *testing.T) {
	line := recordOne(t, "Platform/KMS Tagger", metrics.Event{Outcome: "tagged", Time: handled})
	mustValid(t, line, handled)
	var doc struct {
		AWS struct {
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []map[string]any
			}
		} `json:"_aws"`
	}
	if err := json.Unmarshal(line, &doc); err != nil {
		t.Fatal(err)
	}
	if n := len(doc.AWS.CloudWatchMetrics); n != 1 {
		t.Fatalf("got %d directives, want 1", n)
	}
	d := doc.AWS.CloudWatchMetrics[0]
	if d.Namespace != "Platform/KMS Tagger" {
		t.Errorf("Namespace = %q, want %q", d.Namespace, "Platform/KMS Tagger")
	}
	wantDims := [][]string{{"Outcome"}, {"Outcome", "EventName"}, {"Region"}}
	if !reflect.DeepEqual(d.Dimensions, wantDims) {
		t.Errorf("Dimensions = %v, want %v", d.Dimensions, wantDims)
	}
	wantMetrics := []map[string]any{
		{"Name": "Events", "Unit": "Count"},
		{"Name": "Retries", "Unit": "Count"},
		{"Name": "TagsWritten", "Unit": "Count"},
		{"Name": "Repairs", "Unit": "Count"},
		{"Name": "ForgedTagsKept", "Unit": "Count"},
		{"Name": "Duration", "Unit": "Milliseconds"},
	}
	if !reflect.DeepEqual(d.Metrics, wantMetrics) {
		t.Errorf("Metrics = %v, want %v", d.Metrics, wantMetrics)
	}
}

// TestOutcomesMatchTagger keeps the closed set of outcomes in step with
// tagger.Outcome: every outcome the handler reports is its own dimension
// value.
func TestOutcomesMatchTagger(t *testing.T) {
	for _, o := range []tagger.Outcome{tagger.OutcomeTagged, tagger.OutcomeSkipped, tagger.OutcomeDeadLettered, tagger.OutcomeError} {
		root := mustValid(t, recordOne(t, "", metrics.Event{Outcome: string(o), Time: handled}), handled)
		if got := root["Outcome"]; got != string(o) {
			t.Errorf("Outcome for tagger outcome %q = %v, want %q", o, got, o)
		}
	}
}

// TestRecordEventNames checks that every event the events package handles
// is its own EventName dimension value, and anything else is Other.
func TestRecordEventNames(t *testing.T) {
	cases := map[string]string{"": "Other", "EnableKeyRotation": "Other", "createkey": "Other"}
	for _, name := range append(events.CreationEventNames(), events.TagChangeEventNames()...) {
		cases[name] = name
	}
	for in, want := range cases {
		root := mustValid(t, recordOne(t, "", metrics.Event{Outcome: "tagged", EventName: in, Time: handled}), handled)
		if got := root["EventName"]; got != want {
			t.Errorf("EventName for %q = %v, want %q", in, got, want)
		}
	}
}

func TestRecordRegions(t *testing.T) {
	cases := map[string]string{
		"us-east-1": "us-east-1", "eu-central-2": "eu-central-2", "ap-southeast-5": "ap-southeast-5",
		"us-gov-east-1": "us-gov-east-1", "us-isob-east-1": "us-isob-east-1", "mx-central-1": "mx-central-1",
		"": "unknown", "us-east": "unknown", "US-EAST-1": "unknown", "us-east-123": "unknown",
		"useast-1": "unknown", "us--1": "unknown", "us-east-1-": "unknown", "aws-global": "unknown",
		"us-east-1 ": "unknown", "ü-east-1": "unknown", strings.Repeat("ab-", 11) + "1": "unknown",
	}
	for in, want := range cases {
		root := mustValid(t, recordOne(t, "", metrics.Event{Outcome: "skipped", Region: in, Time: handled}), handled)
		if got := root["Region"]; got != want {
			t.Errorf("Region for %q = %v, want %q", in, got, want)
		}
	}
}

func TestNewNamespace(t *testing.T) {
	cases := []struct {
		in, want string
		wantErr  string
	}{
		{in: "", want: metrics.DefaultNamespace},
		{in: "KMSAutoTagger", want: "KMSAutoTagger"},
		{in: "Platform/KMS Tagger#1:prod", want: "Platform/KMS Tagger#1:prod"},
		{in: `Quote"Back\\slash<&>'~`, want: `Quote"Back\\slash<&>'~`},
		{in: strings.Repeat("n", 255), want: strings.Repeat("n", 255)},
		{in: "   ", wantErr: "empty"},
		{in: strings.Repeat("n", 256), wantErr: "more than 255"},
		{in: ":Tagger", wantErr: "colon"},
		{in: "AWS/KMS", wantErr: "reserved"},
		{in: "Tag\tger", wantErr: "printable ASCII"},
		{in: "Tagger™", wantErr: "printable ASCII"},
	}
	for _, tc := range cases {
		var buf bytes.Buffer
		e, err := metrics.New(&buf, tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("New(%q) error = %v, want one mentioning %q", tc.in, err, tc.wantErr)
			}
			if cerr := metrics.CheckNamespace(tc.in); cerr == nil {
				t.Errorf("CheckNamespace(%q) = nil, want an error", tc.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("New(%q): %v", tc.in, err)
			continue
		}
		if err := e.Record(metrics.Event{Outcome: "tagged", Time: handled}); err != nil {
			t.Fatal(err)
		}
		root := mustValid(t, buf.Bytes(), handled)
		ns := root["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)["Namespace"]
		if ns != tc.want {
			t.Errorf("New(%q) writes Namespace %v, want %q", tc.in, ns, tc.want)
		}
	}
}

// writeCounter records each Write call separately.
type writeCounter struct {
	mu     sync.Mutex
	writes [][]byte
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, bytes.Clone(p))
	return len(p), nil
}

func TestRecordOneWritePerLine(t *testing.T) {
	w := &writeCounter{}
	e, err := metrics.New(w, "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := e.Record(metrics.Event{Outcome: "tagged", Retries: i, Time: handled}); err != nil {
			t.Fatal(err)
		}
	}
	if len(w.writes) != 3 {
		t.Fatalf("got %d Write calls for 3 records, want 3", len(w.writes))
	}
	for i, p := range w.writes {
		if n := bytes.Count(p, []byte("\n")); n != 1 || !bytes.HasSuffix(p, []byte("\n")) {
			t.Errorf("write %d holds %d newlines, want exactly one, at the end: %q", i, n, p)
		}
		root := mustValid(t, p, handled)
		if got, want := root["Retries"], json.Number(fmt.Sprint(i)); got != want {
			t.Errorf("write %d: Retries = %v, want %v (a reused buffer must not leak into a written line)", i, got, want)
		}
	}
}

// TestRecordConcurrent records from many goroutines into one unsynchronised
// buffer: under -race, a Write outside the Emitter's lock is reported, and
// every line must still be whole.
func TestRecordConcurrent(t *testing.T) {
	var buf bytes.Buffer
	e, err := metrics.New(&buf, "")
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, each = 8, 50
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				if err := e.Record(metrics.Event{Outcome: "tagged", EventName: "CreateKey", Region: "us-east-1",
					Retries: g, TagsWritten: i, Time: handled}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	lines := bytes.SplitAfter(buf.Bytes(), []byte("\n"))
	lines = lines[:len(lines)-1] // after the last newline
	if len(lines) != goroutines*each {
		t.Fatalf("got %d lines, want %d", len(lines), goroutines*each)
	}
	for _, l := range lines {
		mustValid(t, l, handled)
	}
}

func TestRecordWriteError(t *testing.T) {
	broken := errors.New("stdout closed")
	e, err := metrics.New(errWriter{broken}, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Record(metrics.Event{Outcome: "tagged"}); !errors.Is(err, broken) {
		t.Errorf("Record error = %v, want one wrapping %v", err, broken)
	}
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

func TestNilEmitterRecordsNothing(t *testing.T) {
	var e *metrics.Emitter
	if err := e.Record(metrics.Event{Outcome: "tagged"}); err != nil {
		t.Errorf("nil Emitter Record = %v, want nil", err)
	}
}

func TestRecordZeroTimeIsNow(t *testing.T) {
	before := time.Now().Truncate(time.Millisecond)
	line := recordOne(t, "", metrics.Event{Outcome: "skipped"})
	after := time.Now()
	root := mustValid(t, line, after)
	ms, _ := root["_aws"].(map[string]any)["Timestamp"].(json.Number).Int64()
	if got := time.UnixMilli(ms); got.Before(before) || got.After(after) {
		t.Errorf("Timestamp = %s, want between %s and %s", got, before, after)
	}
}

// TestValidatorRejects proves the validator can fail: each broken variant of
// a valid line must be reported, for the reason given.
func TestValidatorRejects(t *testing.T) {
	valid := recordOne(t, "", metrics.Event{Outcome: "tagged", EventName: "CreateKey", Region: "us-east-1",
		Retries: 1, TagsWritten: 6, Duration: time.Second, Time: handled})
	mustValid(t, valid, handled)

	// mutate decodes the valid line, changes it and encodes it again.
	mutate := func(change func(root, aws, dir map[string]any)) []byte {
		dec := json.NewDecoder(bytes.NewReader(valid))
		dec.UseNumber()
		var root map[string]any
		if err := dec.Decode(&root); err != nil {
			t.Fatal(err)
		}
		aws := root["_aws"].(map[string]any)
		dir := aws["CloudWatchMetrics"].([]any)[0].(map[string]any)
		change(root, aws, dir)
		b, err := json.Marshal(root)
		if err != nil {
			t.Fatal(err)
		}
		return append(b, '\n')
	}
	metricDef := func(dir map[string]any, i int) map[string]any {
		return dir["Metrics"].([]any)[i].(map[string]any)
	}
	many := func(n int, f func(i int) any) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	cases := []struct {
		name string
		line []byte
		want string
	}{
		{"no newline", bytes.TrimSuffix(valid, []byte("\n")), "newline"},
		{"two lines", append(bytes.Clone(valid), valid...), "data after"},
		{"not JSON", []byte("START RequestId: 1\n"), "not a JSON object"},
		{"array", []byte("[1]\n"), "not a JSON object"},
		{"too large", mutate(func(r, _, _ map[string]any) { r["pad"] = strings.Repeat("x", maxLineBytes) }), "bytes"},
		{"no _aws", mutate(func(r, _, _ map[string]any) { delete(r, "_aws") }), "no _aws"},
		{"_aws not object", mutate(func(r, _, _ map[string]any) { r["_aws"] = "x" }), "no _aws"},
		{"_aws extra member", mutate(func(_, a, _ map[string]any) { a["LogGroupName"] = "x" }), "does not define"},
		{"no Timestamp", mutate(func(_, a, _ map[string]any) { delete(a, "Timestamp") }), "Timestamp is missing"},
		{"Timestamp in seconds", mutate(func(_, a, _ map[string]any) { a["Timestamp"] = json.Number("1773500966.5") }), "whole number"},
		{"Timestamp string", mutate(func(_, a, _ map[string]any) { a["Timestamp"] = "1773500966535" }), "Timestamp is missing or not a number"},
		{"Timestamp too old", mutate(func(_, a, _ map[string]any) {
			a["Timestamp"] = json.Number(fmt.Sprint(handled.Add(-15 * 24 * time.Hour).UnixMilli()))
		}), "two weeks"},
		{"no CloudWatchMetrics", mutate(func(_, a, _ map[string]any) { delete(a, "CloudWatchMetrics") }), "CloudWatchMetrics is missing"},
		{"empty CloudWatchMetrics", mutate(func(_, a, _ map[string]any) { a["CloudWatchMetrics"] = []any{} }), "empty"},
		{"directive extra member", mutate(func(_, _, d map[string]any) { d["Period"] = 60 }), "does not define"},
		{"no Namespace", mutate(func(_, _, d map[string]any) { delete(d, "Namespace") }), "Namespace is missing"},
		{"long Namespace", mutate(func(_, _, d map[string]any) { d["Namespace"] = strings.Repeat("n", 256) }), "Namespace has 256"},
		{"colon Namespace", mutate(func(_, _, d map[string]any) { d["Namespace"] = ":x" }), "colon"},
		{"no Dimensions", mutate(func(_, _, d map[string]any) { delete(d, "Dimensions") }), "Dimensions is missing"},
		{"empty Dimensions", mutate(func(_, _, d map[string]any) { d["Dimensions"] = []any{} }), "no DimensionSet"},
		{"31 dimensions", mutate(func(r, _, d map[string]any) {
			d["Dimensions"] = []any{many(31, func(i int) any { k := fmt.Sprint("D", i); r[k] = "v"; return k })}
		}), "more than 30"},
		{"dimension without target", mutate(func(_, _, d map[string]any) { d["Dimensions"] = []any{[]any{"Stage"}} }), "no target"},
		{"nested dimension target", mutate(func(r, _, d map[string]any) {
			r["A"] = map[string]any{"a": "x"}
			d["Dimensions"] = []any{[]any{"A.a"}}
		}), "no target"},
		{"numeric dimension", mutate(func(r, _, _ map[string]any) { r["Region"] = 1 }), "not a string"},
		{"empty dimension value", mutate(func(r, _, _ map[string]any) { r["Region"] = " " }), "non-space"},
		{"non-ASCII dimension value", mutate(func(r, _, _ map[string]any) { r["Region"] = "ü" }), "ASCII"},
		{"long dimension value", mutate(func(r, _, _ map[string]any) { r["Region"] = strings.Repeat("r", 1025) }), "1024"},
		{"dimension named twice", mutate(func(_, _, d map[string]any) { d["Dimensions"] = []any{[]any{"Region", "Region"}} }), "twice"},
		{"no Metrics", mutate(func(_, _, d map[string]any) { delete(d, "Metrics") }), "Metrics is missing"},
		{"101 metrics", mutate(func(r, _, d map[string]any) {
			d["Metrics"] = many(101, func(i int) any { k := fmt.Sprint("M", i); r[k] = 1; return map[string]any{"Name": k} })
		}), "more than 100"},
		{"metric without target", mutate(func(r, _, _ map[string]any) { delete(r, "Retries") }), "no target"},
		{"string metric", mutate(func(r, _, _ map[string]any) { r["Duration"] = "1000" }), "not a number"},
		{"101 values", mutate(func(r, _, _ map[string]any) { r["Duration"] = many(101, func(int) any { return 1 }) }), "101 values"},
		{"bad value in array", mutate(func(r, _, _ map[string]any) { r["Duration"] = []any{1, "x"} }), "not a number"},
		{"metric without Name", mutate(func(_, _, d map[string]any) { delete(metricDef(d, 0), "Name") }), "Name is missing"},
		{"bad unit", mutate(func(_, _, d map[string]any) { metricDef(d, 3)["Unit"] = "Millis" }), "not a CloudWatch unit"},
		{"bad resolution", mutate(func(_, _, d map[string]any) { metricDef(d, 0)["StorageResolution"] = 5 }), "not 1 or 60"},
		{"definition extra member", mutate(func(_, _, d map[string]any) { metricDef(d, 0)["Stat"] = "Sum" }), "does not define"},
		{"metric is a dimension", mutate(func(r, _, d map[string]any) {
			d["Metrics"] = append(d["Metrics"].([]any), map[string]any{"Name": "Region"})
		}), "both a metric and a dimension"},
		{"two resolutions", mutate(func(_, _, d map[string]any) {
			d["Metrics"] = append(d["Metrics"].([]any), map[string]any{"Name": "Events", "StorageResolution": 1})
		}), "two storage resolutions"},
	}
	for _, tc := range cases {
		_, errs := validateEMF(tc.line, handled)
		joined := strings.Join(errs, "; ")
		if !strings.Contains(joined, tc.want) {
			t.Errorf("%s: validator said %q, want a violation mentioning %q", tc.name, joined, tc.want)
		}
	}
}

func BenchmarkRecord(b *testing.B) {
	e, err := metrics.New(io.Discard, "")
	if err != nil {
		b.Fatal(err)
	}
	ev := metrics.Event{Outcome: "tagged", EventName: "CreateKey", Region: "eu-west-1",
		Retries: 1, TagsWritten: 6, Duration: 42 * time.Millisecond, Time: handled}
	b.ReportAllocs()
	for b.Loop() {
		if err := e.Record(ev); err != nil {
			b.Fatal(err)
		}
	}
}
