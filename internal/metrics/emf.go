package metrics

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kms-autotagger/kms-autotagger/internal/events"
)

// DefaultNamespace is the CloudWatch namespace of the metrics when New is
// given none.
const DefaultNamespace = "KMSAutoTagger"

// Dimension names.
const (
	DimensionOutcome   = "Outcome"
	DimensionEventName = "EventName"
	DimensionRegion    = "Region"
)

// Metric names.
const (
	MetricEvents      = "Events"
	MetricRetries     = "Retries"
	MetricTagsWritten = "TagsWritten"
	MetricDuration    = "Duration"
	// MetricRepairs counts tamper repairs: governance tags someone else
	// changed or removed, restored.
	MetricRepairs = "Repairs"
)

// Dimension values that stand for a value outside the closed sets.
const (
	// OtherEventName is the EventName of any event that is neither CreateKey
	// nor ReplicateKey, or has no name.
	OtherEventName = "Other"
	// Unknown is the Outcome or Region of an event whose own value is not a
	// known outcome or not a region name.
	Unknown = "unknown"
)

// outcomes are the Outcome dimension values kept as they are: the
// tagger.Outcome values (this package cannot import tagger, which will
// import it; a test keeps the two in step).
var outcomes = [...]string{"tagged", "skipped", "dead-lettered", "error"}

// Event is what one handled event adds to the metrics. Each field feeds the
// metric or dimension its comment names.
type Event struct {
	// Outcome is the event's tagger.Outcome (dimension Outcome).
	Outcome string
	// EventName is the CloudTrail eventName (dimension EventName).
	EventName string
	// Region is the key's region (dimension Region).
	Region string
	// Attempts is the number of TagResource attempts made, the first
	// included; 0 when none was made (metric Retries: Attempts-1, at least
	// 0).
	Attempts int
	// TagsWritten is the number of tags written on the key: the number of
	// tags of a tagged event, 0 for any other outcome (metric TagsWritten).
	TagsWritten int
	// Repairs is 1 when the event was a tamper repair that restored
	// governance tags, else 0 (metric Repairs).
	Repairs int
	// Duration is the time the handler spent on the event (metric Duration,
	// in milliseconds).
	Duration time.Duration
	// Time is when the event was handled (the EMF Timestamp); the zero time
	// means the time of Record.
	Time time.Time
}

// metric is one row of the metric table: a name, a CloudWatch unit and how
// the value is read from an Event.
type metric struct {
	name  string
	unit  string
	value func(Event) float64
}

// metricTable lists the metrics of every line, in the order they are
// written. The EMF specification allows at most 100.
var metricTable = []metric{
	{MetricEvents, "Count", func(Event) float64 { return 1 }},
	{MetricRetries, "Count", func(e Event) float64 { return float64(max(e.Attempts-1, 0)) }},
	{MetricTagsWritten, "Count", func(e Event) float64 { return float64(max(e.TagsWritten, 0)) }},
	{MetricRepairs, "Count", func(e Event) float64 { return float64(max(e.Repairs, 0)) }},
	{MetricDuration, "Milliseconds", func(e Event) float64 {
		return float64(max(e.Duration, 0)) / float64(time.Millisecond)
	}},
}

// dimensionSets are the dimension sets of the directive; see the package
// documentation for the choice.
var dimensionSets = [][]string{
	{DimensionOutcome},
	{DimensionOutcome, DimensionEventName},
	{DimensionRegion},
}

// Emitter writes one EMF line per Record. It is safe for concurrent use; a
// nil *Emitter records nothing.
type Emitter struct {
	w io.Writer
	// head is `{"_aws":{"Timestamp":` and tail what follows the timestamp
	// up to the root members: both are the same for every line.
	head, tail []byte

	mu  sync.Mutex
	buf []byte // the line being built, reused under mu
}

// New returns an Emitter that writes to w (os.Stdout in Lambda) under
// namespace, DefaultNamespace when namespace is empty. It returns an error
// when CheckNamespace rejects the namespace.
func New(w io.Writer, namespace string) (*Emitter, error) {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	if err := CheckNamespace(namespace); err != nil {
		return nil, err
	}
	tail := append([]byte(`,"CloudWatchMetrics":`), directives(namespace)...)
	tail = append(tail, "}"...)
	return &Emitter{w: w, head: []byte(`{"_aws":{"Timestamp":`), tail: tail}, nil
}

// directives returns the CloudWatchMetrics member of every line: one
// directive with the namespace, dimensionSets and metricTable. It is built
// here rather than by encoding/json, whose first use costs the function's
// cold start 0.1 to 0.2 ms: the names are constant ASCII words and the
// namespace printable ASCII (CheckNamespace), which strconv quotes exactly
// as JSON needs (only " and \ escaped).
func directives(namespace string) []byte {
	b := []byte(`[{"Namespace":`)
	b = strconv.AppendQuote(b, namespace)
	b = append(b, `,"Dimensions":[`...)
	for i, set := range dimensionSets {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		for j, name := range set {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendQuote(b, name)
		}
		b = append(b, ']')
	}
	b = append(b, `],"Metrics":[`...)
	for i, m := range metricTable {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"Name":`...)
		b = strconv.AppendQuote(b, m.name)
		b = append(b, `,"Unit":`...)
		b = strconv.AppendQuote(b, m.unit)
		b = append(b, '}')
	}
	return append(b, "]}]"...)
}

// CheckNamespace reports whether CloudWatch accepts namespace: 1 to 255
// printable ASCII characters, not only spaces, not starting with ":", and
// not in the "AWS/" namespaces reserved for AWS services.
func CheckNamespace(namespace string) error {
	switch {
	case namespace == "" || strings.TrimSpace(namespace) == "":
		return errors.New("metrics namespace is empty")
	case len(namespace) > 255:
		return fmt.Errorf("metrics namespace is %d characters long, more than 255", len(namespace))
	case namespace[0] == ':':
		return fmt.Errorf("metrics namespace %q starts with a colon", namespace)
	case strings.HasPrefix(namespace, "AWS/"):
		return fmt.Errorf("metrics namespace %q is in AWS/, which is reserved for AWS services", namespace)
	}
	for i := 0; i < len(namespace); i++ {
		if c := namespace[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("metrics namespace %q holds a character that is not printable ASCII", namespace)
		}
	}
	return nil
}

// Record writes ev as one EMF line, ending in a newline, with a single Write
// call so that the line is never split or interleaved with another Record's.
// An error is the writer's; metrics are best effort, so a caller logs it and
// goes on.
func (e *Emitter) Record(ev Event) error {
	if e == nil {
		return nil
	}
	t := ev.Time
	if t.IsZero() {
		t = time.Now()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	b := append(e.buf[:0], e.head...)
	b = strconv.AppendInt(b, t.UnixMilli(), 10)
	b = append(b, e.tail...)
	// The dimension values come from closed sets of plain ASCII words with
	// no character that JSON escapes, so they are written as they are.
	b = appendString(b, DimensionOutcome, outcomeValue(ev.Outcome))
	b = appendString(b, DimensionEventName, eventNameValue(ev.EventName))
	b = appendString(b, DimensionRegion, regionValue(ev.Region))
	for i := range metricTable {
		m := &metricTable[i]
		b = append(b, ',', '"')
		b = append(b, m.name...)
		b = append(b, '"', ':')
		b = strconv.AppendFloat(b, m.value(ev), 'f', -1, 64)
	}
	b = append(b, '}', '\n')
	e.buf = b
	if _, err := e.w.Write(b); err != nil {
		return fmt.Errorf("writing EMF metrics line: %w", err)
	}
	return nil
}

func appendString(b []byte, name, value string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':', '"')
	b = append(b, value...)
	return append(b, '"')
}

func outcomeValue(o string) string {
	for _, known := range outcomes {
		if o == known {
			return known
		}
	}
	return Unknown
}

func eventNameValue(name string) string {
	switch name {
	case events.EventNameCreateKey, events.EventNameReplicateKey, events.EventNameTagResource, events.EventNameUntagResource:
		return name
	}
	return OtherEventName
}

// regionValue returns region when it has the form of an AWS region name
// (us-east-1, us-gov-west-1, ap-southeast-5): two lowercase letters, one or
// more lowercase words, a number of one or two digits, joined by hyphens.
func regionValue(region string) string {
	if len(region) > 32 {
		return Unknown
	}
	first, rest, ok := strings.Cut(region, "-")
	if !ok || len(first) != 2 || !lower(first) {
		return Unknown
	}
	for words := 0; ; words++ {
		part, more, ok := strings.Cut(rest, "-")
		if !ok {
			if words == 0 || len(part) < 1 || len(part) > 2 || !digits(part) {
				return Unknown
			}
			return region
		}
		if part == "" || !lower(part) {
			return Unknown
		}
		rest = more
	}
}

func lower(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
