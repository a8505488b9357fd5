package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kms-autotagger/kms-autotagger/internal/cli"
	"github.com/kms-autotagger/kms-autotagger/internal/doctor"
	"github.com/kms-autotagger/kms-autotagger/internal/doctor/doctortest"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
)

const (
	doctorAccount = "111122223333"
	// doctorOperatorARN is the caller the doctor sees unless a test says
	// otherwise: a session of doctorOperatorRole, assumed in moto.
	doctorOperatorARN  = "arn:aws:sts::111122223333:assumed-role/KMSAutoTaggerOperator/jane"
	doctorOperatorRole = "arn:aws:iam::111122223333:role/ops/KMSAutoTaggerOperator"
	// doctorTrailBucket is the S3 bucket of every trail.
	doctorTrailBucket = "trail-bucket-" + doctorAccount
	// doctorUnknownKey is an access key moto did not issue.
	doctorUnknownKey = "AKIDEXAMPLE"
)

// doctorTrail is one trail of the account, created in moto in its home
// region.
type doctorTrail struct {
	name         string
	home         string
	multiRegion  bool
	organization bool
	logging      bool
	// basic and advanced are the event selectors put on the trail; a trail
	// has one kind or the other. Neither means the default selector (all
	// management events).
	basic    []cttypes.EventSelector
	advanced []cttypes.AdvancedEventSelector
}

func (t doctorTrail) arn() string {
	return fmt.Sprintf("arn:aws:cloudtrail:%s:%s:trail/%s", t.home, doctorAccount, t.name)
}

// doctorDefaultSelector is the event selector CloudTrail gives a new trail:
// all management events. moto gives a new trail none, so doctorStack.set
// puts this one on the trails that are given no other.
var doctorDefaultSelector = []cttypes.EventSelector{{ReadWriteType: cttypes.ReadWriteTypeAll, IncludeManagementEvents: aws.Bool(true),
	DataResources: []cttypes.DataResource{}, ExcludeManagementEventSources: []string{}}}

// doctorCTCall is one CloudTrail request the doctor made.
type doctorCTCall struct {
	region, op string
	body       map[string]any
}

// doctorStack is the doctor's world: moto serving STS, S3 and CloudTrail's
// trail APIs for the account, the SQS stand-in with a dead-letter queue,
// and the environment pointing the real SDK clients at them (set with
// t.Setenv, so its tests are not parallel). The doctor runs as a session
// of doctorOperatorRole.
//
// moto's proxy answers what moto does not: the AccessDeniedException of
// the CloudTrail operations in deny (moto's own IAM enforcement answers
// CloudTrail's JSON protocol with an XML AccessDenied the SDK cannot read,
// code "403"), and the refusal of a key moto did not issue (moto serves
// such a key as its default account 123456789012, arn:aws:sts::...:user/moto):
// STS's InvalidClientTokenId and CloudTrail's UnrecognizedClientException.
type doctorStack struct {
	moto     *localaws.Moto
	sqs      *localaws.SQS
	queueURL string
	operator aws.Credentials

	quotas *doctortest.QuotaServer

	mu     sync.Mutex
	deny   map[string]bool // CloudTrail operations refused with AccessDeniedException
	trails []doctorTrail   // the trails in moto
}

func startDoctorStack(t *testing.T) *doctorStack {
	t.Helper()
	ctx := context.Background()
	m, err := localaws.StartMoto(ctx, localaws.MotoOptions{Account: doctorAccount})
	if err != nil {
		t.Fatalf("starting moto: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	q, err := localaws.StartSQS(ctx, localaws.SQSOptions{Account: doctorAccount})
	if err != nil {
		t.Fatalf("starting SQS stand-in: %v", err)
	}
	t.Cleanup(func() { _ = q.Close() })
	queueURL, err := q.CreateQueue(ctx, "autotagger-dlq")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.CreateBucket(ctx, "us-east-1", doctorTrailBucket); err != nil {
		t.Fatal(err)
	}
	s := &doctorStack{moto: m, sqs: q, queueURL: queueURL}
	s.operator = s.assume(t, doctorOperatorRole, "jane")
	m.SetHook(s.hook)
	// Service Quotas, which moto serves for vpc only: the account's KMS
	// quotas applied, CloudTrail's not listed.
	s.quotas = &doctortest.QuotaServer{}
	s.quotas.Set(map[string][]doctortest.Quota{"kms": {
		{ServiceCode: "kms", QuotaCode: "L-TEST0001", QuotaName: doctor.QuotaNameTagResource, Value: 10, Adjustable: true},
		{ServiceCode: "kms", QuotaCode: "L-TEST0002", QuotaName: doctor.QuotaNameUntagResource, Value: 5, Adjustable: true},
	}}, nil, map[string]string{"ListServiceQuotas/cloudtrail": "NoSuchResourceException", "ListAWSDefaultServiceQuotas/cloudtrail": "NoSuchResourceException"})
	quotaSrv := httptest.NewServer(s.quotas)
	t.Cleanup(quotaSrv.Close)
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_SERVICE_QUOTAS": quotaSrv.URL,
		"AWS_ENDPOINT_URL_CLOUDTRAIL":     m.URL(),
		"AWS_ENDPOINT_URL_STS":            m.URL(),
		"AWS_ENDPOINT_URL_SQS":            q.URL(),
		"AWS_REGION":                      "us-east-1",
		"AWS_DEFAULT_REGION":              "",
		"AWS_PROFILE":                     "",
		"AWS_CONFIG_FILE":                 os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE":     os.DevNull,
		"AWS_EC2_METADATA_DISABLED":       "true",
		"DEAD_LETTER_QUEUE_URL":           queueURL,
	} {
		t.Setenv(k, v)
	}
	s.as(t, s.operator)
	return s
}

// assume returns the credentials of a session of role in moto.
func (s *doctorStack) assume(t *testing.T, role, session string) aws.Credentials {
	t.Helper()
	out, err := sts.NewFromConfig(s.moto.Config("us-east-1")).AssumeRole(context.Background(),
		&sts.AssumeRoleInput{RoleArn: aws.String(role), RoleSessionName: aws.String(session)})
	if err != nil {
		t.Fatalf("AssumeRole %s: %v", role, err)
	}
	c := out.Credentials
	return aws.Credentials{AccessKeyID: aws.ToString(c.AccessKeyId), SecretAccessKey: aws.ToString(c.SecretAccessKey), SessionToken: aws.ToString(c.SessionToken)}
}

// as makes the doctor run with creds, for the rest of the test.
func (s *doctorStack) as(t *testing.T, creds aws.Credentials) {
	t.Setenv("AWS_ACCESS_KEY_ID", creds.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", creds.SecretAccessKey)
	t.Setenv("AWS_SESSION_TOKEN", creds.SessionToken)
}

// hook answers for moto what it does not (see doctorStack).
func (s *doctorStack) hook(w http.ResponseWriter, r *http.Request, call localaws.MotoCall, next http.Handler) {
	if call.Service == "sts" || call.Service == "cloudtrail" {
		if account, err := s.moto.AccountOf(r.Context(), call.AccessKeyID); err == nil && account == localaws.MotoDefaultAccount {
			const msg = "The security token included in the request is invalid."
			if call.Service == "sts" {
				localaws.WriteQueryError(w, http.StatusForbidden, "InvalidClientTokenId", msg)
			} else {
				localaws.WriteKMSError(w, http.StatusBadRequest, "UnrecognizedClientException", msg)
			}
			return
		}
	}
	s.mu.Lock()
	denied := call.Service == "cloudtrail" && s.deny[call.Operation]
	s.mu.Unlock()
	if denied {
		// CloudTrail speaks awsJson1_1, as KMS does.
		localaws.WriteKMSError(w, http.StatusBadRequest, "AccessDeniedException", fmt.Sprintf("User: %s is not authorized to perform: "+
			"cloudtrail:%s because no identity-based policy allows the cloudtrail:%s action", doctorOperatorARN, call.Operation, call.Operation))
		return
	}
	next.ServeHTTP(w, r)
}

// set replaces the account's trails with trails, created in moto, refuses
// the CloudTrail operations in deny, and forgets moto's record of requests.
func (s *doctorStack) set(t *testing.T, deny []string, trails ...doctorTrail) {
	t.Helper()
	ctx := context.Background()
	client := func(region string) *cloudtrail.Client { return cloudtrail.NewFromConfig(s.moto.Config(region)) }
	s.mu.Lock()
	old := s.trails
	s.trails, s.deny = nil, map[string]bool{}
	for _, op := range deny {
		s.deny[op] = true
	}
	s.mu.Unlock()
	for _, tr := range old {
		if _, err := client(tr.home).DeleteTrail(ctx, &cloudtrail.DeleteTrailInput{Name: aws.String(tr.name)}); err != nil {
			t.Fatalf("DeleteTrail %s: %v", tr.name, err)
		}
	}
	for _, tr := range trails {
		c := client(tr.home)
		if _, err := c.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String(tr.name), S3BucketName: aws.String(doctorTrailBucket),
			IsMultiRegionTrail: aws.Bool(tr.multiRegion), IsOrganizationTrail: aws.Bool(tr.organization)}); err != nil {
			t.Fatalf("CreateTrail %s: %v", tr.name, err)
		}
		in := &cloudtrail.PutEventSelectorsInput{TrailName: aws.String(tr.name), EventSelectors: tr.basic, AdvancedEventSelectors: tr.advanced}
		if tr.basic == nil && tr.advanced == nil {
			in.EventSelectors = doctorDefaultSelector
		}
		if _, err := c.PutEventSelectors(ctx, in); err != nil {
			t.Fatalf("PutEventSelectors %s: %v", tr.name, err)
		}
		if tr.logging {
			if _, err := c.StartLogging(ctx, &cloudtrail.StartLoggingInput{Name: aws.String(tr.name)}); err != nil {
				t.Fatalf("StartLogging %s: %v", tr.name, err)
			}
		}
		s.mu.Lock()
		s.trails = append(s.trails, tr)
		s.mu.Unlock()
	}
	s.moto.ResetCalls()
}

// callLog returns the CloudTrail requests moto's proxy received since set.
func (s *doctorStack) callLog(t *testing.T) []doctorCTCall {
	t.Helper()
	var out []doctorCTCall
	for _, c := range s.moto.Calls("cloudtrail", localaws.AnyOperation) {
		call := doctorCTCall{region: c.Region, op: c.Operation}
		if err := json.Unmarshal(c.Body, &call.body); err != nil {
			t.Fatalf("%s request body %q: %v", c.Operation, c.Body, err)
		}
		out = append(out, call)
	}
	return out
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
		s.set(t, nil, doctorManagementTrail)
		code, r := runDoctorJSON(t, "--regions", "us-east-1, eu-west-1", "--expect-account", doctorAccount,
			"--expect-role-arn", doctorOperatorRole, "--expect-principal", "KMSAutoTaggerOperator")
		wantDoctorFailures(t, code, r)
		var names []string
		for _, c := range r.Checks {
			names = append(names, strings.TrimSpace(c.Name+" "+c.Region))
		}
		want := "settings,identity,cloudtrail us-east-1,cloudtrail eu-west-1,dead-letter-queue,quotas us-east-1,quotas eu-west-1"
		if strings.Join(names, ",") != want {
			t.Errorf("checks = %v, want %s", names, want)
		}
		wantDoctorCheck(t, r, "identity", "", doctor.Pass, doctorAccount, doctorOperatorARN)
		wantDoctorCheck(t, r, "cloudtrail", "us-east-1", doctor.Pass, "management-events", "ReadWriteType All")
		wantDoctorCheck(t, r, "cloudtrail", "eu-west-1", doctor.Pass, "home us-east-1, multi-Region, organization")
		wantDoctorCheck(t, r, "dead-letter-queue", "", doctor.Pass, queueARN, "sqs:SendMessage")

		// Every call went to the region checked, shadow trails included.
		regions := map[string]int{}
		for _, c := range s.callLog(t) {
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
		s.set(t, nil, doctorManagementTrail)
		code, stdout, stderr := runDoctor(t)
		if code != cli.ExitOK {
			t.Fatalf("exit %d, want 0\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
		for _, want := range []string{
			"PASS  settings ", "PASS  identity ", "PASS  cloudtrail us-east-1 ", "PASS  dead-letter-queue ",
			"PASS  quotas us-east-1 ", "KMS TagResource request rate 10/s (applied, L-TEST0001)", "LookupEvents 2/s (documented: not in Service Quotas)",
			"\nAll 5 checks passed.\n",
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
				basic: []cttypes.EventSelector{{ReadWriteType: cttypes.ReadWriteTypeAll, IncludeManagementEvents: aws.Bool(false),
					DataResources: []cttypes.DataResource{{Type: aws.String("AWS::S3::Object"), Values: []string{"arn:aws:s3"}}}}}}},
			mentions: []string{"IncludeManagementEvents false", "put-event-selectors"}},
		{name: "read-only management events", status: doctor.Fail,
			trails: []doctorTrail{{name: "reads", home: "us-east-1", logging: true,
				basic: []cttypes.EventSelector{{ReadWriteType: cttypes.ReadWriteTypeReadOnly, IncludeManagementEvents: aws.Bool(true)}}}},
			mentions: []string{"ReadWriteType ReadOnly"}},
		{name: "KMS excluded", status: doctor.Fail,
			trails: []doctorTrail{{name: "no-kms", home: "us-east-1", multiRegion: true, logging: true,
				basic: []cttypes.EventSelector{{ReadWriteType: cttypes.ReadWriteTypeAll, IncludeManagementEvents: aws.Bool(true),
					ExcludeManagementEventSources: []string{"kms.amazonaws.com"}}}}},
			mentions: []string{"excludes kms.amazonaws.com (ExcludeManagementEventSources)"}},
		{name: "write-only management events", status: doctor.Pass,
			trails: []doctorTrail{{name: "writes", home: "us-east-1", logging: true,
				basic: []cttypes.EventSelector{{ReadWriteType: cttypes.ReadWriteTypeWriteOnly, IncludeManagementEvents: aws.Bool(true)}}}},
			mentions: []string{"ReadWriteType WriteOnly"}},
		{name: "advanced selectors record writes", status: doctor.Pass,
			trails: []doctorTrail{{name: "advanced", home: "us-east-1", logging: true, advanced: []cttypes.AdvancedEventSelector{{
				Name: aws.String("Management writes"), FieldSelectors: []cttypes.AdvancedFieldSelector{
					{Field: aws.String("eventCategory"), Equals: []string{"Management"}},
					{Field: aws.String("readOnly"), Equals: []string{"false"}},
				}}}}},
			mentions: []string{`advanced selector "Management writes" records`}},
		{name: "advanced selectors exclude KMS", status: doctor.Fail,
			trails: []doctorTrail{{name: "advanced", home: "us-east-1", logging: true, advanced: []cttypes.AdvancedEventSelector{{
				Name: aws.String("Management without KMS"), FieldSelectors: []cttypes.AdvancedFieldSelector{
					{Field: aws.String("eventCategory"), Equals: []string{"Management"}},
					{Field: aws.String("eventSource"), NotEquals: []string{"kms.amazonaws.com"}},
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
			s.set(t, tc.deny, tc.trails...)
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
		s.set(t, nil, central)
		if code, r := runDoctorJSON(t, "--regions", "us-east-1"); code != cli.ExitOK {
			t.Fatalf("exit %d, want 0: %+v", code, r)
		}
		var got []string
		for _, c := range s.callLog(t) {
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

	operator := func(*testing.T) aws.Credentials { return s.operator }
	admin := func(t *testing.T) aws.Credentials { return s.assume(t, "arn:aws:iam::111122223333:role/Admin", "jane") }
	var janeCreds aws.Credentials
	jane := func(t *testing.T) aws.Credentials {
		if janeCreds.AccessKeyID == "" {
			p, err := s.moto.NewUser(context.Background(), doctorAccount, "jane")
			if err != nil {
				t.Fatal(err)
			}
			janeCreds, _ = p.Retrieve(context.Background())
		}
		return janeCreds
	}
	unknown := func(*testing.T) aws.Credentials {
		return aws.Credentials{AccessKeyID: doctorUnknownKey, SecretAccessKey: "secret"}
	}
	doctorIdentityCases := []struct {
		name     string
		creds    func(*testing.T) aws.Credentials
		args     []string
		status   doctor.Status
		failed   []string // the other checks that fail
		mentions []string
	}{
		{name: "wrong account", creds: operator, args: []string{"--expect-account", "444455556666"}, status: doctor.Fail,
			mentions: []string{"the credentials are for account 111122223333, not the expected 444455556666", "use credentials of account 444455556666"}},
		{name: "wrong role", creds: admin, args: []string{"--expect-role-arn", doctorOperatorRole},
			status: doctor.Fail, mentions: []string{"is not " + doctorOperatorRole + " or a session of it", "assume " + doctorOperatorRole}},
		{name: "principal does not contain", creds: jane, args: []string{"--expect-principal", "KMSAutoTagger"},
			status: doctor.Fail, mentions: []string{`does not contain "KMSAutoTagger"`}},
		{name: "exact principal", creds: jane,
			args:   []string{"--expect-account", doctorAccount, "--expect-role-arn", "arn:aws:iam::111122223333:user/jane"},
			status: doctor.Pass, mentions: []string{"account 111122223333 as arn:aws:iam::111122223333:user/jane"}},
		// A key moto did not issue is refused by CloudTrail too (the SQS
		// stand-in serves any key).
		{name: "credentials refused", creds: unknown, status: doctor.Fail, failed: []string{"cloudtrail us-east-1"},
			mentions: []string{"cannot tell who the credentials are", "InvalidClientTokenId", "AWS_PROFILE"}},
	}
	for _, tc := range doctorIdentityCases {
		t.Run(tc.name, func(t *testing.T) {
			s.set(t, nil, doctorManagementTrail)
			s.as(t, tc.creds(t))
			code, r := runDoctorJSON(t, tc.args...)
			failed := []string{}
			if tc.status == doctor.Fail {
				failed = append(failed, "identity")
			}
			wantDoctorFailures(t, code, r, append(failed, tc.failed...)...)
			wantDoctorCheck(t, r, "identity", "", tc.status, tc.mentions...)
		})
	}

	t.Run("settings invalid", func(t *testing.T) {
		s.set(t, nil, doctorManagementTrail)
		t.Setenv("MAX_ATTEMPTS", "0")
		code, r := runDoctorJSON(t)
		wantDoctorFailures(t, code, r, "settings")
		wantDoctorCheck(t, r, "settings", "", doctor.Fail, "MAX_ATTEMPTS")
	})

	t.Run("dead-letter queue unset", func(t *testing.T) {
		s.set(t, nil, doctorManagementTrail)
		t.Setenv("DEAD_LETTER_QUEUE_URL", "")
		code, r := runDoctorJSON(t)
		wantDoctorFailures(t, code, r, "dead-letter-queue")
		wantDoctorCheck(t, r, "dead-letter-queue", "", doctor.Fail, "DEAD_LETTER_QUEUE_URL is not set", "sqs:SendMessage")
	})

	t.Run("dead-letter queue does not exist", func(t *testing.T) {
		s.set(t, nil, doctorManagementTrail)
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
		s.set(t, nil, doctorManagementTrail)
		if err := s.sqs.Stop(); err != nil {
			t.Fatal(err)
		}
		code, r := runDoctorJSON(t)
		wantDoctorFailures(t, code, r, "dead-letter-queue")
		wantDoctorCheck(t, r, "dead-letter-queue", "", doctor.Fail, "cannot be reached", "connection refused", "check the network")
	})
}

// TestDoctorQuotas: the quotas the doctor reads, set against the sweep's
// rates of the environment; unreadable quotas warn without failing.
func TestDoctorQuotas(t *testing.T) {
	s := startDoctorStack(t)
	s.set(t, nil, doctorManagementTrail)
	t.Setenv("SWEEP_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/"+doctorAccount+"/kms-autotagger-sweep.fifo")
	t.Setenv("SWEEP_TAG_RATE", "3")

	code, r := runDoctorJSON(t, "--regions", "eu-west-1")
	wantDoctorFailures(t, code, r)
	wantDoctorCheck(t, r, "quotas", "eu-west-1", doctor.Pass, "TagResource request rate 10/s (applied", "the sweep takes 3/s (SWEEP_TAG_RATE), leaving 7/s for the live handler")
	for _, q := range s.quotas.Requests() {
		if q.Region != "eu-west-1" {
			t.Errorf("got a Service Quotas request in %s, want eu-west-1: %+v", q.Region, q)
		}
	}

	t.Setenv("SWEEP_TAG_RATE", "10")
	code, r = runDoctorJSON(t, "--regions", "eu-west-1")
	wantDoctorFailures(t, code, r, "quotas eu-west-1")

	t.Setenv("SWEEP_TAG_RATE", "2")
	s.quotas.Set(nil, nil, map[string]string{"ListServiceQuotas/kms": "AccessDeniedException"})
	code, r = runDoctorJSON(t, "--regions", "eu-west-1")
	wantDoctorFailures(t, code, r)
	c := wantDoctorCheck(t, r, "quotas", "eu-west-1", doctor.Warn, "cannot read the KMS quotas", "servicequotas:ListServiceQuotas")
	if r.Warned != 1 || !r.OK || c.Fix == "" {
		t.Errorf("got warned %d, ok %v, fix %q; want one warning, ok, and what to allow", r.Warned, r.OK, c.Fix)
	}
}
