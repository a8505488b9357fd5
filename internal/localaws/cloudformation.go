package localaws

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// CloudFormationAPIVersion is the Version every CloudFormation request
// carries (the AWS Query protocol's).
const CloudFormationAPIVersion = "2010-05-15"

// MaxStackResourcesDescribed is how many resources DescribeStackResources
// answers at most, as CloudFormation: the first 100 of the stack.
const MaxStackResourcesDescribed = 100

// cloudFormationXMLNS is the namespace of CloudFormation's XML answers.
const cloudFormationXMLNS = "http://cloudformation.amazonaws.com/doc/2010-05-15/"

// Faults CloudFormation really answers, in its AWS Query shape, to inject
// with an InterceptFunc (WriteQueryError).
var (
	// CloudFormationThrottling is CloudFormation's answer to a caller over
	// its request quota (retryable).
	CloudFormationThrottling = Fault{Status: http.StatusBadRequest, Code: "Throttling", Message: "Rate exceeded (injected by localaws)"}
	// CloudFormationInternal is an internal failure (retryable).
	CloudFormationInternal = Fault{Status: http.StatusInternalServerError, Code: "InternalFailure", Message: "internal failure (injected by localaws)"}
	// CloudFormationAccessDenied is a caller without
	// cloudformation:DescribeStackResources (not retryable).
	CloudFormationAccessDenied = Fault{Status: http.StatusForbidden, Code: "AccessDenied",
		Message: "User is not authorized to perform: cloudformation:DescribeStackResources (injected by localaws)"}
)

// WriteQuery writes f the way a service of the AWS Query protocol does
// (WriteQueryError), for the CloudFormation stand-in's faults.
func (f Fault) WriteQuery(w http.ResponseWriter) { WriteQueryError(w, f.Status, f.Code, f.Message) }

// StackResource is one resource of a stack in the CloudFormation stand-in,
// with the fields of CloudFormation's StackResource structure.
type StackResource struct {
	// StackName and StackID (the stack's ARN) name its stack.
	StackName, StackID string
	// LogicalResourceID is the resource's name in the template.
	LogicalResourceID string
	// PhysicalResourceID is the resource's own id, such as a KMS key id.
	PhysicalResourceID string
	// ResourceType is e.g. AWS::KMS::Key.
	ResourceType string
	// ResourceStatus is e.g. CREATE_IN_PROGRESS or CREATE_COMPLETE.
	ResourceStatus string
	// Timestamp is the time of its last status change; zero means when
	// it was added.
	Timestamp time.Time
}

// CloudFormationOptions configures a CloudFormation stand-in.
type CloudFormationOptions struct {
	// Account is the account of every request when Accounts is nil;
	// DefaultAccount when empty.
	Account string
	// Accounts, when set, tells the account of each request's access key
	// (as for AccountRouter), so that one stand-in serves the stacks of
	// several accounts, each seeing its own.
	Accounts AccountResolver
	// Intercept, when set, sees every request first (see InterceptFunc;
	// target is the form's Action), for injecting faults and delays.
	Intercept InterceptFunc
}

// CloudFormationRequest is the record of one request the stand-in
// received.
type CloudFormationRequest struct {
	// Time is when the request arrived.
	Time time.Time
	// Account and Region are the request's, by its credentials.
	Account, Region string
	// Action is the form's Action.
	Action string
	// PhysicalResourceID is the PhysicalResourceId asked for, if any.
	PhysicalResourceID string
	// Status is the HTTP status of the answer.
	Status int
	// ErrorCode is the Code of an error answer, "" on success.
	ErrorCode string
}

// CloudFormation is a stand-in for CloudFormation's DescribeStackResources,
// over the service's real protocol (AWS Query: POST / with a form of
// Action=DescribeStackResources&Version=2010-05-15 and StackName,
// PhysicalResourceId or LogicalResourceId; XML answers, ErrorResponse
// errors), which the SDK's cloudformation client speaks. moto serves
// CloudFormation too, but does not find a stack by a resource's physical
// id, which is how the tagger finds the stack of a key. It serves the
// resources added with AddResource, each in its account and region (the
// region of the request's SigV4 credential scope):
//
//   - by PhysicalResourceId, every resource of the stack that holds it, or
//     400 ValidationError "Stack for <id> does not exist";
//   - by StackName (a name or the stack's ARN), every resource of that
//     stack, or 400 ValidationError "Stack with id <name> does not exist";
//   - both, or neither, 400 ValidationError, as CloudFormation answers;
//   - filtered by LogicalResourceId when given;
//   - the first MaxStackResourcesDescribed (100) resources only.
//
// Any other Action is 400 InvalidAction. Every request is recorded
// (Requests, Count). It is an http.Handler, for httptest.NewServer. It is
// safe for concurrent use.
type CloudFormation struct {
	account   string
	accounts  AccountResolver
	intercept atomic.Pointer[InterceptFunc]

	mu        sync.Mutex
	resources map[accountRegion][]StackResource
	requests  []CloudFormationRequest

	server *http.Server
	url    string
}

type accountRegion struct{ account, region string }

// NewCloudFormation returns a CloudFormation stand-in with no stacks.
func NewCloudFormation(opts CloudFormationOptions) *CloudFormation {
	c := &CloudFormation{account: opts.Account, accounts: opts.Accounts, resources: map[accountRegion][]StackResource{}}
	if c.account == "" {
		c.account = DefaultAccount
	}
	c.SetIntercept(opts.Intercept)
	return c
}

// StartCloudFormation starts a CloudFormation stand-in on 127.0.0.1 with a
// free port, for a process that cannot use httptest (the demo, whose
// function runs under the Lambda runtime interface emulator); Close stops
// it.
func StartCloudFormation(opts CloudFormationOptions) (*CloudFormation, error) {
	c := NewCloudFormation(opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start CloudFormation stand-in: %w", err)
	}
	c.url = "http://" + ln.Addr().String()
	c.server = &http.Server{Handler: c, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = c.server.Serve(ln) }() // returns http.ErrServerClosed on Close
	return c, nil
}

// URL returns the base URL of a started stand-in, the value for
// AWS_ENDPOINT_URL_CLOUDFORMATION; "" when not started by
// StartCloudFormation.
func (c *CloudFormation) URL() string { return c.url }

// Close stops a stand-in started by StartCloudFormation; it does nothing
// for one made by NewCloudFormation.
func (c *CloudFormation) Close() error {
	if c.server == nil {
		return nil
	}
	if err := c.server.Close(); err != nil {
		return fmt.Errorf("close CloudFormation stand-in: %w", err)
	}
	return nil
}

// SetIntercept installs f as the stand-in's InterceptFunc, replacing any
// previous one; nil removes it.
func (c *CloudFormation) SetIntercept(f InterceptFunc) {
	if f == nil {
		c.intercept.Store(nil)
		return
	}
	c.intercept.Store(&f)
}

// AddResource adds r to the stacks of account in region, replacing a
// resource of the same stack and logical id (a status change).
func (c *CloudFormation) AddResource(account, region string, r StackResource) {
	if r.Timestamp.IsZero() {
		r.Timestamp = time.Now().UTC()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := accountRegion{account, region}
	list := c.resources[k]
	if i := slices.IndexFunc(list, func(e StackResource) bool {
		return e.StackID == r.StackID && e.LogicalResourceID == r.LogicalResourceID
	}); i >= 0 {
		list[i] = r
		return
	}
	c.resources[k] = append(list, r)
}

// Requests returns the records of the requests for action (or
// AnyOperation), in the order they arrived.
func (c *CloudFormation) Requests(action string) []CloudFormationRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []CloudFormationRequest
	for _, r := range c.requests {
		if action == AnyOperation || r.Action == action {
			out = append(out, r)
		}
	}
	return out
}

// Count returns how many requests for action (or AnyOperation) the
// stand-in received.
func (c *CloudFormation) Count(action string) int { return len(c.Requests(action)) }

// ServeHTTP implements http.Handler.
func (c *CloudFormation) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	rec := &answerRecorder{ResponseWriter: w}
	entry := CloudFormationRequest{Time: arrived}
	defer func() {
		entry.Status, entry.ErrorCode = rec.status, rec.errorCode()
		c.mu.Lock()
		defer c.mu.Unlock()
		c.requests = append(c.requests, entry)
	}()
	body, err := io.ReadAll(io.LimitReader(r.Body, maxInterceptBody+1))
	if err != nil || len(body) > maxInterceptBody {
		WriteQueryError(rec, http.StatusBadRequest, "ValidationError", "localaws: the request body could not be read whole")
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		WriteQueryError(rec, http.StatusBadRequest, "MalformedQueryString", fmt.Sprintf("localaws: the request body is not a form: %v", err))
		return
	}
	scope, scopeErr := credentialScope(r)
	entry.Region, entry.Action, entry.PhysicalResourceID = scope.region, form.Get("Action"), form.Get("PhysicalResourceId")
	if f := c.intercept.Load(); f != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		if (*f)(rec, r, scope.region, entry.Action) {
			return
		}
	}
	if scopeErr != nil {
		WriteQueryError(rec, http.StatusForbidden, "InvalidClientTokenId", fmt.Sprintf("localaws: %v", scopeErr))
		return
	}
	entry.Account = c.account
	if c.accounts != nil {
		if entry.Account, err = c.accounts.AccountOf(r.Context(), scope.accessKeyID); err != nil {
			WriteQueryError(rec, http.StatusForbidden, "InvalidClientTokenId", fmt.Sprintf("localaws: the account of access key %s: %v", scope.accessKeyID, err))
			return
		}
	}
	switch {
	case entry.Action != "DescribeStackResources":
		WriteQueryError(rec, http.StatusBadRequest, "InvalidAction", fmt.Sprintf("localaws: the CloudFormation stand-in serves DescribeStackResources only, not %q", entry.Action))
	case form.Get("Version") != CloudFormationAPIVersion:
		WriteQueryError(rec, http.StatusBadRequest, "InvalidParameterValue", fmt.Sprintf("Version %q is not %s", form.Get("Version"), CloudFormationAPIVersion))
	default:
		c.describeStackResources(rec, entry.Account, scope.region, form)
	}
}

// describeStackResources answers DescribeStackResources for account in
// region.
func (c *CloudFormation) describeStackResources(w http.ResponseWriter, account, region string, form url.Values) {
	stackName, physical, logical := form.Get("StackName"), form.Get("PhysicalResourceId"), form.Get("LogicalResourceId")
	if (stackName == "") == (physical == "") {
		WriteQueryError(w, http.StatusBadRequest, "ValidationError", "Either StackName or PhysicalResourceId must be specified, but not both.")
		return
	}
	c.mu.Lock()
	all := slices.Clone(c.resources[accountRegion{account, region}])
	c.mu.Unlock()
	stackID := ""
	for _, r := range all {
		if (physical != "" && r.PhysicalResourceID == physical) || (stackName != "" && (r.StackName == stackName || r.StackID == stackName)) {
			stackID = r.StackID
			break
		}
	}
	if stackID == "" {
		if physical != "" {
			WriteQueryError(w, http.StatusBadRequest, "ValidationError", fmt.Sprintf("Stack for %s does not exist", physical))
		} else {
			WriteQueryError(w, http.StatusBadRequest, "ValidationError", fmt.Sprintf("Stack with id %s does not exist", stackName))
		}
		return
	}
	type member struct {
		StackName          string `xml:"StackName"`
		StackID            string `xml:"StackId"`
		LogicalResourceID  string `xml:"LogicalResourceId"`
		PhysicalResourceID string `xml:"PhysicalResourceId,omitempty"`
		ResourceType       string `xml:"ResourceType"`
		Timestamp          string `xml:"Timestamp"`
		ResourceStatus     string `xml:"ResourceStatus"`
	}
	type answer struct {
		XMLName   xml.Name `xml:"DescribeStackResourcesResponse"`
		XMLNS     string   `xml:"xmlns,attr"`
		Members   []member `xml:"DescribeStackResourcesResult>StackResources>member"`
		RequestID string   `xml:"ResponseMetadata>RequestId"`
	}
	a := answer{XMLNS: cloudFormationXMLNS, RequestID: newRequestID()}
	for _, r := range all {
		if r.StackID != stackID || (logical != "" && r.LogicalResourceID != logical) {
			continue
		}
		if len(a.Members) == MaxStackResourcesDescribed {
			break // "Only the first 100 resources will be returned."
		}
		a.Members = append(a.Members, member{
			StackName: r.StackName, StackID: r.StackID, LogicalResourceID: r.LogicalResourceID, PhysicalResourceID: r.PhysicalResourceID,
			ResourceType: r.ResourceType, Timestamp: r.Timestamp.UTC().Format(time.RFC3339Nano), ResourceStatus: r.ResourceStatus,
		})
	}
	data, err := xml.Marshal(a)
	if err != nil {
		WriteQueryError(w, http.StatusInternalServerError, "InternalFailure", fmt.Sprintf("localaws: encoding the answer: %v", err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/xml")
	h.Set("Content-Length", strconv.Itoa(len(data)))
	h.Set("X-Amzn-RequestId", a.RequestID)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}

// FailFirstQuery returns an InterceptFunc that answers the first n
// requests for action (a form's Action, such as "DescribeStackResources",
// or AnyTarget) in region (or AnyRegion) with f in the AWS Query shape
// (Fault.WriteQuery), and lets every other request through; n < 0 fails
// every matching request. It is FailFirst for the CloudFormation stand-in,
// whose InterceptFunc target is the Action.
func FailFirstQuery(region, action string, n int, f Fault) InterceptFunc {
	var left atomic.Int64
	left.Store(int64(n))
	return func(w http.ResponseWriter, _ *http.Request, gotRegion, gotAction string) bool {
		if (region != AnyRegion && region != gotRegion) || (action != AnyTarget && action != gotAction) {
			return false
		}
		if n >= 0 && left.Add(-1) < 0 {
			return false
		}
		f.WriteQuery(w)
		return true
	}
}
