package tagger

import (
	"fmt"
	"strings"
	"time"

	"github.com/kms-autotagger/kms-autotagger/internal/events"
)

// Tag is one KMS tag.
type Tag = events.Tag

// Default names of the governance tags, before any prefix.
const (
	DefaultCreatedBy       = "CreatedBy"
	DefaultCreatedByRole   = "CreatedByRole"
	DefaultCreatedAt       = "CreatedAt"
	DefaultCreatedVia      = "CreatedVia"
	DefaultCreationEventID = "CreationEventId"
	DefaultReplicaOf       = "ReplicaOf"
)

// Names are the keys of the governance tags this tool derives from an
// event, before the prefix. An empty name switches that tag off.
type Names struct {
	// CreatedBy holds the principal ARN that created the key
	// (userIdentity.arn; an AWS service's invokedBy when it has no ARN).
	CreatedBy string
	// CreatedByRole holds the role (or IAM user) that issued the session of
	// an AssumedRole or FederatedUser creator.
	CreatedByRole string
	// CreatedAt holds the event time in RFC 3339, UTC.
	CreatedAt string
	// CreatedVia holds userIdentity.invokedBy, the service that made the
	// call for the principal (e.g. cloudformation.amazonaws.com).
	CreatedVia string
	// CreationEventID holds the CloudTrail eventID of the creating call.
	CreationEventID string
	// ReplicaOf holds the primary key ARN of a multi-Region replica.
	ReplicaOf string
}

// DefaultNames returns the default governance tag names.
func DefaultNames() Names {
	return Names{
		CreatedBy:       DefaultCreatedBy,
		CreatedByRole:   DefaultCreatedByRole,
		CreatedAt:       DefaultCreatedAt,
		CreatedVia:      DefaultCreatedVia,
		CreationEventID: DefaultCreationEventID,
		ReplicaOf:       DefaultReplicaOf,
	}
}

// Policy decides which tags a key gets. The tags it writes, the derived
// governance tags and the configured static tags, are the tags it owns: their
// values are authoritative and overwrite whatever the creator passed under the
// same keys. Tags it does not own are never written.
type Policy struct {
	derived []derivedTag
	static  []Tag
	owned   map[string]struct{}
}

type derivedTag struct {
	key   string
	value func(*events.KeyEvent) string
}

// NewPolicy checks the configured names (prefix included) and static tags
// against what KMS accepts and returns the policy. Derived tags come first
// in priority order: CreatedBy, CreatedAt, CreationEventId, CreatedByRole,
// CreatedVia, ReplicaOf; static tags follow in the order given.
func NewPolicy(names Names, prefix string, static []Tag) (*Policy, error) {
	p := &Policy{owned: make(map[string]struct{})}
	own := func(key string) error {
		if err := ValidateKey(key); err != nil {
			return err
		}
		if _, dup := p.owned[key]; dup {
			return fmt.Errorf("tag key %q is configured twice", key)
		}
		p.owned[key] = struct{}{}
		return nil
	}
	for _, d := range []struct {
		name  string
		value func(*events.KeyEvent) string
	}{
		{names.CreatedBy, createdBy},
		{names.CreatedAt, createdAt},
		{names.CreationEventID, func(ev *events.KeyEvent) string { return ev.EventID }},
		{names.CreatedByRole, createdByRole},
		{names.CreatedVia, func(ev *events.KeyEvent) string { return ev.Creator.InvokedBy }},
		{names.ReplicaOf, func(ev *events.KeyEvent) string { return ev.PrimaryKeyARN }},
	} {
		if d.name == "" {
			continue
		}
		key := prefix + d.name
		if err := own(key); err != nil {
			return nil, fmt.Errorf("governance tag name: %w", err)
		}
		p.derived = append(p.derived, derivedTag{key: key, value: d.value})
	}
	for _, t := range static {
		if err := own(t.Key); err != nil {
			return nil, fmt.Errorf("static tag: %w", err)
		}
		if err := ValidateValue(t.Value); err != nil {
			return nil, fmt.Errorf("static tag %q: %w", t.Key, err)
		}
		p.static = append(p.static, t)
	}
	if len(p.owned) == 0 {
		return nil, fmt.Errorf("no tags configured: every governance tag is switched off and there are no static tags")
	}
	if len(p.owned) > MaxTagsPerKey {
		return nil, fmt.Errorf("%d tags configured, more than the %d a KMS key can carry", len(p.owned), MaxTagsPerKey)
	}
	return p, nil
}

// Owns reports whether key is a tag this policy writes.
func (p *Policy) Owns(key string) bool {
	_, ok := p.owned[key]
	return ok
}

// Keys returns the keys of every tag the policy may write, in priority order.
func (p *Policy) Keys() []string {
	keys := make([]string, 0, len(p.derived)+len(p.static))
	for _, d := range p.derived {
		keys = append(keys, d.key)
	}
	for _, t := range p.static {
		keys = append(keys, t.Key)
	}
	return keys
}

// Plan is what the policy decided for one key.
type Plan struct {
	// Tags are the tags to write, in priority order. Values are sanitized.
	Tags []Tag `json:"tags"`
	// Overridden are tags the creator passed under keys this policy owns,
	// with the creator's values: Tags overwrites them with the truth.
	Overridden []Tag `json:"overridden,omitempty"`
	// Dropped are tags left out, lowest priority first out, so that the key
	// stays within the 50 tags KMS allows next to the creator's own tags.
	Dropped []Tag `json:"dropped,omitempty"`
}

// Plan derives the tags for ev. A tag whose value would be empty
// (CreatedByRole for an IAM user, CreatedVia for a direct call, ReplicaOf for
// a key that is not a replica) is left out, unless the creator passed that
// key: then it is written empty, so a spoofed governance tag never stays.
//
// The budget: the key may carry 50 tags. The creator's tags under keys this
// policy does not own count against it, except aws: tags, which AWS does not
// count; tags that overwrite a key the creator
// passed cost nothing. New tags that do not fit are dropped, lowest priority
// first, and listed in Plan.Dropped.
func (p *Policy) Plan(ev *events.KeyEvent) Plan {
	passed := make(map[string]struct{}, len(ev.RequestTags))
	others := 0
	var plan Plan
	for _, t := range ev.RequestTags {
		if _, seen := passed[t.Key]; seen {
			continue
		}
		passed[t.Key] = struct{}{}
		switch {
		case p.Owns(t.Key):
			plan.Overridden = append(plan.Overridden, t)
		case !isReserved(t.Key):
			others++ // tags with the aws: prefix do not count against the limit
		}
	}
	room := MaxTagsPerKey - others
	plan.Tags = make([]Tag, 0, len(p.derived)+len(p.static))
	add := func(t Tag, keepEmpty bool) {
		_, overwrites := passed[t.Key]
		switch {
		case overwrites:
			plan.Tags = append(plan.Tags, t)
		case t.Value == "" && !keepEmpty:
			return
		case room > 0:
			plan.Tags = append(plan.Tags, t)
			room--
		default:
			plan.Dropped = append(plan.Dropped, t)
		}
	}
	for _, d := range p.derived {
		add(Tag{Key: d.key, Value: SanitizeValue(d.value(ev))}, false)
	}
	for _, t := range p.static {
		add(t, true) // an empty static value is configured, so written
	}
	return plan
}

func isReserved(key string) bool {
	return len(key) >= len(ReservedPrefix) && strings.EqualFold(key[:len(ReservedPrefix)], ReservedPrefix)
}

func createdBy(ev *events.KeyEvent) string {
	c := ev.Creator
	switch {
	case c.PrincipalARN != "":
		return c.PrincipalARN
	case c.IdentityStoreUser != "":
		return c.IdentityStoreUser
	case c.InvokedBy != "":
		return c.InvokedBy
	case c.PrincipalID != "":
		return c.PrincipalID
	default:
		return c.Type
	}
}

func createdByRole(ev *events.KeyEvent) string {
	switch ev.Creator.Type {
	case events.IdentityAssumedRole, events.IdentityFederatedUser:
		return ev.Creator.IssuerARN
	}
	return ""
}

func createdAt(ev *events.KeyEvent) string {
	if ev.EventTime.IsZero() {
		return ""
	}
	return ev.EventTime.UTC().Format(time.RFC3339)
}
