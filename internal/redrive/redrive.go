package redrive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/kms-autotagger/kms-autotagger/internal/events"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// QueueAPI is the part of the SQS API a redrive uses.
type QueueAPI interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

var _ QueueAPI = (*sqs.Client)(nil)

// Handler handles one event, as tagger.Handler does. The handler given to
// Run must have no dead-letter queue (tagger.Handler.DeadLetters nil), so
// that a permanent failure comes back as an error and the message stays,
// instead of being written to the queue a second time.
type Handler interface {
	Handle(ctx context.Context, raw json.RawMessage) (tagger.Result, error)
}

var _ Handler = (*tagger.Handler)(nil)

// Outcome is how one message ended in a run.
type Outcome string

// The outcomes of a message.
const (
	// OutcomeTagged: the event's key carries the tags; the message is deleted.
	OutcomeTagged Outcome = "tagged"
	// OutcomeSkipped: the handler had nothing to do; the message is deleted.
	OutcomeSkipped Outcome = "skipped"
	// OutcomeStillFailing: the event failed again, or can never succeed; the
	// message stays.
	OutcomeStillFailing Outcome = "still-failing"
	// OutcomeWouldRedrive: a dry run found an event to try; the message stays.
	OutcomeWouldRedrive Outcome = "would-redrive"
	// OutcomeUnrecognized: the message has none of the known shapes; it stays.
	OutcomeUnrecognized Outcome = "unrecognized"
	// OutcomeInterrupted: the run was interrupted before or while trying the
	// event; the message stays.
	OutcomeInterrupted Outcome = "interrupted"
	// OutcomeUnconfirmed: CloudTrail's own record does not confirm the
	// message's creation event (by event id, for the same key), so it was
	// not acted on: anyone who can write to the queue could have put it
	// there. The message stays.
	OutcomeUnconfirmed Outcome = "unconfirmed"
)

// Defaults of Options.
const (
	DefaultHandlerTimeout   = 30 * time.Second
	DefaultWaitTime         = time.Second
	DefaultDryRunVisibility = 30 * time.Second
	// MaxBatch is the most messages one ReceiveMessage returns.
	MaxBatch = 10
	// maxVisibility is SQS's limit on a visibility timeout (12 hours).
	maxVisibility = 12 * time.Hour
	// maxWaitTime is SQS's limit on WaitTimeSeconds.
	maxWaitTime = 20 * time.Second
	// cleanupTimeout bounds each delete and visibility change, which run
	// even after the run's context is cancelled.
	cleanupTimeout = 10 * time.Second
)

// Options configures Run.
type Options struct {
	// QueueURL is the dead-letter queue. Required.
	QueueURL string
	// DryRun decodes and reports what would be redriven, calls no handler and
	// deletes nothing; the messages are only received and made visible again.
	DryRun bool
	// Max is the most messages to process; 0 means every message visible.
	Max int
	// HandlerTimeout is the deadline of each handler run, as the function's
	// timeout sets it in Lambda; DefaultHandlerTimeout when zero.
	HandlerTimeout time.Duration
	// VisibilityTimeout is how long a received message stays hidden from
	// other readers while the run holds it; the run makes the messages it
	// keeps visible again when it ends, so this matters only if the process
	// dies. Zero means DefaultDryRunVisibility for a dry run, else long
	// enough for a full batch of handler runs plus a minute. A message that
	// reappears within the run is recognised by its MessageId and not tried
	// twice.
	VisibilityTimeout time.Duration
	// WaitTime is each ReceiveMessage's WaitTimeSeconds; DefaultWaitTime
	// when zero. The run stops at the first receive that brings no message
	// it has not seen, so keep it short.
	WaitTime time.Duration
	// Logger receives a line per message. Nil means slog.Default().
	Logger *slog.Logger
	// Confirmer checks each creation event against CloudTrail's own record
	// before the handler may act on it. Nil confirms nothing: every
	// creation event stays in the queue, unconfirmed. Tag-change events
	// need no confirmation: their repair derives the tags from the creation
	// event CloudTrail's history holds.
	Confirmer tagger.CreationConfirmer
}

// Row is what happened to one message.
type Row struct {
	MessageID string `json:"messageId"`
	Shape     Shape  `json:"shape"`
	EventID   string `json:"eventId,omitempty"`
	EventName string `json:"eventName,omitempty"`
	KeyARN    string `json:"keyArn,omitempty"`
	// OriginalError is the error that put the message in the queue.
	OriginalError string  `json:"originalError,omitempty"`
	Outcome       Outcome `json:"outcome"`
	// ErrorCode and Reason say why the message is still in the queue (or,
	// for skipped, why there was nothing to do).
	ErrorCode string `json:"errorCode,omitempty"`
	Reason    string `json:"reason,omitempty"`
	Deleted   bool   `json:"deleted"`
}

// Summary counts the rows of a report.
type Summary struct {
	Messages     int `json:"messages"`
	Tagged       int `json:"tagged"`
	Skipped      int `json:"skipped"`
	StillFailing int `json:"stillFailing"`
	WouldRedrive int `json:"wouldRedrive"`
	Unrecognized int `json:"unrecognized"`
	Interrupted  int `json:"interrupted"`
	Unconfirmed  int `json:"unconfirmed"`
	// Deleted messages are gone from the queue; Remaining are still in it.
	Deleted   int `json:"deleted"`
	Remaining int `json:"remaining"`
}

// Report is the result of a run.
type Report struct {
	QueueURL string  `json:"queueUrl"`
	DryRun   bool    `json:"dryRun"`
	Rows     []Row   `json:"messages"`
	Summary  Summary `json:"summary"`
}

// Run reads the queue in batches of up to MaxBatch and tries each message's
// event again with h, until a receive brings no message not seen in this run,
// or opts.Max messages are done. It deletes a message once its event ends
// tagged or skipped; every other message it received is made visible again
// before Run returns, including when ctx is cancelled, so that a run can be
// interrupted and started again. The report lists every message processed;
// the error joins what went wrong with the queue, and ctx's error when the
// run was interrupted.
func Run(ctx context.Context, q QueueAPI, h Handler, opts Options) (Report, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return Report{QueueURL: opts.QueueURL, DryRun: opts.DryRun}, err
	}
	r := &run{q: q, h: h, opts: opts, log: opts.Logger, seen: make(map[string]bool), held: make(map[string]string)}
	r.report = Report{QueueURL: opts.QueueURL, DryRun: opts.DryRun, Rows: []Row{}}
	loopErr := r.loop(ctx)
	releaseErr := r.releaseAll(ctx)
	r.report.Summary = summarize(r.report.Rows)
	return r.report, errors.Join(loopErr, errors.Join(r.errs...), releaseErr)
}

func (o Options) withDefaults() (Options, error) {
	var errs []error
	if o.QueueURL == "" {
		errs = append(errs, errors.New("redrive: no queue URL"))
	}
	if o.Max < 0 {
		errs = append(errs, fmt.Errorf("redrive: max %d is negative", o.Max))
	}
	if o.HandlerTimeout < 0 || o.VisibilityTimeout < 0 || o.WaitTime < 0 {
		errs = append(errs, errors.New("redrive: timeouts must not be negative"))
	}
	if o.VisibilityTimeout > maxVisibility {
		errs = append(errs, fmt.Errorf("redrive: visibility timeout %s is over SQS's %s", o.VisibilityTimeout, maxVisibility))
	}
	if o.WaitTime > maxWaitTime {
		errs = append(errs, fmt.Errorf("redrive: wait time %s is over SQS's %s", o.WaitTime, maxWaitTime))
	}
	if o.HandlerTimeout == 0 {
		o.HandlerTimeout = DefaultHandlerTimeout
	}
	if o.WaitTime == 0 {
		o.WaitTime = DefaultWaitTime
	}
	if o.VisibilityTimeout == 0 {
		if o.DryRun {
			o.VisibilityTimeout = DefaultDryRunVisibility
		} else {
			o.VisibilityTimeout = min(MaxBatch*o.HandlerTimeout+time.Minute, maxVisibility)
		}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, errors.Join(errs...)
}

// run is the state of one Run.
type run struct {
	q      QueueAPI
	h      Handler
	opts   Options
	log    *slog.Logger
	report Report
	// seen holds the MessageId of every message received in this run.
	seen map[string]bool
	// held maps the MessageId of every message received and not deleted to
	// its newest receipt handle; releaseAll makes them visible again.
	held map[string]string
	// heldOrder keeps the order held messages were received in.
	heldOrder []string
	errs      []error
}

func (r *run) loop(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("redrive interrupted: %w", err)
		}
		want := MaxBatch
		if r.opts.Max > 0 {
			want = min(want, r.opts.Max-len(r.report.Rows))
			if want <= 0 {
				return nil
			}
		}
		out, err := r.q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:              aws.String(r.opts.QueueURL),
			MaxNumberOfMessages:   int32(want),
			VisibilityTimeout:     int32(r.opts.VisibilityTimeout / time.Second),
			WaitTimeSeconds:       int32(r.opts.WaitTime / time.Second),
			MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("redrive interrupted: %w", ctx.Err())
			}
			return fmt.Errorf("receiving from %s: %w", r.opts.QueueURL, err)
		}
		fresh := r.takeNew(out.Messages)
		if len(fresh) == 0 {
			return nil
		}
		for i, m := range fresh {
			if r.opts.Max > 0 && len(r.report.Rows) >= r.opts.Max {
				break // held already: released at the end, untried
			}
			if ctx.Err() != nil {
				for _, rest := range fresh[i:] {
					row := r.interrupted(rest)
					r.logRow(ctx, row)
					r.report.Rows = append(r.report.Rows, row)
				}
				return fmt.Errorf("redrive interrupted: %w", ctx.Err())
			}
			r.report.Rows = append(r.report.Rows, r.process(ctx, m))
		}
	}
}

// takeNew keeps the newest receipt handle of every message received and
// not deleted, and returns those not seen before in this run, each once.
func (r *run) takeNew(msgs []sqstypes.Message) []sqstypes.Message {
	var fresh []sqstypes.Message
	for _, m := range msgs {
		id, handle := aws.ToString(m.MessageId), aws.ToString(m.ReceiptHandle)
		if r.seen[id] {
			// Received again (its visibility ran out, or SQS delivered it
			// twice): SQS honours only the newest receipt handle.
			if _, ok := r.held[id]; ok {
				r.held[id] = handle
			}
			continue
		}
		r.seen[id] = true
		r.held[id] = handle
		r.heldOrder = append(r.heldOrder, id)
		fresh = append(fresh, m)
	}
	return fresh
}

// process decodes one message and, unless the run is dry, tries its event.
func (r *run) process(ctx context.Context, m sqstypes.Message) Row {
	row, letter := r.describe(m)
	switch {
	case row.Outcome != "":
		// Unrecognized, or an event that can never succeed.
	case r.opts.DryRun:
		row.Outcome = OutcomeWouldRedrive
	default:
		r.redrive(ctx, m, letter.Event, &row)
	}
	r.logRow(ctx, row)
	return row
}

// logRow writes one line about a message's outcome.
func (r *run) logRow(ctx context.Context, row Row) {
	r.log.LogAttrs(ctx, slog.LevelInfo, "redrive "+string(row.Outcome),
		slog.String("message_id", row.MessageID), slog.String("shape", string(row.Shape)),
		slog.String("event_id", row.EventID), slog.String("key_arn", row.KeyARN),
		slog.String("error_code", row.ErrorCode), slog.String("reason", row.Reason), slog.Bool("deleted", row.Deleted))
}

// describe fills what the message itself says; Outcome is set only when the
// message cannot be tried.
func (r *run) describe(m sqstypes.Message) (Row, Letter) {
	letter := Decode(aws.ToString(m.Body), attributes(m))
	row := Row{
		MessageID:     aws.ToString(m.MessageId),
		Shape:         letter.Shape,
		EventID:       letter.EventID,
		EventName:     letter.EventName,
		KeyARN:        letter.KeyARN,
		OriginalError: letter.OriginalError,
	}
	if letter.Event != nil {
		// The event's own view, where the record did not say.
		dec, _ := events.Decode(letter.Event)
		row.EventID = firstNonEmpty(row.EventID, dec.EventID)
		row.EventName = firstNonEmpty(row.EventName, dec.EventName)
		if dec.Key != nil {
			row.KeyARN = firstNonEmpty(row.KeyARN, dec.Key.KeyARN)
		}
	}
	switch {
	case letter.Shape == ShapeUnrecognized:
		row.Outcome, row.Reason = OutcomeUnrecognized, letter.Problem
	case letter.Problem != "":
		row.Outcome, row.ErrorCode, row.Reason = OutcomeStillFailing, letter.ProblemCode, letter.Problem
	}
	return row, letter
}

// redrive runs the handler on event, once CloudTrail's record confirms a
// creation event, and deletes the message when the event ends tagged or
// skipped.
func (r *run) redrive(ctx context.Context, m sqstypes.Message, event json.RawMessage, row *Row) {
	hctx, cancel := context.WithTimeout(ctx, r.opts.HandlerTimeout)
	defer cancel()
	if dec, err := events.Decode(event); err == nil && dec.Kind == events.KindTag && dec.Key != nil {
		if why := r.confirm(hctx, dec.Key); why != "" {
			row.Outcome, row.ErrorCode, row.Reason = OutcomeUnconfirmed, CodeUnconfirmedEvent, why
			return
		}
	}
	res, err := r.h.Handle(hctx, event)
	cancel()
	row.EventID = firstNonEmpty(res.EventID, row.EventID)
	row.EventName = firstNonEmpty(res.EventName, row.EventName)
	row.KeyARN = firstNonEmpty(res.KeyARN, row.KeyARN)
	row.ErrorCode, row.Reason = res.ErrorCode, res.Reason
	switch {
	case err == nil && (res.Outcome == tagger.OutcomeTagged || res.Outcome == tagger.OutcomeSkipped):
		row.Outcome = Outcome(res.Outcome)
	case err != nil && ctx.Err() != nil:
		row.Outcome = OutcomeInterrupted
		row.Reason = "the run was interrupted while the handler ran: " + err.Error()
		return
	case err != nil:
		row.Outcome = OutcomeStillFailing
		if row.Reason == "" {
			row.Reason = err.Error()
		}
		return
	default:
		// The handler wrote its own dead letter (it has a queue) or ended
		// some other way: the message stays.
		row.Outcome = OutcomeStillFailing
		row.Reason = firstNonEmpty(row.Reason, "the handler ended with outcome "+string(res.Outcome))
		return
	}
	// The event is done: delete the message, even if the run was
	// interrupted meanwhile.
	dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer dcancel()
	id := aws.ToString(m.MessageId)
	if _, err := r.q.DeleteMessage(dctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(r.opts.QueueURL), ReceiptHandle: aws.String(r.held[id])}); err != nil {
		err = fmt.Errorf("deleting message %s after its event ended %s: %w", id, res.Outcome, err)
		r.errs = append(r.errs, err)
		row.Reason = joinNonEmpty("; ", row.Reason, err.Error()+" (it stays; trying it again is harmless)")
		return
	}
	row.Deleted = true
	delete(r.held, id)
}

// CodeUnconfirmedEvent is the ErrorCode of a row whose creation event
// CloudTrail's record does not confirm.
const CodeUnconfirmedEvent = "UnconfirmedEvent"

// confirm returns why key's event may not be acted on, or "".
func (r *run) confirm(ctx context.Context, key *events.KeyEvent) string {
	if r.opts.Confirmer == nil {
		return "no CloudTrail event history to confirm the creation event with"
	}
	ok, err := r.opts.Confirmer.ConfirmCreation(ctx, key.KeyARN, key.EventID)
	switch {
	case err != nil:
		return "confirming the creation event in CloudTrail's event history: " + err.Error()
	case !ok:
		return fmt.Sprintf("CloudTrail's event history holds no %s %s that created %s: the message was not acted on", key.EventName, key.EventID, key.KeyARN)
	}
	return ""
}

func (r *run) interrupted(m sqstypes.Message) Row {
	row, _ := r.describe(m)
	row.Outcome = OutcomeInterrupted
	row.ErrorCode = ""
	row.Reason = "the run was interrupted before this message was tried"
	return row
}

// releaseAll makes every message received and not deleted visible again,
// even when ctx is cancelled.
func (r *run) releaseAll(ctx context.Context) error {
	var errs []error
	for _, id := range r.heldOrder {
		handle, ok := r.held[id]
		if !ok {
			continue
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		_, err := r.q.ChangeMessageVisibility(cctx, &sqs.ChangeMessageVisibilityInput{
			QueueUrl: aws.String(r.opts.QueueURL), ReceiptHandle: aws.String(handle), VisibilityTimeout: 0,
		})
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("making message %s visible again: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// attributes returns a message's attributes by name, with their string
// values.
func attributes(m sqstypes.Message) map[string]string {
	attrs := make(map[string]string, len(m.MessageAttributes))
	for name, v := range m.MessageAttributes {
		attrs[name] = aws.ToString(v.StringValue)
	}
	return attrs
}

func summarize(rows []Row) Summary {
	s := Summary{Messages: len(rows)}
	for _, row := range rows {
		switch row.Outcome {
		case OutcomeTagged:
			s.Tagged++
		case OutcomeSkipped:
			s.Skipped++
		case OutcomeStillFailing:
			s.StillFailing++
		case OutcomeWouldRedrive:
			s.WouldRedrive++
		case OutcomeUnrecognized:
			s.Unrecognized++
		case OutcomeInterrupted:
			s.Interrupted++
		case OutcomeUnconfirmed:
			s.Unconfirmed++
		}
		if row.Deleted {
			s.Deleted++
		}
	}
	s.Remaining = s.Messages - s.Deleted
	return s
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
