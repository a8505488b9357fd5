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
	DefaultEvidence        = "CreatedByEvidence"
	DefaultCreatedByUser   = "CreatedByUser"
	DefaultCreatedByStack  = "CreatedByStack"
)

// Values of the CreatedByEvidence tag: where the governance tags of a key
// were derived from.
const (
	// EvidenceEvent: the EventBridge event of the creating call, checked
	// against the key with DescribeKey.
	EvidenceEvent = "event"
	// EvidenceHistory: the creating call's record in CloudTrail's event
	// history (tamper repair, backfill, audit).
	EvidenceHistory = "history"
	// EvidenceTrailArchive: the creating call's record in the trail's log
	// files in S3, for keys older than the event history.
	EvidenceTrailArchive = "trail-archive"
	// EvidenceCreationDateOnly: no record of the creating call; only
	// CreatedAt, from the key's creation date (backfill --tag-unknown).
	EvidenceCreationDateOnly = "creation-date-only"
)

// fromRecord reports whether evidence names a record of the creating call
// (the event, or CloudTrail's own record of it): one such record is as good
// as another, so a key keeps the one it carries.
func fromRecord(evidence string) bool {
	return evidence == EvidenceEvent || evidence == EvidenceHistory || evidence == EvidenceTrailArchive
}

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
	// CreatedByUser holds the person behind the key, where AWS itself
	// establishes one (UserOf): an IAM user's name, root, an STS source
	// identity, an IAM Identity Center user; for a key CloudFormation made,
	// the person who started the stack operation. Never a name the caller
	// chose, such as a role session's name.
	CreatedByUser string
	// CreatedByStack holds the ARN of the CloudFormation stack that
	// created the key (cloudformation:DescribeStackResources by the key's
	// id), for a key whose creating call CloudFormation made.
	CreatedByStack string
	// Evidence holds where the other governance tags were derived from:
	// EvidenceEvent, EvidenceHistory, EvidenceTrailArchive or
	// EvidenceCreationDateOnly.
	Evidence string
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
		CreatedByUser:   DefaultCreatedByUser,
		CreatedByStack:  DefaultCreatedByStack,
		Evidence:        DefaultEvidence,
	}
}

// Policy decides which tags a key gets. The tags it writes, the derived
// governance tags and the configured static tags, are the tags it owns.
//
// Ownership ignores case, as IAM does when it compares a condition key such
// as aws:ResourceTag/CreatedBy with a tag: a key that equals an owned key
// ignoring case ("createdby", "CREATEDBY") is a forged governance tag, since
// a policy written for CreatedBy would match it. KMS tag keys are
// case-sensitive, so the policy writes each owned key in its configured
// case and removes every case variant.
//
// The exact-set rule: after the tagger writes, the owned keys on a key are
// exactly those with a true value for it, each with its true value. Tags it
// does not own are never written or removed.
type Policy struct {
	derived  []derivedTag
	static   []Tag
	owned    map[string]string // folded key -> the key as configured
	eventID  string            // the CreationEventId key; "" when switched off
	evidence string            // the CreatedByEvidence key; "" when switched off
	user     string            // the CreatedByUser key; "" when switched off
	stack    string            // the CreatedByStack key; "" when switched off
}

type derivedTag struct {
	key   string
	value func(*events.KeyEvent, *PlanInput) attribution
}

// fromEvent is a derived tag read from the creation event alone: its value
// is known, "" meaning the tag has no true value for the key.
func fromEvent(f func(*events.KeyEvent) string) func(*events.KeyEvent, *PlanInput) attribution {
	return func(ev *events.KeyEvent, _ *PlanInput) attribution { return known(f(ev)) }
}

// fold is the form in which keys are compared for ownership.
func fold(key string) string { return strings.ToLower(key) }

// NewPolicy checks the configured names (prefix included) and static tags
// against what KMS accepts and returns the policy. Derived tags come first
// in priority order: CreatedBy, CreatedAt, CreationEventId, CreatedByRole,
// CreatedVia, ReplicaOf, CreatedByUser, CreatedByStack, CreatedByEvidence;
// static tags follow in the order given. Two
// configured keys that differ only in case are refused, since IAM would not
// tell them apart.
func NewPolicy(names Names, prefix string, static []Tag) (*Policy, error) {
	p := &Policy{owned: make(map[string]string)}
	own := func(key string) error {
		if err := ValidateKey(key); err != nil {
			return err
		}
		if prev, dup := p.owned[fold(key)]; dup {
			if prev == key {
				return fmt.Errorf("tag key %q is configured twice", key)
			}
			return fmt.Errorf("tag keys %q and %q are configured twice: they differ only in case, which IAM ignores", prev, key)
		}
		p.owned[fold(key)] = key
		return nil
	}
	for _, d := range []struct {
		name  string
		value func(*events.KeyEvent, *PlanInput) attribution
	}{
		{names.CreatedBy, fromEvent(createdBy)},
		{names.CreatedAt, fromEvent(createdAt)},
		{names.CreationEventID, fromEvent(func(ev *events.KeyEvent) string { return ev.EventID })},
		{names.CreatedByRole, fromEvent(createdByRole)},
		{names.CreatedVia, fromEvent(func(ev *events.KeyEvent) string { return ev.Creator.InvokedBy })},
		{names.ReplicaOf, fromEvent(func(ev *events.KeyEvent) string { return ev.PrimaryKeyARN })},
		{names.CreatedByUser, createdByUser},
		{names.CreatedByStack, createdByStack},
		{names.Evidence, fromEvent(evidence)},
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
	if names.CreationEventID != "" {
		p.eventID = prefix + names.CreationEventID
	}
	if names.Evidence != "" {
		p.evidence = prefix + names.Evidence
	}
	if names.CreatedByUser != "" {
		p.user = prefix + names.CreatedByUser
	}
	if names.CreatedByStack != "" {
		p.stack = prefix + names.CreatedByStack
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

// Owns reports whether key is a tag this policy owns, ignoring case: an
// owned key as configured, or a case variant of one (a forgery).
func (p *Policy) Owns(key string) bool {
	_, ok := p.owned[fold(key)]
	return ok
}

// Exact reports whether key is an owned key exactly as configured; a case
// variant is owned but not exact.
func (p *Policy) Exact(key string) bool {
	return p.owned[fold(key)] == key
}

// CreationEventID returns the value of the CreationEventId tag (exactly
// that key) among tags, or "" when there is none or the tag is switched
// off: the creation event the key's governance tags were derived from.
func (p *Policy) CreationEventID(tags []Tag) string {
	if p.eventID == "" {
		return ""
	}
	for _, t := range tags {
		if t.Key == p.eventID {
			return t.Value
		}
	}
	return ""
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
	// Tags are the owned tags the key must carry, in priority order, with
	// sanitized values: every owned tag with a true value that fits.
	Tags []Tag `json:"tags"`
	// Write are the tags of Tags the key does not carry yet with that
	// value: what TagResource must write.
	Write []Tag `json:"write,omitempty"`
	// Remove are owned keys the key carries that must go (UntagResource):
	// case variants of owned keys, and owned keys with no true value for
	// this key (CreatedByRole on a key an IAM user created, ReplicaOf on a
	// key that is not a replica).
	Remove []string `json:"remove,omitempty"`
	// Overridden are the owned tags (ignoring case) the key carried with
	// values other than the truth, with those values: what Write replaces
	// or Remove removes.
	Overridden []Tag `json:"overridden,omitempty"`
	// Dropped are tags left out, lowest priority first out, so that the key
	// stays within the 50 tags KMS allows next to the tags it does not own.
	Dropped []Tag `json:"dropped,omitempty"`
	// Unset are the derived tags with no true value for this key whose
	// absence the plan explains: CreatedByUser when no person AWS
	// establishes is behind the key (a role session's chosen name, an AWS
	// service, a StackSet instance), with the reason.
	Unset []Note `json:"unset,omitempty"`
	// Pending are the derived tags whose value is not known yet: the stack
	// of a key CloudFormation made, or its operator, could not be looked
	// up. Such a tag is neither written nor removed: a value the key
	// carries stays (Note.Kept, and it is in Tags), unless it is one that
	// someone other than the tagger set (the creator, in the creation
	// request, or the tag change a repair answers), which goes like a
	// forgery. Note.Retry says a later attempt may find the value.
	Pending []Note `json:"pending,omitempty"`
}

// Note says why a derived tag has no value, or none known yet.
type Note struct {
	// Key is the tag key.
	Key string `json:"key"`
	// Reason is why, in a sentence.
	Reason string `json:"reason"`
	// Retry says that a later attempt may find the value (a throttled,
	// failing or slow lookup; a record not yet in CloudTrail's history).
	Retry bool `json:"retry,omitempty"`
	// Kept says the key keeps the value it carries under Key.
	Kept bool `json:"kept,omitempty"`
}

// Retry reports whether a tag of the plan is pending on a lookup that a
// later attempt may complete.
func (pl Plan) Retry() bool {
	for _, n := range pl.Pending {
		if n.Retry {
			return true
		}
	}
	return false
}

// NoOp reports whether the key already carries exactly the owned tags it
// must: nothing to write, nothing to remove.
func (pl Plan) NoOp() bool { return len(pl.Write) == 0 && len(pl.Remove) == 0 }

// Plan derives the owned tags of ev's key given current, the tags the key
// carries now (for a key just created, the tags passed to CreateKey or
// ReplicateKey), with nothing known beyond the event: PlanWith with a zero
// PlanInput. For a key CloudFormation made, CreatedByStack (and
// CreatedByUser when the event names no person) are then pending, and the
// key keeps the values it carries for them.
func (p *Policy) Plan(ev *events.KeyEvent, current []Tag) Plan {
	return p.PlanWith(ev, current, PlanInput{})
}

// PlanWith derives the owned tags of ev's key given current, the tags the
// key carries now, and in, what was found beyond the event (the stack of a
// key CloudFormation made; the values a tag change set). A derived tag
// whose value would be empty (CreatedByRole for an IAM user, CreatedVia for
// a direct call, ReplicaOf for a key that is not a replica, CreatedByUser
// for a role session) is not written; if the key carries it, it is
// removed. A derived tag whose value is not known yet (see Plan.Pending) is
// neither written nor removed, unless the value the key carries is one
// someone other than the tagger set: that goes.
//
// The budget: the key may carry 50 tags. The tags it carries under keys this
// policy does not own count against it, except aws: tags, which AWS does not
// count; owned tags the key carries already (exactly) cost nothing, and
// removed ones free their place. New tags that do not fit are dropped,
// lowest priority first, and listed in Plan.Dropped.
func (p *Policy) PlanWith(ev *events.KeyEvent, current []Tag, in PlanInput) Plan {
	carried := make(map[string]string, len(current)) // exact key -> value
	others := 0
	var plan Plan
	for _, t := range current {
		if _, seen := carried[t.Key]; seen {
			continue
		}
		carried[t.Key] = t.Value
		if !p.Owns(t.Key) && !isReserved(t.Key) {
			others++ // tags with the aws: prefix do not count against the limit
		}
	}
	room := MaxTagsPerKey - others
	plan.Tags = make([]Tag, 0, len(p.derived)+len(p.static))
	truth := make(map[string]string, len(p.derived)+len(p.static))
	add := func(t Tag) {
		v, has := carried[t.Key]
		switch {
		case has:
			plan.Tags = append(plan.Tags, t)
			if v != t.Value {
				plan.Write = append(plan.Write, t)
			}
		case room > 0:
			plan.Tags = append(plan.Tags, t)
			plan.Write = append(plan.Write, t)
			room--
		default:
			plan.Dropped = append(plan.Dropped, t)
			return
		}
		truth[t.Key] = t.Value
	}
	for _, d := range p.derived {
		a := d.value(ev, &in)
		if !a.known {
			note := Note{Key: d.key, Reason: a.reason, Retry: a.retry}
			if v, has := carried[d.key]; has && !untrusted(ev, &in, d.key, v) {
				// Not known yet is not "no true value": the key keeps
				// what the tagger wrote earlier.
				plan.Tags = append(plan.Tags, Tag{Key: d.key, Value: v})
				truth[d.key] = v
				note.Kept = true
			}
			plan.Pending = append(plan.Pending, note)
			continue
		}
		v := SanitizeValue(a.value)
		if d.key == p.evidence && fromRecord(v) && fromRecord(carried[d.key]) {
			v = carried[d.key] // one record of the creating call is as good as another
		}
		if v != "" {
			add(Tag{Key: d.key, Value: v})
		} else if a.reason != "" {
			plan.Unset = append(plan.Unset, Note{Key: d.key, Reason: a.reason})
		}
	}
	for _, t := range p.static {
		add(t) // an empty static value is configured, so written
	}
	seen := make(map[string]bool, len(current))
	for _, t := range current {
		if seen[t.Key] || !p.Owns(t.Key) {
			continue
		}
		seen[t.Key] = true
		v, kept := truth[t.Key]
		if !kept {
			plan.Remove = append(plan.Remove, t.Key)
		}
		if !kept || v != t.Value {
			plan.Overridden = append(plan.Overridden, t)
		}
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

// evidence is ev.Evidence, EvidenceEvent when the event does not say.
func evidence(ev *events.KeyEvent) string {
	if ev.Evidence == "" {
		return EvidenceEvent
	}
	return ev.Evidence
}

func createdAt(ev *events.KeyEvent) string {
	if ev.EventTime.IsZero() {
		return ""
	}
	return ev.EventTime.UTC().Format(time.RFC3339)
}
