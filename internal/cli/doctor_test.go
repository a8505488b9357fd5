package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/kms-autotagger/kms-autotagger/internal/cli"
	"github.com/kms-autotagger/kms-autotagger/internal/doctor"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
)

const (
	doctorAccount = "111122223333"
	// doctorOperatorARN is the caller the STS server reports unless told
	// otherwise: a session of doctorOperatorRole.
	doctorOperatorARN  = "arn:aws:sts::111122223333:assumed-role/KMSAutoTaggerOperator/jane"
	doctorOperatorRole = "arn:aws:iam::111122223333:role/ops/KMSAutoTaggerOperator"
)

// doctorSigV4Scope reads region and service from a SigV4 Authorization
// header: "AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request, ...".
var doctorSigV4Scope = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request,`)

// doctorSignedFor returns the region of a request signed for service, or an error
// saying how it is not.
func doctorSignedFor(r *http.Request, service string) (string, error) {
	m := doctorSigV4Scope.FindStringSubmatch(r.Header.Get("Authorization"))
	switch {
	case m == nil:
		return "", fmt.Errorf("request is not signed with SigV4: Authorization %q", r.Header.Get("Authorization"))
	case m[2] != service:
		return "", fmt.Errorf("request is signed for service %q, not %q", m[2], service)
	}
	return m[1], nil
}

// trail is one trail of the CloudTrail server's account.
type doctorTrail struct {
	name         string
	home         string
	multiRegion  bool
	organization bool
	logging      bool
	// basic and advanced are the event selectors as CloudTrail sends them;
	// a trail has one kind or the other. Neither means the default
	// selector (all management events).
	basic    []map[string]any
	advanced []map[string]any
}

func (t doctorTrail) arn() string {
	return fmt.Sprintf("arn:aws:cloudtrail:%s:%s:trail/%s", t.home, doctorAccount, t.name)
}

// doctorCTCall is one request the CloudTrail server answered.
type doctorCTCall struct {
	region, op string
	body       map[string]any
}

// doctorCloudTrail serves the CloudTrail calls the doctor makes, in the
// AWS JSON 1.1 protocol the SDK speaks (POST /, X-Amz-Target
// CloudTrail_20131101.OPERATION, JSON bodies, errors as __type), for the
// trails of one account. Like CloudTrail, in a region it shows the trails
// homed there and the multi-Region trails homed elsewhere (shadow trails,
// found by ARN only).
type doctorCloudTrail struct {
	*httptest.Server
	mu     sync.Mutex
	trails []doctorTrail
	deny   map[string]bool // operations refused with AccessDeniedException
	calls  []doctorCTCall
}

func startDoctorCloudTrail(t *testing.T) *doctorCloudTrail {
	s := &doctorCloudTrail{}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *doctorCloudTrail) set(deny []string, trails ...doctorTrail) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trails, s.calls, s.deny = trails, nil, map[string]bool{}
	for _, op := range deny {
		s.deny[op] = true
	}
}

func (s *doctorCloudTrail) callLog() []doctorCTCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]doctorCTCall(nil), s.calls...)
}

func (s *doctorCloudTrail) serve(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, code, msg string) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-ErrorType", code)
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
	}
	region, err := doctorSignedFor(r, "cloudtrail")
	if err != nil {
		fail(http.StatusForbidden, "IncompleteSignatureException", err.Error())
		return
	}
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "CloudTrail_20131101.")
	if r.Method != http.MethodPost || r.URL.Path != "/" || !ok ||
		r.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
		fail(http.StatusBadRequest, "UnknownOperationException", fmt.Sprintf("not a CloudTrail call: %s %s target %q content type %q",
			r.Method, r.URL.Path, r.Header.Get("X-Amz-Target"), r.Header.Get("Content-Type")))
		return
	}
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		fail(http.StatusBadRequest, "SerializationException", "body is not a JSON object: "+err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, doctorCTCall{region: region, op: op, body: body})
	if s.deny[op] {
		fail(http.StatusBadRequest, "AccessDeniedException", fmt.Sprintf("User: %s is not authorized to perform: "+
			"cloudtrail:%s because no identity-based policy allows the cloudtrail:%s action", doctorOperatorARN, op, op))
		return
	}
	visible := func(t doctorTrail) bool { return t.home == region || t.multiRegion }
	find := func(id any) (doctorTrail, bool) {
		for _, t := range s.trails {
			if (id == t.arn() && visible(t)) || (id == t.name && t.home == region) {
				return t, true
			}
		}
		return doctorTrail{}, false
	}
	reply := func(v any) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-RequestId", "3b5f1e2c-0000-4000-8000-000000000000")
		_ = json.NewEncoder(w).Encode(v)
	}
	switch op {
	case "DescribeTrails":
		shadows, _ := body["includeShadowTrails"].(bool)
		list := []map[string]any{}
		for _, t := range s.trails {
			if t.home == region || (shadows && t.multiRegion) {
				list = append(list, map[string]any{
					"Name": t.name, "TrailARN": t.arn(), "HomeRegion": t.home, "S3BucketName": "trail-bucket-" + doctorAccount,
					"IncludeGlobalServiceEvents": true, "IsMultiRegionTrail": t.multiRegion, "IsOrganizationTrail": t.organization,
					"LogFileValidationEnabled": true, "HasCustomEventSelectors": t.basic != nil || t.advanced != nil,
					"HasInsightSelectors": false,
				})
			}
		}
		reply(map[string]any{"trailList": list})
	case "GetTrailStatus":
		t, ok := find(body["Name"])
		if !ok {
			fail(http.StatusBadRequest, "TrailNotFoundException", fmt.Sprintf("Unknown trail: %v for the user: %s", body["Name"], doctorAccount))
			return
		}
		status := map[string]any{"IsLogging": t.logging, "StartLoggingTime": 1.7735e9, "TimeLoggingStarted": "2026-03-14T13:20:00Z",
			"LatestDeliveryTime": 1.773500966e9, "LatestDeliveryAttemptSucceeded": "2026-03-14T15:09:26Z"}
		if !t.logging {
			status["StopLoggingTime"], status["TimeLoggingStopped"] = 1.7736e9, "2026-03-15T17:06:40Z"
		}
		reply(status)
	case "GetEventSelectors":
		t, ok := find(body["TrailName"])
		if !ok {
			fail(http.StatusBadRequest, "TrailNotFoundException", fmt.Sprintf("Unknown trail: %v for the user: %s", body["TrailName"], doctorAccount))
			return
		}
		out := map[string]any{"TrailARN": t.arn()}
		switch {
		case t.advanced != nil:
			out["AdvancedEventSelectors"] = t.advanced
		case t.basic != nil:
			out["EventSelectors"] = t.basic
		default:
			out["EventSelectors"] = []map[string]any{{"ReadWriteType": "All", "IncludeManagementEvents": true,
				"DataResources": []any{}, "ExcludeManagementEventSources": []any{}}}
		}
		reply(out)
	default:
		fail(http.StatusBadRequest, "UnknownOperationException", "the test server does not serve "+op)
	}
}

// doctorSTS serves GetCallerIdentity in the AWS Query protocol: a
// form-encoded POST answered with XML.
type doctorSTS struct {
	*httptest.Server
	mu      sync.Mutex
	arn     string
	errCode string // when set, the call fails with this code
	calls   int
}

func startDoctorSTS(t *testing.T) *doctorSTS {
	s := &doctorSTS{arn: doctorOperatorARN}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *doctorSTS) set(arn, errCode string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.arn, s.errCode = arn, errCode
}

func (s *doctorSTS) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-RequestId", "c6104cbe-af31-11e0-8154-cbc7ccf896c7")
	fail := func(status int, code, msg string) {
		w.WriteHeader(status)
		fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>`+
			`<Code>%s</Code><Message>%s</Message></Error><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ErrorResponse>`,
			code, doctorXMLEscape(msg))
	}
	if _, err := doctorSignedFor(r, "sts"); err != nil {
		fail(http.StatusForbidden, "IncompleteSignature", err.Error())
		return
	}
	if err := r.ParseForm(); err != nil || r.Method != http.MethodPost ||
		r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" ||
		r.PostForm.Get("Action") != "GetCallerIdentity" || r.PostForm.Get("Version") != "2011-06-15" {
		fail(http.StatusBadRequest, "InvalidAction", fmt.Sprintf("not a GetCallerIdentity call: %s %q %v", r.Method, r.Header.Get("Content-Type"), r.PostForm))
		return
	}
	if s.errCode != "" {
		fail(http.StatusForbidden, s.errCode, "The security token included in the request is invalid.")
		return
	}
	account := strings.Split(s.arn, ":")[4]
	fmt.Fprintf(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>%s</Arn>
    <UserId>AROA3XFRBF535PLBIFPI4:jane</UserId>
    <Account>%s</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata>
    <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
  </ResponseMetadata>
</GetCallerIdentityResponse>
`, doctorXMLEscape(s.arn), account)
}

func doctorXMLEscape(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// doctorStack is the doctor's world: the CloudTrail and STS servers, the SQS
// stand-in with a dead-letter queue, and the environment pointing the real
// SDK clients at them (set with t.Setenv, so its tests are not parallel).
type doctorStack struct {
	ct       *doctorCloudTrail
	sts      *doctorSTS
	sqs      *localaws.SQS
	queueURL string
}

func startDoctorStack(t *testing.T) *doctorStack {
	t.Helper()
	q, err := localaws.StartSQS(context.Background(), localaws.SQSOptions{Account: doctorAccount})
	if err != nil {
		t.Fatalf("starting SQS stand-in: %v", err)
	}
	t.Cleanup(func() { _ = q.Close() })
	queueURL, err := q.CreateQueue(context.Background(), "autotagger-dlq")
	if err != nil {
		t.Fatal(err)
	}
	s := &doctorStack{ct: startDoctorCloudTrail(t), sts: startDoctorSTS(t), sqs: q, queueURL: queueURL}
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_CLOUDTRAIL": s.ct.URL,
		"AWS_ENDPOINT_URL_STS":        s.sts.URL,
		"AWS_ENDPOINT_URL_SQS":        q.URL(),
		"AWS_REGION":                  "us-east-1",
		"AWS_DEFAULT_REGION":          "",
		"AWS_PROFILE":                 "",
		"AWS_ACCESS_KEY_ID":           "AKIDEXAMPLE",
		"AWS_SECRET_ACCESS_KEY":       "secret",
		"AWS_SESSION_TOKEN":           "",
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"AWS_EC2_METADATA_DISABLED":   "true",
		"DEAD_LETTER_QUEUE_URL":       queueURL,
	} {
		t.Setenv(k, v)
	}
	return s
}

// runDoctor runs `autotagger doctor args...` through cli.Run.
func runDoctor(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = cli.Run(context.Background(), append([]string{"doctor"}, args...), cli.IO{
		Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut, Getenv: os.Getenv,
	})
	return code, out.String(), errOut.String()
}

// runDoctorJSON runs the doctor with --output json and decodes the report.
func runDoctorJSON(t *testing.T, args ...string) (int, doctor.Report) {
	t.Helper()
	code, stdout, stderr := runDoctor(t, append(args, "--output", "json")...)
	var r doctor.Report
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("stdout is not a JSON report: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
	}
	return code, r
}

// doctorCheck returns the report's check of name (and region), failing the test
// when there is none.
func doctorCheck(t *testing.T, r doctor.Report, name, region string) doctor.Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name && c.Region == region {
			return c
		}
	}
	t.Fatalf("report has no %s %s check: %+v", name, region, r.Checks)
	return doctor.Check{}
}

// doctorCheckText is everything a check says, for searching.
func doctorCheckText(c doctor.Check) string {
	return strings.Join(append([]string{c.Summary, c.Fix}, c.Details...), "\n")
}

func wantDoctorCheck(t *testing.T, r doctor.Report, name, region string, status doctor.Status, mentions ...string) doctor.Check {
	t.Helper()
	c := doctorCheck(t, r, name, region)
	if c.Status != status {
		t.Errorf("%s %s: status %s, want %s\n%s", name, region, c.Status, status, doctorCheckText(c))
	}
	if status == doctor.Fail && c.Fix == "" {
		t.Errorf("%s %s failed without a fix", name, region)
	}
	if status == doctor.Pass && c.Fix != "" {
		t.Errorf("%s %s passed with a fix %q", name, region, c.Fix)
	}
	for _, m := range mentions {
		if !strings.Contains(doctorCheckText(c), m) {
			t.Errorf("%s %s does not mention %q:\n%s", name, region, m, doctorCheckText(c))
		}
	}
	return c
}

// wantDoctorFailures checks the exit code and that exactly the named checks
// failed.
func wantDoctorFailures(t *testing.T, code int, r doctor.Report, failed ...string) {
	t.Helper()
	var got []string
	for _, c := range r.Checks {
		if c.Status == doctor.Fail {
			got = append(got, strings.TrimSpace(c.Name+" "+c.Region))
		}
	}
	if strings.Join(got, ",") != strings.Join(failed, ",") {
		t.Errorf("failed checks = %v, want %v", got, failed)
	}
	wantCode := cli.ExitOK
	if len(failed) > 0 {
		wantCode = cli.ExitFailure
	}
	if code != wantCode || r.OK != (len(failed) == 0) || r.Failed != len(failed) {
		t.Errorf("exit %d, ok %v, failed %d; want exit %d, ok %v, failed %d", code, r.OK, r.Failed, wantCode, len(failed) == 0, len(failed))
	}
}

var doctorManagementTrail = doctorTrail{name: "management-events", home: "us-east-1", multiRegion: true, organization: true, logging: true}

func TestDoctorCommand(t *testing.T) {
	s := startDoctorStack(t)
	queueARN := "arn:aws:sqs:us-east-1:" + doctorAccount + ":autotagger-dlq"

	t.Run("healthy", func(t *testing.T) {
		s.ct.set(nil, doctorManagementTrail)
		s.sts.set(doctorOperatorARN, "")
		code, r := runDoctorJSON(t, "--regions", "us-east-1, eu-west-1", "--expect-account", doctorAccount,
			"--expect-role-arn", doctorOperatorRole, "--expect-principal", "KMSAutoTaggerOperator")
		wantDoctorFailures(t, code, r)
		var names []string
		for _, c := range r.Checks {
			names = append(names, strings.TrimSpace(c.Name+" "+c.Region))
		}
		want := "settings,identity,cloudtrail us-east-1,cloudtrail eu-west-1,dead-letter-queue"
		if strings.Join(names, ",") != want {
			t.Errorf("checks = %v, want %s", names, want)
		}
		wantDoctorCheck(t, r, "identity", "", doctor.Pass, doctorAccount, doctorOperatorARN)
		wantDoctorCheck(t, r, "cloudtrail", "us-east-1", doctor.Pass, "management-events", "ReadWriteType All")
		wantDoctorCheck(t, r, "cloudtrail", "eu-west-1", doctor.Pass, "home us-east-1, multi-Region, organization")
		wantDoctorCheck(t, r, "dead-letter-queue", "", doctor.Pass, queueARN, "sqs:SendMessage")

		// Every call went to the region checked, shadow trails included.
		regions := map[string]int{}
		for _, c := range s.ct.callLog() {
			regions[c.region]++
			switch c.op {
			case "DescribeTrails":
				if c.body["includeShadowTrails"] != true {
					t.Errorf("DescribeTrails in %s without includeShadowTrails: %v", c.region, c.body)
				}
			case "GetTrailStatus", "GetEventSelectors":
				id := c.body["Name"]
				if c.op == "GetEventSelectors" {
					id = c.body["TrailName"]
				}
				if id != doctorManagementTrail.arn() {
					t.Errorf("%s in %s for %v, want the trail ARN %s", c.op, c.region, id, doctorManagementTrail.arn())
				}
			}
		}
		if regions["us-east-1"] != 3 || regions["eu-west-1"] != 3 {
			t.Errorf("calls per region = %v, want 3 in each of us-east-1 and eu-west-1", regions)
		}
	})

	t.Run("healthy text", func(t *testing.T) {
		s.ct.set(nil, doctorManagementTrail)
		s.sts.set(doctorOperatorARN, "")
		code, stdout, stderr := runDoctor(t)
		if code != cli.ExitOK {
			t.Fatalf("exit %d, want 0\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
		for _, want := range []string{
			"PASS  settings ", "PASS  identity ", "PASS  cloudtrail us-east-1 ", "PASS  dead-letter-queue ",
			"\nAll 4 checks passed.\n",
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("stdout does not contain %q:\n%s", want, stdout)
			}
		}
	})

	doctorTrailCases := []struct {
		name     string
		trails   []doctorTrail
		deny     []string
		regions  string
		status   doctor.Status
		mentions []string
	}{
		{name: "no trail", status: doctor.Fail,
			mentions: []string{"no CloudTrail trail covers us-east-1", "create-trail", "--is-multi-region-trail", "start-logging"}},
		{name: "trail not logging", status: doctor.Fail,
			trails:   []doctorTrail{{name: "audit", home: "us-east-1", multiRegion: true}},
			mentions: []string{"trail audit (home us-east-1, multi-Region): NOT logging", "start-logging --name arn:aws:cloudtrail:us-east-1:111122223333:trail/audit --region us-east-1"}},
		{name: "management events excluded", status: doctor.Fail,
			trails: []doctorTrail{{name: "data-only", home: "us-east-1", logging: true,
				basic: []map[string]any{{"ReadWriteType": "All", "IncludeManagementEvents": false,
					"DataResources": []any{map[string]any{"Type": "AWS::S3::Object", "Values": []any{"arn:aws:s3"}}}}}}},
			mentions: []string{"IncludeManagementEvents false", "put-event-selectors"}},
		{name: "read-only management events", status: doctor.Fail,
			trails: []doctorTrail{{name: "reads", home: "us-east-1", logging: true,
				basic: []map[string]any{{"ReadWriteType": "ReadOnly", "IncludeManagementEvents": true}}}},
			mentions: []string{"ReadWriteType ReadOnly"}},
		{name: "KMS excluded", status: doctor.Fail,
			trails: []doctorTrail{{name: "no-kms", home: "us-east-1", multiRegion: true, logging: true,
				basic: []map[string]any{{"ReadWriteType": "All", "IncludeManagementEvents": true,
					"ExcludeManagementEventSources": []any{"kms.amazonaws.com"}}}}},
			mentions: []string{"excludes kms.amazonaws.com (ExcludeManagementEventSources)"}},
		{name: "write-only management events", status: doctor.Pass,
			trails: []doctorTrail{{name: "writes", home: "us-east-1", logging: true,
				basic: []map[string]any{{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": true}}}},
			mentions: []string{"ReadWriteType WriteOnly"}},
		{name: "advanced selectors record writes", status: doctor.Pass,
			trails: []doctorTrail{{name: "advanced", home: "us-east-1", logging: true, advanced: []map[string]any{{
				"Name": "Management writes", "FieldSelectors": []any{
					map[string]any{"Field": "eventCategory", "Equals": []any{"Management"}},
					map[string]any{"Field": "readOnly", "Equals": []any{"false"}},
				}}}}},
			mentions: []string{`advanced selector "Management writes" records`}},
		{name: "advanced selectors exclude KMS", status: doctor.Fail,
			trails: []doctorTrail{{name: "advanced", home: "us-east-1", logging: true, advanced: []map[string]any{{
				"Name": "Management without KMS", "FieldSelectors": []any{
					map[string]any{"Field": "eventCategory", "Equals": []any{"Management"}},
					map[string]any{"Field": "eventSource", "NotEquals": []any{"kms.amazonaws.com"}},
				}}}}},
			mentions: []string{"eventSource NotEquals [kms.amazonaws.com]"}},
		{name: "multi-Region trail of another region counts", status: doctor.Pass,
			trails:   []doctorTrail{{name: "central", home: "eu-west-1", multiRegion: true, logging: true}},
			mentions: []string{"trail central (home eu-west-1, multi-Region): logging"}},
		{name: "single-Region trail of another region does not count", status: doctor.Fail,
			trails:   []doctorTrail{{name: "local", home: "eu-west-1", logging: true}},
			mentions: []string{"no CloudTrail trail covers us-east-1"}},
		{name: "one good trail among bad ones", status: doctor.Pass,
			trails: []doctorTrail{{name: "stopped", home: "us-east-1", logging: false},
				{name: "good", home: "us-east-1", logging: true}},
			mentions: []string{"trail good logs", "trail stopped (home us-east-1): NOT logging"}},
		{name: "event selectors refused", status: doctor.Fail, deny: []string{"GetEventSelectors"},
			trails:   []doctorTrail{doctorManagementTrail},
			mentions: []string{"cannot read its event selectors", "AccessDeniedException", "Allow cloudtrail:GetEventSelectors"}},
		{name: "trails refused", status: doctor.Fail, deny: []string{"DescribeTrails"},
			mentions: []string{"cannot list the trails of us-east-1", "Allow cloudtrail:DescribeTrails"}},
	}
	for _, tc := range doctorTrailCases {
		t.Run(tc.name, func(t *testing.T) {
			s.ct.set(tc.deny, tc.trails...)
			s.sts.set(doctorOperatorARN, "")
			code, r := runDoctorJSON(t, "--regions", "us-east-1")
			failed := []string{}
			if tc.status == doctor.Fail {
				failed = append(failed, "cloudtrail us-east-1")
			}
			wantDoctorFailures(t, code, r, failed...)
			wantDoctorCheck(t, r, "cloudtrail", "us-east-1", tc.status, tc.mentions...)
		})
	}

	t.Run("shadow trail read by ARN in the region checked", func(t *testing.T) {
		central := doctorTrail{name: "central", home: "eu-west-1", multiRegion: true, logging: true}
		s.ct.set(nil, central)
		if code, r := runDoctorJSON(t, "--regions", "us-east-1"); code != cli.ExitOK {
			t.Fatalf("exit %d, want 0: %+v", code, r)
		}
		var got []string
		for _, c := range s.ct.callLog() {
			id, _ := c.body["Name"].(string)
			if tid, ok := c.body["TrailName"].(string); ok {
				id = tid
			}
			got = append(got, fmt.Sprintf("%s %s %s", c.region, c.op, id))
		}
		want := []string{"us-east-1 DescribeTrails ", "us-east-1 GetTrailStatus " + central.arn(), "us-east-1 GetEventSelectors " + central.arn()}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("calls =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})

	doctorIdentityCases := []struct {
		name     string
		arn      string
		errCode  string
		args     []string
		status   doctor.Status
		mentions []string
	}{
		{name: "wrong account", arn: doctorOperatorARN, args: []string{"--expect-account", "444455556666"}, status: doctor.Fail,
			mentions: []string{"the credentials are for account 111122223333, not the expected 444455556666", "use credentials of account 444455556666"}},
		{name: "wrong role", arn: "arn:aws:sts::111122223333:assumed-role/Admin/jane", args: []string{"--expect-role-arn", doctorOperatorRole},
			status: doctor.Fail, mentions: []string{"is not " + doctorOperatorRole + " or a session of it", "assume " + doctorOperatorRole}},
		{name: "principal does not contain", arn: "arn:aws:iam::111122223333:user/jane", args: []string{"--expect-principal", "KMSAutoTagger"},
			status: doctor.Fail, mentions: []string{`does not contain "KMSAutoTagger"`}},
		{name: "exact principal", arn: "arn:aws:iam::111122223333:user/jane",
			args:   []string{"--expect-account", doctorAccount, "--expect-role-arn", "arn:aws:iam::111122223333:user/jane"},
			status: doctor.Pass, mentions: []string{"account 111122223333 as arn:aws:iam::111122223333:user/jane"}},
		{name: "credentials refused", errCode: "InvalidClientTokenId", status: doctor.Fail,
			mentions: []string{"cannot tell who the credentials are", "InvalidClientTokenId", "AWS_PROFILE"}},
	}
	for _, tc := range doctorIdentityCases {
		t.Run(tc.name, func(t *testing.T) {
			s.ct.set(nil, doctorManagementTrail)
			s.sts.set(tc.arn, tc.errCode)
			code, r := runDoctorJSON(t, tc.args...)
			failed := []string{}
			if tc.status == doctor.Fail {
				failed = append(failed, "identity")
			}
			wantDoctorFailures(t, code, r, failed...)
			wantDoctorCheck(t, r, "identity", "", tc.status, tc.mentions...)
		})
	}

	t.Run("settings invalid", func(t *testing.T) {
		s.ct.set(nil, doctorManagementTrail)
		s.sts.set(doctorOperatorARN, "")
		t.Setenv("MAX_ATTEMPTS", "0")
		code, r := runDoctorJSON(t)
		wantDoctorFailures(t, code, r, "settings")
		wantDoctorCheck(t, r, "settings", "", doctor.Fail, "MAX_ATTEMPTS")
	})

	t.Run("dead-letter queue unset", func(t *testing.T) {
		s.ct.set(nil, doctorManagementTrail)
		s.sts.set(doctorOperatorARN, "")
		t.Setenv("DEAD_LETTER_QUEUE_URL", "")
		code, r := runDoctorJSON(t)
		wantDoctorFailures(t, code, r, "dead-letter-queue")
		wantDoctorCheck(t, r, "dead-letter-queue", "", doctor.Fail, "DEAD_LETTER_QUEUE_URL is not set", "sqs:SendMessage")
	})

	t.Run("dead-letter queue does not exist", func(t *testing.T) {
		s.ct.set(nil, doctorManagementTrail)
		s.sts.set(doctorOperatorARN, "")
		t.Setenv("DEAD_LETTER_QUEUE_URL", strings.TrimSuffix(s.queueURL, "autotagger-dlq")+"no-such-queue")
		code, r := runDoctorJSON(t)
		wantDoctorFailures(t, code, r, "dead-letter-queue")
		wantDoctorCheck(t, r, "dead-letter-queue", "", doctor.Fail, "no-such-queue", "No queue has that URL")
	})

	t.Run("usage errors", func(t *testing.T) {
		for _, args := range [][]string{
			{"--output", "yaml"}, {"--expect-account", "12345"}, {"extra"}, {"--no-such-flag"},
		} {
			code, stdout, stderr := runDoctor(t, args...)
			if code != cli.ExitUsage || stdout != "" || stderr == "" {
				t.Errorf("doctor %v: exit %d, stdout %q, stderr %q; want exit 2, no stdout, an explanation", args, code, stdout, stderr)
			}
		}
		t.Setenv("AWS_REGION", "")
		if code, _, stderr := runDoctor(t); code != cli.ExitUsage || !strings.Contains(stderr, "--regions") {
			t.Errorf("no region: exit %d, stderr %q; want exit 2 and a hint at --regions", code, stderr)
		}
	})

	t.Run("help", func(t *testing.T) {
		code, _, stderr := runDoctor(t, "--help")
		if code != cli.ExitOK {
			t.Errorf("--help exits %d, want 0", code)
		}
		for _, want := range []string{"cloudtrail:DescribeTrails", "cloudtrail:GetTrailStatus", "cloudtrail:GetEventSelectors",
			"sqs:GetQueueAttributes", "sts:GetCallerIdentity", "--expect-account", "--output"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("help does not mention %s:\n%s", want, stderr)
			}
		}
		var top bytes.Buffer
		cli.Run(context.Background(), []string{"--help"}, cli.IO{Stdout: &top, Stderr: io.Discard, Getenv: os.Getenv})
		if !strings.Contains(top.String(), "autotagger doctor ") {
			t.Errorf("autotagger --help does not list doctor:\n%s", top.String())
		}
	})

	// Last: it stops the SQS stand-in.
	t.Run("dead-letter queue unreachable", func(t *testing.T) {
		s.ct.set(nil, doctorManagementTrail)
		s.sts.set(doctorOperatorARN, "")
		if err := s.sqs.Stop(); err != nil {
			t.Fatal(err)
		}
		code, r := runDoctorJSON(t)
		wantDoctorFailures(t, code, r, "dead-letter-queue")
		wantDoctorCheck(t, r, "dead-letter-queue", "", doctor.Fail, "cannot be reached", "connection refused", "check the network")
	})
}
