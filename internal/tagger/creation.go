package tagger

import (
	"context"
	"fmt"

	"github.com/kms-autotagger/kms-autotagger/internal/events"
)

// CreationConfirmer checks an event against CloudTrail's own record of it.
type CreationConfirmer interface {
	// ConfirmCreation reports whether CloudTrail's event history holds the
	// event eventID as a successful CreateKey or ReplicateKey that created
	// keyARN. false with a nil error means the history does not hold it
	// (or holds it for another key); an error, that it could not be read.
	ConfirmCreation(ctx context.Context, keyARN, eventID string) (bool, error)
}

// ConflictError is a creation event for a key whose governance tags came
// from another creation event, which CloudTrail's record did not settle in
// this event's favour.
type ConflictError struct {
	// Code is CodeForgedCreationEvent (CloudTrail confirms the other
	// event) or CodeCreationEventConflict (it confirms neither).
	Code string
	// Class is Permanent, or Transient while the event is young enough for
	// CloudTrail's history not to hold it yet.
	Class Class
	// KeyARN, EventID and PriorEventID name the key and the two events.
	KeyARN, EventID, PriorEventID string
	// Why says what CloudTrail's record said.
	Why string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("key %s carries governance tags from creation event %s, not %s: %s",
		e.KeyARN, e.PriorEventID, e.EventID, e.Why)
}

// settle decides whether ev may overwrite the governance tags that the
// creation event prior left on its key. A key is created once: only the
// event CloudTrail's own record confirms (by event id, for this key) may
// stand. It returns nil when ev is confirmed, and a *ConflictError (or the
// lookup's error) otherwise; the key is then left untouched.
func (h *Handler) settle(ctx context.Context, ev *events.KeyEvent, prior string) error {
	conflict := &ConflictError{Code: CodeCreationEventConflict, Class: Permanent, KeyARN: ev.KeyARN, EventID: ev.EventID, PriorEventID: prior}
	if h.Confirmer == nil {
		conflict.Why = "no CloudTrail event history is configured to settle it"
		return conflict
	}
	ok, err := h.Confirmer.ConfirmCreation(ctx, ev.KeyARN, ev.EventID)
	if err != nil {
		return fmt.Errorf("confirming creation event %s of key %s in CloudTrail: %w", ev.EventID, ev.KeyARN, err)
	}
	if ok {
		return nil
	}
	priorOK, err := h.Confirmer.ConfirmCreation(ctx, ev.KeyARN, prior)
	switch {
	case err != nil:
		return fmt.Errorf("confirming creation event %s of key %s in CloudTrail: %w", prior, ev.KeyARN, err)
	case priorOK:
		conflict.Code = CodeForgedCreationEvent
		conflict.Why = "CloudTrail's record confirms " + prior + " as the key's creation, and not this event"
	case young(ev.EventTime, h.now()):
		conflict.Class = Transient
		conflict.Why = "CloudTrail's event history holds neither event yet"
	default:
		conflict.Why = "CloudTrail's event history holds neither event"
	}
	return conflict
}
