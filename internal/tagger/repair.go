package tagger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/kms-autotagger/kms-autotagger/internal/events"
)

// CreationFinder finds the event that created a key, for the tamper repair.
type CreationFinder interface {
	// FindCreation returns the CreateKey or ReplicateKey event that created
	// keyARN, decoded, or an error wrapping ErrNoCreationEvent when the event
	// history does not hold it.
	FindCreation(ctx context.Context, keyARN string) (*events.KeyEvent, error)
}

// ErrNoCreationEvent means a key's creation event is not in CloudTrail's
// event history, which keeps 90 days: its governance tags cannot be derived
// again.
var ErrNoCreationEvent = errors.New("creation event not found in CloudTrail's event history (it keeps 90 days)")

// CodeCreationEventNotFound is the error code of a dead letter for a repair
// whose creation event is beyond the event history.
const CodeCreationEventNotFound = "CreationEventNotFound"

// Repair describes a tamper repair: who changed which governance tags.
type Repair struct {
	// Actor is the principal that changed the tags.
	Actor string `json:"actor"`
	// Changed are governance tags the actor set to other values.
	Changed []Tag `json:"changed,omitempty"`
	// Removed are governance tag keys the actor removed.
	Removed []string `json:"removed,omitempty"`
}

// Tamper repair settings of a Handler.
type TamperRepair struct {
	// Creations finds creation events. Nil switches the repair off: tag
	// changes are skipped.
	Creations CreationFinder
	// SelfRoleARN is the tagger's own role. Changes made with it are its own
	// and skipped without any call.
	SelfRoleARN string
}

// repair restores the governance tags a principal other than the tagger
// changed or removed. It finds the key's creation event, derives the tags
// again with the same policy and writes them back. A change that leaves the
// governance tags as the policy would have them is skipped, so the repair's
// own TagResource event can never start another repair.
func (h *Handler) repair(ctx context.Context, raw json.RawMessage, res Result, ch *events.TagChange) (Result, error) {
	res.Outcome = OutcomeSkipped
	switch {
	case h.Tamper.Creations == nil:
		res.Reason = "tamper repair is off"
		return res, nil
	case h.Tamper.SelfRoleARN != "" && ch.Actor.IssuerARN == h.Tamper.SelfRoleARN:
		res.Reason = "tag change made by the tagger's own role"
		return res, nil
	}
	rep := Repair{Actor: actorName(ch.Actor)}
	for _, t := range ch.Set {
		if h.Policy.Owns(t.Key) {
			rep.Changed = append(rep.Changed, t)
		}
	}
	for _, k := range ch.Removed {
		if h.Policy.Owns(k) {
			rep.Removed = append(rep.Removed, k)
		}
	}
	if len(rep.Changed) == 0 && len(rep.Removed) == 0 {
		res.Reason = fmt.Sprintf("%s by %s touched no governance tag", ch.EventName, rep.Actor)
		return res, nil
	}

	created, err := h.Tamper.Creations.FindCreation(ctx, ch.KeyARN)
	if err != nil {
		err = fmt.Errorf("repairing governance tags of key %s changed by %s: %w", ch.KeyARN, rep.Actor, err)
		if errors.Is(err, ErrNoCreationEvent) {
			return h.deadLetter(ctx, raw, res, Permanent, CodeCreationEventNotFound, err)
		}
		class, code := Classify(err)
		return h.deadLetter(ctx, raw, res, class, code, err)
	}
	plan := h.Policy.Plan(created)
	if len(rep.Removed) == 0 && !differs(plan.Tags, rep.Changed) {
		res.Reason = fmt.Sprintf("%s by %s left the governance tags as they should be", ch.EventName, rep.Actor)
		return res, nil
	}

	res.Repair = &rep
	h.eventLogger(res).LogAttrs(ctx, slog.LevelWarn, "governance tags tampered with",
		slog.String("actor", rep.Actor), slog.Any("changed", rep.Changed), slog.Any("removed", rep.Removed),
		slog.String("creation_event_id", created.EventID))
	res, err = h.apply(ctx, raw, res, created)
	if res.Outcome == OutcomeTagged {
		res.Reason = strings.TrimSpace(fmt.Sprintf("restored governance tags %s by %s. %s",
			verbs(rep), rep.Actor, res.Reason))
	}
	return res, err
}

// differs reports whether changed sets any key of want to another value, or
// sets a governance key the plan does not write.
func differs(want, changed []Tag) bool {
	for _, c := range changed {
		i := slices.IndexFunc(want, func(t Tag) bool { return t.Key == c.Key })
		if i < 0 || want[i].Value != c.Value {
			return true
		}
	}
	return false
}

func verbs(r Repair) string {
	var parts []string
	if len(r.Changed) > 0 {
		keys := make([]string, len(r.Changed))
		for i, t := range r.Changed {
			keys[i] = t.Key
		}
		parts = append(parts, "changed ("+strings.Join(keys, ", ")+")")
	}
	if len(r.Removed) > 0 {
		parts = append(parts, "removed ("+strings.Join(r.Removed, ", ")+")")
	}
	return strings.Join(parts, " and ")
}

// actorName names a principal for logs: its ARN, else what the policy would
// write as CreatedBy.
func actorName(c events.Creator) string {
	return createdBy(&events.KeyEvent{Creator: c})
}
