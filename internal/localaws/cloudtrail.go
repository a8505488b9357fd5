package localaws

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"golang.org/x/time/rate"
)

// X-Amz-Target prefixes of the CloudTrail API. The AWS SDK for Go v2 sends
// the short one ("CloudTrail_20131101.LookupEvents"); the AWS CLI and other
// SDKs send the service's full shape name before the operation
// ("com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents").
// The CloudTrail stand-in accepts both.
const (
	CloudTrailTargetPrefix          = "CloudTrail_20131101"
	CloudTrailQualifiedTargetPrefix = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101"
)

// CloudTrailTarget returns the X-Amz-Target header value the Go SDK sends
// for the CloudTrail operation op, for example
// CloudTrailTarget("LookupEvents") is "CloudTrail_20131101.LookupEvents".
func CloudTrailTarget(op string) string { return CloudTrailTargetPrefix + "." + op }

// Limits of the real CloudTrail that the stand-in applies.
const (
	// DefaultLookupEventsRate is CloudTrail's LookupEvents quota: two
	// requests per second, per account, per region.
	DefaultLookupEventsRate = 2.0
	// CloudTrailEventHistory is how far back event history goes: LookupEvents
	// returns no event older than 90 days.
	CloudTrailEventHistory = 90 * 24 * time.Hour
	// MaxLookupEventsResults is the largest MaxResults LookupEvents accepts,
	// and its default.
	MaxLookupEventsResults = 50
)

// AnyOperation matches every operation in CloudTrail.Count and Requests.
const AnyOperation = "*"

// CloudTrailOptions configures a CloudTrail stand-in.
type CloudTrailOptions struct {
	// Regions are the regions served; a request signed for another region
	// gets UnrecognizedClientException. Empty serves every region.
	Regions []string
	// LookupEventsRate is the LookupEvents quota of each region in
	// requests per second: a token bucket refilled at this rate answers
	// ThrottlingException when empty. Zero means DefaultLookupEventsRate;
	// a negative rate switches the quota off.
	LookupEventsRate float64
	// LookupEventsBurst is the size of that bucket; zero means the rate
	// rounded up (2 for the default), so that a client keeping to the rate
	// is not throttled by network jitter.
	LookupEventsBurst int
	// Intercept, when set, sees every request first (see InterceptFunc;
	// target is the X-Amz-Target header), for injecting faults.
	Intercept InterceptFunc
	// Now is the clock the 90-day event history is measured against; nil
	// means time.Now.
	Now func() time.Time
}

// CloudTrailError is an error answer of the CloudTrail stand-in, written in
// the awsJson1_1 shape: {"__type": Code, "message": Message}.
type CloudTrailError struct {
	Status  int
	Code    string
	Message string
}

// Error returns "Code: Message".
func (e *CloudTrailError) Error() string { return e.Code + ": " + e.Message }

// CloudTrailRequest is the record of one request the stand-in received.
type CloudTrailRequest struct {
	// Time is when the request arrived.
	Time time.Time
	// Region is the region of its credential scope, "" when it has none.
	Region string
	// Operation is the operation its X-Amz-Target names, "" when none.
	Operation string
	// Status is the HTTP status of the answer.
	Status int
	// ErrorCode is the __type of an error answer, "" on success.
	ErrorCode string
}

// CloudTrail is a stand-in for the CloudTrail API, speaking its awsJson1_1
// protocol as the SDK's client does (POST /, X-Amz-Target
// CloudTrail_20131101.OPERATION, Content-Type application/x-amz-json-1.1).
// It serves each region's event history from the records added with
// AddEvent, routing requests by the region of their SigV4 credential scope
// like the KMS RegionRouter, so one endpoint (AWS_ENDPOINT_URL_CLOUDTRAIL)
// serves every region.
//
// It implements LookupEvents: filtering by one LookupAttribute (every key
// CloudTrail supports), StartTime and EndTime, the 90-day event history,
// newest events first, pagination with MaxResults (1 to 50) and NextToken,
// CloudTrail's validation errors, and the per-region quota of
// LookupEventsRate answered with 400 ThrottlingException. It serves no
// other operation: moto serves CloudTrail's trail APIs (StartMoto), but
// not LookupEvents. Every request is recorded (Requests, Count), so a test
// can measure the rate a client kept to. It is safe for concurrent use.
type CloudTrail struct {
	now       func() time.Time
	regions   []string
	rate      rate.Limit
	burst     int
	intercept atomic.Pointer[InterceptFunc]

	mu       sync.Mutex
	history  map[string][]trailEvent // per region, newest first
	limiters map[string]*rate.Limiter
	requests []CloudTrailRequest

	server *http.Server
	url    string
	// client is the connection pool of every Client.
	client *awshttp.BuildableClient
}

// trailEvent is one event of a region's history, with the fields
// LookupEvents returns and filters on, read from its record.
type trailEvent struct {
	id          string
	name        string
	source      string
	time        time.Time
	readOnly    string
	username    string
	accessKeyID string
	resources   []trailResource
	record      string
}

// trailResource is one entry of an event's Resources.
type trailResource struct {
	Type string `json:"ResourceType,omitempty"`
	Name string `json:"ResourceName,omitempty"`
}

// NewCloudTrail returns a CloudTrail stand-in that is an http.Handler, for
// use with httptest.NewServer or any server; StartCloudTrail also serves it.
func NewCloudTrail(opts CloudTrailOptions) (*CloudTrail, error) {
	for i, r := range opts.Regions {
		if !regionPattern.MatchString(r) {
			return nil, fmt.Errorf("new CloudTrail stand-in: region %q is not a region name such as us-east-1", r)
		}
		if slices.Contains(opts.Regions[:i], r) {
			return nil, fmt.Errorf("new CloudTrail stand-in: region %s listed twice", r)
		}
	}
	if opts.LookupEventsBurst < 0 {
		return nil, fmt.Errorf("new CloudTrail stand-in: negative LookupEventsBurst %d", opts.LookupEventsBurst)
	}
	c := &CloudTrail{
		now:      opts.Now,
		regions:  slices.Clone(opts.Regions),
		history:  make(map[string][]trailEvent),
		limiters: make(map[string]*rate.Limiter),
		client:   awshttp.NewBuildableClient(),
	}
	if c.now == nil {
		c.now = time.Now
	}
	switch r := opts.LookupEventsRate; {
	case r == 0:
		c.rate = DefaultLookupEventsRate
	case r < 0:
		c.rate = rate.Inf
	default:
		c.rate = rate.Limit(r)
	}
	c.burst = opts.LookupEventsBurst
	if c.burst == 0 {
		c.burst = max(1, int(math.Ceil(float64(c.rate))))
		if c.rate == rate.Inf {
			c.burst = 1
		}
	}
	c.SetIntercept(opts.Intercept)
	return c, nil
}

// StartCloudTrail starts a CloudTrail stand-in on 127.0.0.1 with a free
// port; Close stops it.
func StartCloudTrail(opts CloudTrailOptions) (*CloudTrail, error) {
	c, err := NewCloudTrail(opts)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start CloudTrail stand-in: %w", err)
	}
	c.url = "http://" + ln.Addr().String()
	c.server = &http.Server{Handler: c, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = c.server.Serve(ln) }() // returns http.ErrServerClosed on Close
	return c, nil
}

// URL returns the base URL of a started stand-in, http://127.0.0.1:PORT,
// the value for AWS_ENDPOINT_URL_CLOUDTRAIL; "" when not started by
// StartCloudTrail.
func (c *CloudTrail) URL() string { return c.url }

// Close stops a stand-in started by StartCloudTrail; it does nothing for
// one made by NewCloudTrail.
func (c *CloudTrail) Close() error {
	if c.server == nil {
		return nil
	}
	if err := c.server.Close(); err != nil {
		return fmt.Errorf("close CloudTrail stand-in: %w", err)
	}
	return nil
}

// Client returns an aws-sdk-go-v2 CloudTrail client for region that signs
// with static credentials and sends to URL. Every client shares the
// stand-in's connection pool, as clients made from one aws.Config share its
// HTTPClient.
func (c *CloudTrail) Client(region string, optFns ...func(*cloudtrail.Options)) *cloudtrail.Client {
	return cloudtrail.New(cloudtrail.Options{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(localAccessKeyID, localSecretAccessKey, ""),
		BaseEndpoint: aws.String(c.url),
		HTTPClient:   c.client,
	}, optFns...)
}

// SetIntercept installs f as the stand-in's InterceptFunc, replacing any
// previous one; nil removes it.
func (c *CloudTrail) SetIntercept(f InterceptFunc) {
	if f == nil {
		c.intercept.Store(nil)
		return
	}
	c.intercept.Store(&f)
}

// recordHeader is the part of a CloudTrail record AddEvent reads.
type recordHeader struct {
	EventID      string `json:"eventID"`
	EventName    string `json:"eventName"`
	EventSource  string `json:"eventSource"`
	EventTime    string `json:"eventTime"`
	AWSRegion    string `json:"awsRegion"`
	ReadOnly     *bool  `json:"readOnly"`
	UserIdentity struct {
		Type        string `json:"type"`
		ARN         string `json:"arn"`
		UserName    string `json:"userName"`
		AccessKeyID string `json:"accessKeyId"`
	} `json:"userIdentity"`
	Resources []struct {
		ARN  string `json:"ARN"`
		Type string `json:"type"`
	} `json:"resources"`
}

// AddEvent adds record, a CloudTrail record (the JSON LookupEvents returns
// as CloudTrailEvent), to the event history of region. It reads eventID
// (required, unique in the region), eventTime (required, RFC 3339),
// eventName, eventSource, awsRegion (which must be region when set),
// readOnly, userIdentity and resources, from which it derives the Event
// fields LookupEvents returns: Username is userIdentity.userName, the session
// name of an assumed role, or "root"; Resources are the record's resources,
// with the ARN as ResourceName.
func (c *CloudTrail) AddEvent(region string, record []byte) error {
	var h recordHeader
	if err := json.Unmarshal(record, &h); err != nil {
		return fmt.Errorf("add CloudTrail event: record is not a CloudTrail record: %w", err)
	}
	if h.EventID == "" {
		return errors.New("add CloudTrail event: record has no eventID")
	}
	at, err := time.Parse(time.RFC3339, h.EventTime)
	if err != nil {
		return fmt.Errorf("add CloudTrail event %s: eventTime %q is not RFC 3339", h.EventID, h.EventTime)
	}
	if h.AWSRegion != "" && h.AWSRegion != region {
		return fmt.Errorf("add CloudTrail event %s: awsRegion %s is not the region %s of the event history", h.EventID, h.AWSRegion, region)
	}
	ev := trailEvent{
		id:          h.EventID,
		name:        h.EventName,
		source:      h.EventSource,
		time:        at.UTC(),
		accessKeyID: h.UserIdentity.AccessKeyID,
		record:      string(record),
	}
	if h.ReadOnly != nil {
		ev.readOnly = strconv.FormatBool(*h.ReadOnly)
	}
	switch u := h.UserIdentity; {
	case u.UserName != "":
		ev.username = u.UserName
	case u.Type == "AssumedRole" && u.ARN != "":
		ev.username = u.ARN[strings.LastIndex(u.ARN, "/")+1:]
	case u.Type == "Root":
		ev.username = "root"
	}
	for _, r := range h.Resources {
		ev.resources = append(ev.resources, trailResource{Type: r.Type, Name: r.ARN})
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	events := c.history[region]
	if slices.ContainsFunc(events, func(e trailEvent) bool { return e.id == ev.id }) {
		return fmt.Errorf("add CloudTrail event: eventID %s is already in the history of %s", ev.id, region)
	}
	i, _ := slices.BinarySearchFunc(events, ev, newestFirst)
	c.history[region] = slices.Insert(events, i, ev)
	return nil
}

// newestFirst orders events newest first, then by event ID.
func newestFirst(a, b trailEvent) int {
	if c := b.time.Compare(a.time); c != 0 {
		return c
	}
	return strings.Compare(a.id, b.id)
}

// Requests returns the records of the requests for op (an operation name
// such as "LookupEvents", or AnyOperation) in region (or AnyRegion), in the
// order they arrived.
func (c *CloudTrail) Requests(region, op string) []CloudTrailRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []CloudTrailRequest
	for _, r := range c.requests {
		if (region == AnyRegion || r.Region == region) && (op == AnyOperation || r.Operation == op) {
			out = append(out, r)
		}
	}
	return out
}

// Count returns how many requests for op in region the stand-in received;
// AnyRegion and AnyOperation match every region or operation.
func (c *CloudTrail) Count(region, op string) int { return len(c.Requests(region, op)) }

// ResetRequests forgets every recorded request.
func (c *CloudTrail) ResetRequests() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests = nil
}

// ServeHTTP implements http.Handler.
func (c *CloudTrail) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	region, scopeErr := CredentialScopeRegion(r)
	target := r.Header.Get("X-Amz-Target")
	op := cloudTrailOperation(target)
	rec := &answerRecorder{ResponseWriter: w}
	defer func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.requests = append(c.requests, CloudTrailRequest{
			Time: arrived, Region: region, Operation: op, Status: rec.status, ErrorCode: rec.errorCode(),
		})
	}()
	c.serve(rec, r, region, scopeErr, target, op)
}

// serve answers one request.
func (c *CloudTrail) serve(w http.ResponseWriter, r *http.Request, region string, scopeErr error, target, op string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxInterceptBody+1))
	if err != nil {
		WriteKMSError(w, http.StatusBadRequest, "SerializationException", fmt.Sprintf("localaws: read request body: %v", err))
		return
	}
	if len(body) > maxInterceptBody {
		WriteKMSError(w, http.StatusRequestEntityTooLarge, "ValidationException", fmt.Sprintf("localaws: request body over %d bytes", maxInterceptBody))
		return
	}
	if f := c.intercept.Load(); f != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		if (*f)(w, r, region, target) {
			return
		}
	}
	if scopeErr != nil {
		WriteKMSError(w, http.StatusBadRequest, "UnrecognizedClientException", fmt.Sprintf("localaws: %v", scopeErr))
		return
	}
	if len(c.regions) > 0 && !slices.Contains(c.regions, region) {
		WriteKMSError(w, http.StatusBadRequest, "UnrecognizedClientException",
			fmt.Sprintf("localaws: the CloudTrail stand-in does not serve region %q; it serves %s", region, strings.Join(c.regions, ", ")))
		return
	}
	if op != "LookupEvents" {
		WriteKMSError(w, http.StatusBadRequest, "UnknownOperationException",
			fmt.Sprintf("localaws: the CloudTrail stand-in serves only LookupEvents, not X-Amz-Target %q (moto serves the trail APIs)", target))
		return
	}
	if !c.limiter(region).Allow() {
		WriteKMSError(w, http.StatusBadRequest, "ThrottlingException", "Rate exceeded")
		return
	}
	out, err := c.lookupEvents(region, body)
	if err != nil {
		var ce *CloudTrailError
		if errors.As(err, &ce) {
			WriteKMSError(w, ce.Status, ce.Code, ce.Message)
			return
		}
		WriteKMSError(w, http.StatusInternalServerError, "InternalFailure", "localaws: "+err.Error())
		return
	}
	data, err := json.Marshal(out)
	if err != nil {
		WriteKMSError(w, http.StatusInternalServerError, "InternalFailure", fmt.Sprintf("localaws: encoding the %s response: %v", op, err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", KMSContentType) // awsJson1_1, the same for every service speaking it
	h.Set("Content-Length", strconv.Itoa(len(data)))
	h.Set("X-Amzn-RequestId", newRequestID())
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}

// cloudTrailOperation returns the operation an X-Amz-Target names, "" when
// it is not a CloudTrail target.
func cloudTrailOperation(target string) string {
	for _, prefix := range []string{CloudTrailQualifiedTargetPrefix + ".", CloudTrailTargetPrefix + "."} {
		if op, ok := strings.CutPrefix(target, prefix); ok {
			return op
		}
	}
	return ""
}

// limiter returns the LookupEvents token bucket of region.
func (c *CloudTrail) limiter(region string) *rate.Limiter {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.limiters[region]
	if !ok {
		l = rate.NewLimiter(c.rate, c.burst)
		c.limiters[region] = l
	}
	return l
}

// lookupEventsInput is the LookupEvents request as the SDK serializes it.
type lookupEventsInput struct {
	StartTime        *float64 `json:"StartTime"`
	EndTime          *float64 `json:"EndTime"`
	EventCategory    string   `json:"EventCategory"`
	LookupAttributes []struct {
		AttributeKey   string  `json:"AttributeKey"`
		AttributeValue *string `json:"AttributeValue"`
	} `json:"LookupAttributes"`
	MaxResults *int    `json:"MaxResults"`
	NextToken  *string `json:"NextToken"`
}

// lookupEventsOutput is the LookupEvents response.
type lookupEventsOutput struct {
	Events    []lookupEvent `json:"Events"`
	NextToken string        `json:"NextToken,omitempty"`
}

// lookupEvent is one Event of a LookupEvents response. EventTime is in
// epoch seconds, as awsJson1_1 encodes timestamps.
type lookupEvent struct {
	EventID         string          `json:"EventId"`
	EventName       string          `json:"EventName,omitempty"`
	ReadOnly        string          `json:"ReadOnly,omitempty"`
	AccessKeyID     string          `json:"AccessKeyId,omitempty"`
	EventTime       float64         `json:"EventTime"`
	EventSource     string          `json:"EventSource,omitempty"`
	Username        string          `json:"Username,omitempty"`
	Resources       []trailResource `json:"Resources,omitempty"`
	CloudTrailEvent string          `json:"CloudTrailEvent"`
}

// pageToken is what a NextToken encodes: the query it continues and where.
type pageToken struct {
	Query  string `json:"q"`
	Offset int    `json:"o"`
}

// badRequest returns a 400 CloudTrailError.
func badRequest(code, format string, args ...any) *CloudTrailError {
	return &CloudTrailError{Status: http.StatusBadRequest, Code: code, Message: fmt.Sprintf(format, args...)}
}

// lookupEvents serves LookupEvents for region.
func (c *CloudTrail) lookupEvents(region string, body []byte) (any, error) {
	var in lookupEventsInput
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, badRequest("SerializationException", "request body is not a LookupEvents request: %v", err)
		}
	}
	if len(in.LookupAttributes) > 1 {
		return nil, badRequest("InvalidLookupAttributesException", "You can only specify one lookup attribute.")
	}
	match := func(trailEvent) bool { return true }
	if len(in.LookupAttributes) == 1 {
		a := in.LookupAttributes[0]
		if a.AttributeValue == nil || *a.AttributeValue == "" {
			return nil, badRequest("InvalidLookupAttributesException", "The lookup attribute %s has no value.", a.AttributeKey)
		}
		var err error
		if match, err = attributeMatcher(a.AttributeKey, *a.AttributeValue); err != nil {
			return nil, err
		}
	}
	limit := MaxLookupEventsResults
	if in.MaxResults != nil {
		limit = *in.MaxResults
		if limit < 1 || limit > MaxLookupEventsResults {
			return nil, badRequest("InvalidMaxResultsException", "MaxResults %d is not between 1 and %d.", limit, MaxLookupEventsResults)
		}
	}
	start, end := time.Time{}, time.Time{}
	if in.StartTime != nil {
		start = epochTime(*in.StartTime)
	}
	if in.EndTime != nil {
		end = epochTime(*in.EndTime)
	}
	if !start.IsZero() && !end.IsZero() && start.After(end) {
		return nil, badRequest("InvalidTimeRangeException", "The StartTime %s is after the EndTime %s.", start.Format(time.RFC3339), end.Format(time.RFC3339))
	}
	switch in.EventCategory {
	case "", "insight":
	default:
		return nil, badRequest("InvalidEventCategoryException", "EventCategory %q is not insight.", in.EventCategory)
	}

	query := lookupQuery(body)
	offset := 0
	if in.NextToken != nil {
		tok, ok := decodePageToken(*in.NextToken)
		if !ok || tok.Query != query || tok.Offset < 0 {
			return nil, badRequest("InvalidNextTokenException", "The NextToken is not valid for this request.")
		}
		offset = tok.Offset
	}

	out := lookupEventsOutput{Events: []lookupEvent{}}
	if in.EventCategory == "insight" {
		return out, nil // the stand-in holds management events only
	}
	horizon := c.now().Add(-CloudTrailEventHistory)
	c.mu.Lock()
	var found []trailEvent
	for _, ev := range c.history[region] {
		if ev.time.Before(horizon) || (!start.IsZero() && ev.time.Before(start)) || (!end.IsZero() && ev.time.After(end)) || !match(ev) {
			continue
		}
		found = append(found, ev)
	}
	c.mu.Unlock()

	if offset > len(found) {
		offset = len(found)
	}
	page := found[offset:min(offset+limit, len(found))]
	for _, ev := range page {
		out.Events = append(out.Events, lookupEvent{
			EventID:         ev.id,
			EventName:       ev.name,
			ReadOnly:        ev.readOnly,
			AccessKeyID:     ev.accessKeyID,
			EventTime:       float64(ev.time.UnixMilli()) / 1000,
			EventSource:     ev.source,
			Username:        ev.username,
			Resources:       ev.resources,
			CloudTrailEvent: ev.record,
		})
	}
	if next := offset + len(page); next < len(found) {
		out.NextToken = encodePageToken(pageToken{Query: query, Offset: next})
	}
	return out, nil
}

// attributeMatcher returns the filter of one LookupAttribute.
func attributeMatcher(key, value string) (func(trailEvent) bool, error) {
	switch key {
	case "EventId":
		return func(e trailEvent) bool { return e.id == value }, nil
	case "EventName":
		return func(e trailEvent) bool { return e.name == value }, nil
	case "EventSource":
		return func(e trailEvent) bool { return e.source == value }, nil
	case "ReadOnly":
		return func(e trailEvent) bool { return e.readOnly == value }, nil
	case "Username":
		return func(e trailEvent) bool { return e.username == value }, nil
	case "AccessKeyId":
		return func(e trailEvent) bool { return e.accessKeyID == value }, nil
	case "ResourceName":
		return func(e trailEvent) bool {
			return slices.ContainsFunc(e.resources, func(r trailResource) bool { return r.Name == value })
		}, nil
	case "ResourceType":
		return func(e trailEvent) bool {
			return slices.ContainsFunc(e.resources, func(r trailResource) bool { return r.Type == value })
		}, nil
	default:
		return nil, badRequest("InvalidLookupAttributesException", "The lookup attribute key %q is not valid.", key)
	}
}

// epochTime converts awsJson1_1 epoch seconds to a time.
func epochTime(sec float64) time.Time {
	whole, frac := math.Modf(sec)
	return time.Unix(int64(whole), int64(math.Round(frac*1e9))).UTC()
}

// lookupQuery identifies a LookupEvents query apart from its page: the
// request without NextToken and MaxResults.
func lookupQuery(body []byte) string {
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(body, &fields) // the body was decoded already
	delete(fields, "NextToken")
	delete(fields, "MaxResults")
	canonical, _ := json.Marshal(fields) // map keys are sorted
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:8])
}

// encodePageToken returns the NextToken for t.
func encodePageToken(t pageToken) string {
	b, _ := json.Marshal(t) // a string and an int always marshal
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodePageToken reads a NextToken.
func decodePageToken(s string) (pageToken, bool) {
	var t pageToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, &t) != nil {
		return t, false
	}
	return t, true
}
