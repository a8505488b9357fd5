package events

import "strings"

// parser decodes the CloudTrail record of one API call. Decode picks it by
// the EventBridge source and detail-type and the record's eventName;
// DecodeRecord by the record's eventSource and eventName.
type parser struct {
	source      string // EventBridge source
	detailType  string // EventBridge detail-type
	eventSource string // CloudTrail eventSource
	eventName   string // CloudTrail eventName
	effect      effect // what the call does to a key
	// parse decodes rec; env is the EventBridge envelope's account and
	// region, nil for a bare record (DecodeRecord).
	parse func(rec *Record, env *origin) (Decoded, error)
}

// effect is what a handled call does to a key.
type effect int

const (
	// creates: the call creates a key (KindTag or KindSkip).
	creates effect = iota + 1
	// changesTags: the call changes a key's tags (KindTagChange).
	changesTags
)

// parsers lists every event this package decodes; anything else is
// KindIgnore. It is the one declaration of the events the product handles:
// CreationEventNames and TagChangeEventNames are read from it, and through
// them the doctor's event selectors, the backfill's lookups and the metrics'
// EventName dimension.
var parsers = []parser{
	{SourceKMS, DetailTypeAPICall, EventSourceKMS, EventNameCreateKey, creates, parseCreateKey},
	{SourceKMS, DetailTypeAPICall, EventSourceKMS, EventNameReplicateKey, creates, parseReplicateKey},
	{SourceKMS, DetailTypeAPICall, EventSourceKMS, EventNameTagResource, changesTags, parseTagResource},
	{SourceKMS, DetailTypeAPICall, EventSourceKMS, EventNameUntagResource, changesTags, parseUntagResource},
}

// CreationEventNames returns the CloudTrail eventNames of the calls that
// create a key, in table order: CreateKey, ReplicateKey.
func CreationEventNames() []string { return namesOf(creates) }

// TagChangeEventNames returns the eventNames of the calls that change a
// key's tags: TagResource, UntagResource.
func TagChangeEventNames() []string { return namesOf(changesTags) }

// namesOf returns, in a new slice, the eventNames in parsers of the calls
// with effect e, in table order.
func namesOf(e effect) []string {
	var names []string
	for _, p := range parsers {
		if p.effect == e {
			names = append(names, p.eventName)
		}
	}
	return names
}

// handledNames lists the eventNames in parsers, for ignore reasons.
func handledNames() string {
	names := make([]string, len(parsers))
	for i, p := range parsers {
		names[i] = p.eventName
	}
	return strings.Join(names, " or ")
}
