package metrics

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
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
	// MetricForgedTagsKept counts forged or creator-passed governance tag
	// values a key keeps because the tagger could not correct them (dead
	// letter ForgedGovernanceTagsUncorrected): an alarm on it tells a key
	// carrying forged governance tags from an ordinary failure.
	MetricForgedTagsKept = "ForgedTagsKept"
)

// Dimension values that stand for a value outside the closed sets.
const (
	// OtherEventName is the EventName of any event that is not one the
	// events package handles (events.CreationEventNames and
	// events.TagChangeEventNames), or has no name.
	OtherEventName = "Other"
	// Unknown is the Outcome or Region of an event whose own value is not a
	// known outcome or not a region name.
	Unknown = "unknown"
)

// outcomes are the Outcome dimension values kept as they are: the
// tagger.Outcome values (this package cannot import tagger, which will
// import it; a test keeps the two in step).
var outcomes = []string{"tagged", "skipped", "dead-lettered", "error"}

// Event is what one handled event adds to the metrics. Each field feeds the
// metric or dimension its comment names.
type Event struct {
	// Outcome is the event's tagger.Outcome (dimension Outcome).
	Outcome string
	// EventName is the CloudTrail eventName (dimension EventName).
	EventName string
	// Region is the key's region (dimension Region).
	Region string
	// Retries is the number of retries of the KMS calls made for the event
	// (metric Retries).
	Retries int
	// TagsWritten is the number of tags TagResource wrote on the key, 0
	// for any outcome but tagged (metric TagsWritten).
	TagsWritten int
	// Repairs is 1 when the event was a tamper repair that restored
	// governance tags, else 0 (metric Repairs).
	Repairs int
	// ForgedTagsKept is the number of forged governance tag values the key
	// keeps because the tagger could not correct them (metric
	// ForgedTagsKept).
	ForgedTagsKept int
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

// metricTable lists the metrics of every line, in the order of the
// directive's Metrics. The EMF specification allows at most 100.
var metricTable = []metric{
	{MetricEvents, "Count", func(Event) float64 { return 1 }},
	{MetricRetries, "Count", func(e Event) float64 { return float64(max(e.Retries, 0)) }},
	{MetricTagsWritten, "Count", func(e Event) float64 { return float64(max(e.TagsWritten, 0)) }},
	{MetricRepairs, "Count", func(e Event) float64 { return float64(max(e.Repairs, 0)) }},
	{MetricForgedTagsKept, "Count", func(e Event) float64 { return float64(max(e.ForgedTagsKept, 0)) }},
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

// metadata is the _aws member of an EMF line (the specification's Metadata
// object): when the values were taken and which root members are metrics.
type metadata struct {
	// Timestamp is in milliseconds since the epoch.
	Timestamp         int64       `json:"Timestamp"`
	CloudWatchMetrics []directive `json:"CloudWatchMetrics"`
}

// directive is a MetricDirective of the specification.
type directive struct {
	Namespace  string       `json:"Namespace"`
	Dimensions [][]string   `json:"Dimensions"`
	Metrics    []definition `json:"Metrics"`
}

// definition is a MetricDefinition of the specification.
type definition struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

// Emitter writes one EMF line per Record. It is safe for concurrent use; a
// nil *Emitter records nothing.
type Emitter struct {
	w io.Writer
	// directives are the CloudWatchMetrics of every line: one directive
	// with the namespace, dimensionSets and metricTable.
	directives []directive

	mu sync.Mutex // held for each Write to w
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
	d := directive{Namespace: namespace, Dimensions: dimensionSets}
	for _, m := range metricTable {
		d.Metrics = append(d.Metrics, definition{Name: m.name, Unit: m.unit})
	}
	return &Emitter{w: w, directives: []directive{d}}, nil
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
	// The root object: _aws, then a member per dimension and per metric.
	root := map[string]any{
		"_aws":             metadata{Timestamp: t.UnixMilli(), CloudWatchMetrics: e.directives},
		DimensionOutcome:   outcomeValue(ev.Outcome),
		DimensionEventName: eventNameValue(ev.EventName),
		DimensionRegion:    regionValue(ev.Region),
	}
	for _, m := range metricTable {
		root[m.name] = m.value(ev)
	}
	line, err := json.Marshal(root)
	if err != nil {
		return fmt.Errorf("encoding EMF metrics line: %w", err)
	}
	line = append(line, '\n')
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.w.Write(line); err != nil {
		return fmt.Errorf("writing EMF metrics line: %w", err)
	}
	return nil
}

func outcomeValue(o string) string {
	if slices.Contains(outcomes, o) {
		return o
	}
	return Unknown
}

// handledEventNames are the EventName dimension values kept as they are:
// the events the events package handles.
var handledEventNames = append(events.CreationEventNames(), events.TagChangeEventNames()...)

func eventNameValue(name string) string {
	if slices.Contains(handledEventNames, name) {
		return name
	}
	return OtherEventName
}

// regionName is the form of an AWS region name (us-east-1, us-gov-west-1,
// ap-southeast-5): two lowercase letters, one or more lowercase words and a
// number of one or two digits, joined by hyphens.
var regionName = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)

// regionValue returns region when it has the form of an AWS region name and
// at most 32 characters.
func regionValue(region string) string {
	if len(region) > 32 || !regionName.MatchString(region) {
		return Unknown
	}
	return region
}
