package tagger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

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

// NoCreationEventError is a key whose creation event is not in CloudTrail's
// event history. It matches ErrNoCreationEvent through errors.Is.
type NoCreationEventError struct {
	// KeyARN is the key.
	KeyARN string
	// Created is the key's CreationDate, when KMS gave it.
	Created time.Time
}

func (e *NoCreationEventError) Error() string {
	if e.Created.IsZero() {
		return fmt.Sprintf("key %s: %v", e.KeyARN, ErrNoCreationEvent)
	}
	return fmt.Sprintf("key %s, created %s: %v", e.KeyARN, e.Created.UTC().Format(time.RFC3339), ErrNoCreationEvent)
}

// Is reports whether target is ErrNoCreationEvent.
func (e *NoCreationEventError) Is(target error) bool { return target == ErrNoCreationEvent }

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
	// TaggerRolePath is the IAM path every kms-autotagger role has (the
	// function roles and the member roles of every deployment, e.g.
	// /kms-autotagger/). A change made with a role on that path in any
	// account is another tagger's and skipped without any call, so that
	// several deployments never repair each other in a loop. The
	// organization's service control policy (deploy/) keeps anyone else
	// from making roles on that path. Empty recognises no other tagger.
	TaggerRolePath string
}

// taggerRole reports whether the actor of a tag change is a role on the
// taggers' role path.
func (t TamperRepair) taggerRole(actor events.Creator) bool {
	if t.TaggerRolePath == "" || actor.Type != events.IdentityAssumedRole {
		return false
	}
	_, rest, ok := strings.Cut(actor.IssuerARN, ":role/")
	return ok && strings.HasPrefix("/"+rest, t.TaggerRolePath)
}

// repair makes a key whose governance tags a principal other than a tagger
// changed or removed carry exactly its governance tags again. It finds the
// key's creation event in CloudTrail's history, derives the tags again with
// the same policy and applies them (apply, the event trusted). A change
// that touched no owned key (ignoring case) is skipped without a call; one
// that left the key as it should be is skipped after reading its tags, so
// the repair's own TagResource event can never start another repair.
func (h *Handler) repair(ctx context.Context, raw json.RawMessage, res Result, ch *events.TagChange) (Result, error) {
	res.Outcome = OutcomeSkipped
	switch {
	case h.Tamper.Creations == nil:
		res.Reason = "tamper repair is off"
		return res, nil
	case h.Tamper.SelfRoleARN != "" && ch.Actor.IssuerARN == h.Tamper.SelfRoleARN:
		res.Reason = "tag change made by the tagger's own role"
		return res, nil
	case h.Tamper.taggerRole(ch.Actor):
		res.Reason = "tag change made by a kms-autotagger role (" + ch.Actor.IssuerARN + ") of another deployment"
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
		var missing *NoCreationEventError
		switch {
		case errors.As(err, &missing) && young(missing.Created, h.now()):
			// CloudTrail's history lags EventBridge by minutes.
			return h.deadLetter(ctx, raw, res, Transient, CodeCreationEventNotFound, err)
		case errors.Is(err, ErrNoCreationEvent):
			return h.deadLetter(ctx, raw, res, Permanent, CodeCreationEventNotFound, err)
		}
		class, code := Classify(err)
		return h.deadLetter(ctx, raw, res, class, code, err)
	}
	res.Repair = &rep
	res, err = h.apply(ctx, raw, res, created, true, rep.Changed)
	// A repair whose stack lookup is pending restored what it could (the
	// other tags written, someone else's stack tags removed) before it
	// returned the event for Lambda to try again.
	partial := res.ErrorCode == CodeAttributionPending && (res.TagsWritten > 0 || len(res.Removed) > 0)
	switch {
	case res.Outcome == OutcomeTagged || partial:
		h.eventLogger(res).LogAttrs(ctx, slog.LevelWarn, "governance tags tampered with",
			slog.String("actor", rep.Actor), tagsAttr("changed", rep.Changed), slog.Any("removed", rep.Removed),
			slog.String("creation_event_id", created.EventID))
		res.Reason = strings.TrimSpace(fmt.Sprintf("restored governance tags %s by %s. %s", verbs(rep), rep.Actor, res.Reason))
	case res.Outcome == OutcomeSkipped:
		res.Repair = nil
		res.Reason = fmt.Sprintf("%s by %s left the governance tags as they should be", ch.EventName, rep.Actor)
	}
	return res, err
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
