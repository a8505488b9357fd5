package tagger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
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
	// TagsWritten is how many of Tags TagResource wrote: those the key did
	// not carry yet with their true value.
	TagsWritten int `json:"tagsWritten,omitempty"`
	// Removed are owned tag keys removed from the key (or meant to be):
	// case variants, and owned keys with no true value.
	Removed []string `json:"removed,omitempty"`
	// Forged are the forged or creator-passed values of governance tags the
	// key keeps because the tagger could not write
	// (CodeForgedTagsUncorrected).
	Forged []Tag `json:"forged,omitempty"`
	// Unset are derived tags with no true value whose absence is
	// explained (CreatedByUser when no person AWS establishes is behind
	// the key), with the reason.
	Unset []Note `json:"unset,omitempty"`
	// Pending are derived tags whose value is not known yet
	// (CreatedByStack, CreatedByUser of a key CloudFormation made whose
	// lookup failed), with the reason; see Plan.Pending.
	Pending []Note `json:"pending,omitempty"`
	// Repair is set when the event was a tamper repair.
	Repair *Repair `json:"repair,omitempty"`
	// Attempts are the attempts of the last KMS call made for the event,
	// the first included: the one that failed, or the last write.
	Attempts int `json:"attempts,omitempty"`
	// Retries are the retries of all the KMS calls made for the event.
	Retries   int    `json:"retries,omitempty"`
	ErrorCode string `json:"errorCode,omitempty"`
}

// Handler tags the key of one event. Its zero value is not usable: Policy
// and KMS are required, DeadLetters is required for permanent failures to be
// kept (without it they are returned as errors).
type Handler struct {
	Policy      *Policy
	KMS         KMSClients
	DeadLetters DeadLetterSink
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
	// Confirmer checks a creation event against CloudTrail's own record
	// when the key's governance tags came from another creation event;
	// nil dead-letters every such conflict.
	Confirmer CreationConfirmer
	// Stacks finds the CloudFormation stack, and the stack operation, that
	// created a key CloudFormation made, for CreatedByStack and
	// CreatedByUser; nil leaves those tags pending (written by no one,
	// removed from no key).
	Stacks StackFinder
	// StackLookupTimeout bounds the stack lookups of one event, so that
	// they never hold back the other governance tags beyond it;
	// DefaultStackLookupTimeout when 0. They get at most half of the time
	// the KMS calls have left.
	StackLookupTimeout time.Duration
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
		written = res.TagsWritten
	}
	repaired := 0
	if res.Repair != nil && res.Outcome == OutcomeTagged {
		repaired = 1
	}
	if err := h.Metrics.Record(metrics.Event{
		Outcome: string(res.Outcome), EventName: res.EventName, Region: res.Region,
		Retries: res.Retries, TagsWritten: written, Repairs: repaired, ForgedTagsKept: len(res.Forged),
		Duration: h.now().Sub(start), Time: start,
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
		// A malformed or inconsistent event is never acted on.
		code := CodeMalformedEvent
		if errors.Is(err, events.ErrInconsistent) {
			code = CodeInconsistentEvent
		}
		return h.deadLetter(ctx, raw, res, Permanent, code, err)
	}
	switch dec.Kind {
	case events.KindTag:
		return h.apply(ctx, raw, res, dec.Key, false, nil)
	case events.KindTagChange:
		return h.repair(ctx, raw, res, dec.Change)
	default:
		res.Outcome, res.Reason = OutcomeSkipped, dec.Reason
		return res, nil
	}
}

// apply makes the key of a creation event carry exactly its governance
// tags. In the key's account and region, with the credentials that tag it,
// it
//  1. describes the key and checks it against the event (checkKey): a
//     contradiction is dead-lettered, the CreateKey of a replica skipped;
//  2. reads the key's tags: if they came from another creation event
//     (CreationEventId), CloudTrail's own record must settle that this
//     event is the real one (settle);
//  3. for a key CloudFormation made, looks up its stack and the stack's
//     operator (Stacks, within StackLookupTimeout);
//  4. removes the owned tags that must go (UntagResource) and writes those
//     missing or wrong (TagResource), or does nothing when the key carries
//     exactly its governance tags already (a redelivery);
//  5. when a stack lookup could not finish but may later, returns a
//     transient error (CodeAttributionPending) after the writes, so that
//     Lambda tries the event again for CreatedByStack and CreatedByUser
//     while the other governance tags are on the key already.
//
// trusted says the event is CloudTrail's own record (a repair or a
// backfill found it in the event history), not only the word of an event.
// untrusted are owned tags as someone other than the tagger set them (the
// change a repair answers): see PlanInput.Untrusted.
func (h *Handler) apply(ctx context.Context, raw json.RawMessage, res Result, key *events.KeyEvent, trusted bool, untrusted []Tag) (Result, error) {
	client, err := h.KMS.KMSClient(ctx, key.Account, key.Region)
	if err != nil {
		err = fmt.Errorf("kms client for account %s region %s: %w", key.Account, key.Region, err)
		return h.failed(ctx, raw, res, key, nil, err)
	}
	kctx, cancel := h.tagContext(ctx)
	defer cancel()
	// The event's logger is made only if an attempt fails.
	calls := &attemptCounter{log: func() *slog.Logger { return h.eventLogger(res) }}
	call := calls.next
	fail := func(plan *Plan, err error) (Result, error) {
		calls.into(&res)
		return h.failed(ctx, raw, res, key, plan, err)
	}

	described, err := client.DescribeKey(kctx, &kms.DescribeKeyInput{KeyId: aws.String(key.KeyARN)}, call())
	if err != nil {
		return fail(nil, fmt.Errorf("describing key %s: %w", key.KeyARN, err))
	}
	skip, err := checkKey(key, factsOf(described.KeyMetadata))
	switch {
	case err != nil:
		return fail(nil, err)
	case skip != "":
		calls.into(&res)
		res.Outcome, res.Reason = OutcomeSkipped, skip
		return res, nil
	}
	current, err := listTags(kctx, client, key.KeyARN, call)
	if err != nil {
		return fail(nil, err)
	}
	in := PlanInput{Untrusted: untrusted}
	plan := h.Policy.PlanWith(key, current, in)
	res.Tags, res.Overridden, res.Dropped, res.Removed = plan.Tags, plan.Overridden, plan.Dropped, plan.Remove
	if prior := h.Policy.CreationEventID(current); prior != "" && prior != SanitizeValue(key.EventID) && !trusted {
		if err := h.settle(kctx, key, prior); err != nil {
			return fail(&plan, err)
		}
	}
	if stack, operator := h.Policy.StackLookup(key); stack && h.Stacks != nil {
		in.Stack = h.findStack(kctx, key, operator)
		plan = h.Policy.PlanWith(key, current, in)
		res.Tags, res.Overridden, res.Dropped, res.Removed = plan.Tags, plan.Overridden, plan.Dropped, plan.Remove
	}
	res.Unset, res.Pending = plan.Unset, plan.Pending
	calls.into(&res)
	if plan.NoOp() {
		if plan.Retry() {
			return h.pending(ctx, raw, res, in.Stack)
		}
		res.Outcome = OutcomeSkipped
		res.Reason = "the key carries exactly its governance tags already"
		return res, nil
	}
	if len(plan.Write) == 0 && len(plan.Remove) == 0 {
		err := fmt.Errorf("key %s already has %d tags the tagger does not own: no room for governance tags", key.KeyARN, MaxTagsPerKey)
		return fail(&plan, &budgetError{err})
	}
	if len(plan.Remove) > 0 {
		if _, err := client.UntagResource(kctx, &kms.UntagResourceInput{KeyId: aws.String(key.KeyARN), TagKeys: plan.Remove}, call()); err != nil {
			return fail(&plan, fmt.Errorf("removing tags %v from key %s: %w", plan.Remove, key.KeyARN, err))
		}
	}
	if len(plan.Write) > 0 {
		in := &kms.TagResourceInput{KeyId: aws.String(key.KeyARN), Tags: make([]kmstypes.Tag, len(plan.Write))}
		for i, t := range plan.Write {
			in.Tags[i] = kmstypes.Tag{TagKey: aws.String(t.Key), TagValue: aws.String(t.Value)}
		}
		if _, err := client.TagResource(kctx, in, call()); err != nil {
			return fail(&plan, fmt.Errorf("tagging key %s: %w", key.KeyARN, err))
		}
		res.TagsWritten = len(plan.Write)
	}
	calls.into(&res)
	res.Outcome = OutcomeTagged
	if len(plan.Dropped) > 0 {
		res.Reason = fmt.Sprintf("%d governance tags did not fit within %d tags", len(plan.Dropped), MaxTagsPerKey)
	}
	if plan.Retry() {
		return h.pending(ctx, raw, res, in.Stack)
	}
	return res, nil
}

// DefaultStackLookupTimeout bounds the stack lookups of one event when the
// handler is not told otherwise.
const DefaultStackLookupTimeout = 10 * time.Second

// CodeAttributionPending is the error code of an event whose governance
// tags are written but for CreatedByStack or CreatedByUser, whose lookup
// could not finish and may later: the event is returned as a transient
// error, for Lambda to try again.
const CodeAttributionPending = "AttributionPending"

// findStack asks Stacks for key's stack within the stack lookup budget: at
// most StackLookupTimeout, and at most half of the time ctx has left, so
// that the writes keep the rest.
func (h *Handler) findStack(ctx context.Context, key *events.KeyEvent, operator bool) *StackOrigin {
	budget := h.StackLookupTimeout
	if budget <= 0 {
		budget = DefaultStackLookupTimeout
	}
	if deadline, ok := ctx.Deadline(); ok {
		budget = min(budget, time.Until(deadline)/2)
	}
	lctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	o := h.Stacks.FindStack(lctx, key, operator)
	if o == nil {
		o = &StackOrigin{Pending: true, Reason: "the stack lookup gave no answer"}
	}
	return o
}

// pending returns the transient error of an event whose other governance
// tags are written (or were already) while CreatedByStack or CreatedByUser
// wait on a lookup a later attempt may complete: Lambda tries the event
// again (a minute, then two later), and then hands it to its on-failure
// destination, from which autotagger redrive tries it again.
func (h *Handler) pending(ctx context.Context, raw json.RawMessage, res Result, o *StackOrigin) (Result, error) {
	keys := make([]string, 0, len(res.Pending))
	reasons := make([]string, 0, len(res.Pending))
	for _, n := range res.Pending {
		if n.Retry {
			keys = append(keys, n.Key)
			if !slices.Contains(reasons, n.Reason) {
				reasons = append(reasons, n.Reason)
			}
		}
	}
	why := fmt.Sprintf("the other governance tags are on the key; %s not known yet, for Lambda to try again: %s", strings.Join(keys, " and "), strings.Join(reasons, "; "))
	err := errors.New(why)
	if o != nil && o.Err != nil {
		err = fmt.Errorf("%s: %w", why, o.Err)
	}
	written := res.TagsWritten
	res, err = h.deadLetter(ctx, raw, res, Transient, CodeAttributionPending, err)
	res.TagsWritten = written
	res.Reason = CodeAttributionPending + ": " + why
	return res, err
}

// listTags returns every tag of keyARN (ListResourceTags, all pages); call
// gives the options of each page's call.
func listTags(ctx context.Context, client KMSAPI, keyARN string, call func() func(*kms.Options)) ([]Tag, error) {
	var tags []Tag
	pages := kms.NewListResourceTagsPaginator(client, &kms.ListResourceTagsInput{KeyId: aws.String(keyARN)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx, call())
		if err != nil {
			return nil, fmt.Errorf("listing tags of key %s: %w", keyARN, err)
		}
		for _, t := range page.Tags {
			tags = append(tags, Tag{Key: aws.ToString(t.TagKey), Value: aws.ToString(t.TagValue)})
		}
	}
	return tags, nil
}

// budgetError is a key with no room for its governance tags.
type budgetError struct{ error }

func (e *budgetError) Unwrap() error { return e.error }

// failed turns a failure to make key carry its governance tags into the
// Lambda behaviour (deadLetter), after deciding its class and code:
//   - a NotFoundException for a key whose event is young is transient: KMS
//     may not find a key just created everywhere yet;
//   - a permanent failure that leaves forged or creator-passed values of
//     governance tags on the key (plan.Overridden; without a plan, the
//     owned tags the event says the creator passed) is
//     CodeForgedTagsUncorrected, naming the tags and the original code, so
//     that an alarm can tell a key carrying forged governance tags from an
//     ordinary failure.
func (h *Handler) failed(ctx context.Context, raw json.RawMessage, res Result, key *events.KeyEvent, plan *Plan, err error) (Result, error) {
	class, code := Classify(err)
	var (
		checkErr *KeyCheckError
		budget   *budgetError
		conflict *ConflictError
	)
	switch {
	case errors.As(err, &checkErr):
		class, code = Permanent, checkErr.Code
	case errors.As(err, &conflict):
		class, code = conflict.Class, conflict.Code
	case errors.As(err, &budget):
		class, code = Permanent, CodeTagBudgetExceeded
	case code == CodeNotFound && young(key.EventTime, h.now()):
		class = Transient
	}
	if class == Permanent && conflict == nil {
		var forged []Tag
		if plan != nil {
			forged = plan.Overridden
		} else {
			for _, t := range key.RequestTags {
				if h.Policy.Owns(t.Key) {
					forged = append(forged, t)
				}
			}
		}
		if len(forged) > 0 {
			res.Forged = forged
			err = fmt.Errorf("the key keeps forged governance tags %s (%s): %w", tagList(forged), code, err)
			code = CodeForgedTagsUncorrected
		}
	}
	return h.deadLetter(ctx, raw, res, class, code, err)
}

// tagList formats tags as key=value, comma separated, in parentheses.
func tagList(tags []Tag) string {
	parts := make([]string, len(tags))
	for i, t := range tags {
		parts[i] = t.Key + "=" + t.Value
	}
	return "(" + strings.Join(parts, ", ") + ")"
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

// attemptCounter counts the attempts of each KMS call of one event.
type attemptCounter struct {
	log     func() *slog.Logger
	last    int // attempts of the latest call
	retries int // retries of the calls before it
}

// next returns the option that counts the attempts of the next call.
func (c *attemptCounter) next() func(*kms.Options) {
	c.retries += max(c.last-1, 0)
	c.last = 0
	return observeAttempts(c.log, &c.last)
}

// into sets res.Attempts to the attempts of the latest call (the one that
// failed, or the last write) and res.Retries to the retries of all calls.
func (c *attemptCounter) into(res *Result) {
	res.Attempts = c.last
	res.Retries = c.retries + max(c.last-1, 0)
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
	if len(res.Forged) > 0 {
		res.Reason = "the key keeps forged governance tags " + tagList(res.Forged) + ": " + res.Reason
	}
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
		Forged:    res.Forged,
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
	sendErr := ErrNoDeadLetterQueue
	if h.DeadLetters != nil {
		sendErr = h.DeadLetters.Send(ctx, d)
	}
	if err := sendErr; err != nil {
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
	if len(res.Removed) > 0 {
		attrs = append(attrs, slog.Any("removed", res.Removed))
		level = slog.LevelWarn
	}
	if len(res.Forged) > 0 {
		attrs = append(attrs, tagsAttr("forged", res.Forged))
	}
	if len(res.Unset) > 0 {
		attrs = append(attrs, notesAttr("unset", res.Unset))
	}
	if len(res.Pending) > 0 {
		attrs = append(attrs, notesAttr("pending", res.Pending))
		level = max(level, slog.LevelWarn)
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
// e.g. "tags":{"CreatedBy":"arn:…"}, which reads better in a log than a
// list of key and value pairs. The keys of one set of tags are distinct.
func tagsAttr(name string, tags []Tag) slog.Attr {
	attrs := make([]slog.Attr, len(tags))
	for i, t := range tags {
		attrs[i] = slog.String(t.Key, t.Value)
	}
	return slog.Attr{Key: name, Value: slog.GroupValue(attrs...)}
}

// notesAttr is notes as one attribute holding an object of tag key to
// reason, e.g. "unset":{"CreatedByUser":"the creator is …"}.
func notesAttr(name string, notes []Note) slog.Attr {
	attrs := make([]slog.Attr, len(notes))
	for i, n := range notes {
		attrs[i] = slog.String(n.Key, n.Reason)
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
