package tagger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/kms-autotagger/kms-autotagger/internal/events"
	"github.com/kms-autotagger/kms-autotagger/internal/metrics"
)

// Outcome is how one event ended.
type Outcome string

// The outcomes of an event. Every event ends in exactly one.
const (
	// OutcomeTagged: the key carries the governance tags.
	OutcomeTagged Outcome = "tagged"
	// OutcomeSkipped: nothing to do, for the reason stated.
	OutcomeSkipped Outcome = "skipped"
	// OutcomeDeadLettered: the event failed permanently and a record of it
	// is in the dead-letter queue.
	OutcomeDeadLettered Outcome = "dead-lettered"
	// OutcomeError: the handler returned an error; Lambda retries the event
	// and then sends it to its on-failure destination.
	OutcomeError Outcome = "error"
)

// DefaultDeadLetterReserve is the time kept before the invocation deadline
// to write a dead letter when the handler is not told otherwise.
const DefaultDeadLetterReserve = 3 * time.Second

// Result says how one event ended. It is the Lambda function's response.
type Result struct {
	Outcome   Outcome `json:"outcome"`
	Reason    string  `json:"reason,omitempty"`
	EventID   string  `json:"eventId,omitempty"`
	EventName string  `json:"eventName,omitempty"`
	KeyARN    string  `json:"keyArn,omitempty"`
	Region    string  `json:"region,omitempty"`
	Account   string  `json:"account,omitempty"`
	// Tags are the tags written, or meant to be written when the outcome is
	// not tagged.
	Tags []Tag `json:"tags,omitempty"`
	// Overridden are creator-passed values of owned tags that Tags replaced.
	Overridden []Tag `json:"overridden,omitempty"`
	// Dropped are governance tags that did not fit within 50 tags.
	Dropped []Tag `json:"dropped,omitempty"`
	// Repair is set when the event was a tamper repair.
	Repair    *Repair `json:"repair,omitempty"`
	Attempts  int     `json:"attempts,omitempty"`
	ErrorCode string  `json:"errorCode,omitempty"`
}

// Handler tags the key of one event. Its zero value is not usable: Policy
// and KMS are required, DeadLetters is required for permanent failures to be
// kept (without it they are returned as errors).
type Handler struct {
	Policy      *Policy
	KMS         KMSClients
	DeadLetters *DeadLetterQueue
	// Logger receives one line per event with its outcome, and a line per
	// failed KMS attempt. Nil means slog.Default().
	Logger *slog.Logger
	// DeadLetterReserve is the time kept before the invocation deadline for
	// writing a dead letter; KMS retries stop that much earlier.
	DeadLetterReserve time.Duration
	// Metrics receives CloudWatch Embedded Metric Format lines, one per
	// event; nil writes none.
	Metrics *metrics.Emitter
	// Tamper configures the repair of governance tags that someone else
	// changed or removed; its zero value switches the repair off.
	Tamper TamperRepair
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Handle is the Lambda handler. It returns an error only when the event must
// be tried again by Lambda: a transient failure that outlasted the retries,
// or a permanent failure that could not be dead-lettered.
func (h *Handler) Handle(ctx context.Context, raw json.RawMessage) (Result, error) {
	start := h.now()
	res, err := h.handle(ctx, raw)
	h.logResult(ctx, res, err)
	h.recordMetrics(ctx, start, res)
	return res, err
}

// recordMetrics writes the event's metrics; a failure to write them is
// logged and does not change the outcome.
func (h *Handler) recordMetrics(ctx context.Context, start time.Time, res Result) {
	if h.Metrics == nil {
		return
	}
	written := 0
	if res.Outcome == OutcomeTagged {
		written = len(res.Tags)
	}
	repaired := 0
	if res.Repair != nil && res.Outcome == OutcomeTagged {
		repaired = 1
	}
	if err := h.Metrics.Record(metrics.Event{
		Outcome: string(res.Outcome), EventName: res.EventName, Region: res.Region,
		Attempts: res.Attempts, TagsWritten: written, Repairs: repaired, Duration: h.now().Sub(start), Time: start,
	}); err != nil {
		h.eventLogger(res).LogAttrs(ctx, slog.LevelWarn, "writing metrics failed", slog.String("error", err.Error()))
	}
}

func (h *Handler) handle(ctx context.Context, raw json.RawMessage) (Result, error) {
	dec, err := events.Decode(raw)
	res := Result{EventID: dec.EventID, EventName: dec.EventName}
	switch {
	case dec.Key != nil:
		res.KeyARN, res.Region, res.Account = dec.Key.KeyARN, dec.Key.Region, dec.Key.Account
	case dec.Change != nil:
		res.KeyARN, res.Region, res.Account = dec.Change.KeyARN, dec.Change.Region, dec.Change.Account
	}
	if err != nil {
		return h.deadLetter(ctx, raw, res, Permanent, CodeMalformedEvent, err)
	}
	switch dec.Kind {
	case events.KindTag:
		return h.apply(ctx, raw, res, dec.Key)
	case events.KindTagChange:
		return h.repair(ctx, raw, res, dec.Change)
	default:
		res.Outcome, res.Reason = OutcomeSkipped, dec.Reason
		return res, nil
	}
}

// apply writes the tags the policy derives from key's creation event.
func (h *Handler) apply(ctx context.Context, raw json.RawMessage, res Result, key *events.KeyEvent) (Result, error) {
	plan := h.Policy.Plan(key)
	res.Tags, res.Overridden, res.Dropped = plan.Tags, plan.Overridden, plan.Dropped
	if len(plan.Tags) == 0 {
		err := fmt.Errorf("key %s already has %d tags of its creator: no room for governance tags", key.KeyARN, MaxTagsPerKey)
		return h.deadLetter(ctx, raw, res, Permanent, CodeTagBudgetExceeded, err)
	}

	// The event's logger is made only if an attempt fails.
	attempts, err := h.tag(ctx, func() *slog.Logger { return h.eventLogger(res) }, key, plan.Tags)
	res.Attempts = attempts
	if err == nil {
		res.Outcome = OutcomeTagged
		if len(plan.Dropped) > 0 {
			res.Reason = fmt.Sprintf("%d governance tags did not fit within %d tags", len(plan.Dropped), MaxTagsPerKey)
		}
		return res, nil
	}
	class, code := Classify(err)
	return h.deadLetter(ctx, raw, res, class, code, err)
}

// tag calls TagResource in the key's region, within the invocation deadline
// less the dead-letter reserve, and counts the attempts the retryer made.
func (h *Handler) tag(ctx context.Context, log func() *slog.Logger, key *events.KeyEvent, tags []Tag) (int, error) {
	client, err := h.KMS.KMSClient(ctx, key.Account, key.Region)
	if err != nil {
		return 0, fmt.Errorf("kms client for account %s region %s: %w", key.Account, key.Region, err)
	}
	tagCtx, cancel := h.tagContext(ctx)
	defer cancel()

	in := &kms.TagResourceInput{KeyId: aws.String(key.KeyARN), Tags: make([]kmstypes.Tag, len(tags))}
	for i, t := range tags {
		in.Tags[i] = kmstypes.Tag{TagKey: aws.String(t.Key), TagValue: aws.String(t.Value)}
	}
	attempts := 0
	_, err = client.TagResource(tagCtx, in, observeAttempts(log, &attempts))
	if err != nil {
		return attempts, fmt.Errorf("tagging key %s: %w", key.KeyARN, err)
	}
	return attempts, nil
}

// tagContext bounds KMS calls so that DeadLetterReserve remains before the
// invocation deadline. With less time than that left, half of what is left
// goes to KMS.
func (h *Handler) tagContext(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	reserve := h.DeadLetterReserve
	if reserve <= 0 {
		reserve = DefaultDeadLetterReserve
	}
	left := time.Until(deadline)
	budget := left - reserve
	if budget < left/2 {
		budget = left / 2
	}
	return context.WithTimeout(ctx, budget)
}

// observeAttempts counts every attempt of one call, retries included, and
// logs the failed ones with the logger log returns.
func observeAttempts(log func() *slog.Logger, n *int) func(*kms.Options) {
	return func(o *kms.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			return s.Finalize.Insert(middleware.FinalizeMiddlewareFunc("CountAttempts",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					*n++
					out, md, err := next.HandleFinalize(ctx, in)
					if err != nil {
						code := ""
						var apiErr smithy.APIError
						if errors.As(err, &apiErr) {
							code = apiErr.ErrorCode()
						}
						log().LogAttrs(ctx, slog.LevelWarn, "kms attempt failed",
							slog.Int("attempt", *n), slog.String("error_code", code), slog.String("error", err.Error()))
					}
					return out, md, err
				}), "Retry", middleware.After)
		})
	}
}

// deadLetter turns a failure into the Lambda behaviour, in one place:
// permanent failures are dead-lettered and the handler succeeds; transient
// ones, and permanent ones that cannot be dead-lettered, are returned.
func (h *Handler) deadLetter(ctx context.Context, raw json.RawMessage, res Result, class Class, code string, cause error) (Result, error) {
	res.ErrorCode = code
	res.Reason = reason(code, cause)
	if class == Transient {
		res.Outcome = OutcomeError
		return res, fmt.Errorf("transient failure (%s), for Lambda to retry: %w", code, cause)
	}
	d := &DeadLetter{
		Version:   DeadLetterVersion,
		Kind:      DeadLetterKind,
		Time:      h.now().UTC(),
		EventID:   res.EventID,
		EventName: res.EventName,
		KeyARN:    res.KeyARN,
		Region:    res.Region,
		Account:   res.Account,
		Tags:      res.Tags,
		Error:     DeadLetterError{Code: code, Message: res.Reason, Detail: cause.Error(), Class: class.String()},
		Attempts:  res.Attempts,
	}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		d.RequestID = lc.AwsRequestID
	}
	if json.Valid(raw) {
		d.Event = raw
	} else {
		d.EventText = string(raw)
	}
	if err := h.DeadLetters.Send(ctx, d); err != nil {
		res.Outcome = OutcomeError
		return res, fmt.Errorf("permanent failure (%s: %v) could not be dead-lettered: %w", code, cause, err)
	}
	res.Outcome = OutcomeDeadLettered
	return res, nil
}

// reason is the short form of a failure for Result.Reason: the API's own
// message where there is one.
func reason(code string, err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorMessage() != "" {
		if apiCode := apiErr.ErrorCode(); apiCode != code {
			code += " (" + apiCode + ")" // e.g. AssumeRoleFailed (AccessDenied)
		}
		return code + ": " + apiErr.ErrorMessage()
	}
	return err.Error()
}

func (h *Handler) logResult(ctx context.Context, res Result, err error) {
	level := slog.LevelInfo
	// The event's attributes first, as eventLogger would put them, without
	// making a logger for one line.
	attrs := make([]slog.Attr, 0, 12)
	ev := eventAttrs(res)
	attrs = append(attrs, ev[:]...)
	attrs = append(attrs, slog.String("outcome", string(res.Outcome)))
	if res.Reason != "" {
		attrs = append(attrs, slog.String("reason", res.Reason))
	}
	if len(res.Tags) > 0 {
		attrs = append(attrs, tagsAttr("tags", res.Tags))
	}
	if len(res.Overridden) > 0 {
		attrs = append(attrs, tagsAttr("overridden", res.Overridden))
		level = slog.LevelWarn
	}
	if len(res.Dropped) > 0 {
		attrs = append(attrs, tagsAttr("dropped", res.Dropped))
		level = slog.LevelWarn
	}
	if res.Attempts > 0 {
		attrs = append(attrs, slog.Int("attempts", res.Attempts))
	}
	if res.ErrorCode != "" {
		attrs = append(attrs, slog.String("error_code", res.ErrorCode))
	}
	if res.Outcome == OutcomeDeadLettered || err != nil {
		level = slog.LevelError
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	h.logger().LogAttrs(ctx, level, "event "+string(res.Outcome), attrs...)
}

// tagsAttr is tags as one attribute holding an object of tag key to value,
// e.g. "tags":{"CreatedBy":"arn:…"}: slog writes it itself, where
// slog.Any would hand the slice to encoding/json's reflection (a third of
// the handler's own time per event, docs/PERFORMANCE.md). The keys of one
// set of tags are distinct.
func tagsAttr(name string, tags []Tag) slog.Attr {
	attrs := make([]slog.Attr, len(tags))
	for i, t := range tags {
		attrs[i] = slog.String(t.Key, t.Value)
	}
	return slog.Attr{Key: name, Value: slog.GroupValue(attrs...)}
}

// eventLogger returns the logger for one event: every line names the
// event id, event name and key ARN.
func (h *Handler) eventLogger(res Result) *slog.Logger {
	a := eventAttrs(res)
	return h.logger().With(a[0], a[1], a[2])
}

// eventAttrs are the attributes that name an event on every line logged
// for it.
func eventAttrs(res Result) [3]slog.Attr {
	return [3]slog.Attr{slog.String("event_id", res.EventID), slog.String("event_name", res.EventName), slog.String("key_arn", res.KeyARN)}
}

// logger returns Logger, or slog.Default() when it is nil.
func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}
