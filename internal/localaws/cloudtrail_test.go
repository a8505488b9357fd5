package localaws_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/smithy-go"

	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
)

// trailRecord returns a CloudTrail record of eventName for keyARN, logged
// in region at time at by an IAM user or an assumed-role session.
func trailRecord(eventID, eventName, region string, at time.Time, keyARN string, assumedRole bool) []byte {
	identity := map[string]any{"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice", "userName": "alice", "accessKeyId": "AKIAALICE"}
	if assumedRole {
		identity = map[string]any{"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/Admin/bob-session", "accessKeyId": "ASIABOB"}
	}
	rec := map[string]any{
		"eventVersion": "1.09", "userIdentity": identity, "eventTime": at.UTC().Format(time.RFC3339),
		"eventSource": "kms.amazonaws.com", "eventName": eventName, "awsRegion": region, "readOnly": false,
		"eventID": eventID, "eventType": "AwsApiCall", "recipientAccountId": "111122223333",
		"resources": []map[string]string{{"accountId": "111122223333", "type": "AWS::KMS::Key", "ARN": keyARN}},
	}
	b, err := json.Marshal(rec)
	if err != nil {
		panic(err)
	}
	return b
}

func startCloudTrail(t *testing.T, opts localaws.CloudTrailOptions) *localaws.CloudTrail {
	t.Helper()
	ct, err := localaws.StartCloudTrail(opts)
	if err != nil {
		t.Fatalf("starting the CloudTrail stand-in: %v", err)
	}
	t.Cleanup(func() { _ = ct.Close() })
	return ct
}

func noCloudTrailRetry(o *cloudtrail.Options) { o.Retryer = aws.NopRetryer{} }

// lookupAll pages through LookupEvents and returns the event IDs in order
// with the number of pages.
func lookupAll(t *testing.T, c *cloudtrail.Client, in *cloudtrail.LookupEventsInput) ([]string, int) {
	t.Helper()
	var ids []string
	pages := 0
	p := cloudtrail.NewLookupEventsPaginator(c, in)
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("LookupEvents page %d: %v", pages+1, err)
		}
		pages++
		for _, e := range out.Events {
			ids = append(ids, aws.ToString(e.EventId))
		}
	}
	return ids, pages
}

func TestCloudTrailLookupEvents(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	ct := startCloudTrail(t, localaws.CloudTrailOptions{Regions: []string{"us-east-1", "eu-west-1"}, LookupEventsRate: -1})
	keyA := "arn:aws:kms:us-east-1:111122223333:key/aaaaaaaa-0000-4000-8000-000000000001"
	keyB := "arn:aws:kms:us-east-1:111122223333:key/aaaaaaaa-0000-4000-8000-000000000002"
	keyEU := "arn:aws:kms:eu-west-1:111122223333:key/bbbbbbbb-0000-4000-8000-000000000001"
	add := func(region string, rec []byte) {
		t.Helper()
		if err := ct.AddEvent(region, rec); err != nil {
			t.Fatal(err)
		}
	}
	add("us-east-1", trailRecord("e1", "CreateKey", "us-east-1", now.Add(-5*time.Hour), keyA, false))
	add("us-east-1", trailRecord("e2", "CreateKey", "us-east-1", now.Add(-1*time.Hour), keyB, true))
	add("us-east-1", trailRecord("e3", "ReplicateKey", "us-east-1", now.Add(-3*time.Hour), keyA, false))
	add("us-east-1", trailRecord("e4", "CreateKey", "us-east-1", now.Add(-2*time.Hour), keyA, false))
	add("us-east-1", trailRecord("e-old", "CreateKey", "us-east-1", now.Add(-91*24*time.Hour), keyA, false))
	add("eu-west-1", trailRecord("e5", "CreateKey", "eu-west-1", now.Add(-4*time.Hour), keyEU, false))

	attr := func(k cttypes.LookupAttributeKey, v string) []cttypes.LookupAttribute {
		return []cttypes.LookupAttribute{{AttributeKey: k, AttributeValue: aws.String(v)}}
	}
	tests := []struct {
		name      string
		region    string
		in        cloudtrail.LookupEventsInput
		wantIDs   []string
		wantPages int
	}{
		{"everything newest first, without the event older than 90 days", "us-east-1", cloudtrail.LookupEventsInput{}, []string{"e2", "e4", "e3", "e1"}, 1},
		{"pages of two", "us-east-1", cloudtrail.LookupEventsInput{MaxResults: aws.Int32(2)}, []string{"e2", "e4", "e3", "e1"}, 2},
		{"pages of one", "us-east-1", cloudtrail.LookupEventsInput{MaxResults: aws.Int32(1), LookupAttributes: attr(cttypes.LookupAttributeKeyEventName, "CreateKey")}, []string{"e2", "e4", "e1"}, 3},
		{"event name", "us-east-1", cloudtrail.LookupEventsInput{LookupAttributes: attr(cttypes.LookupAttributeKeyEventName, "ReplicateKey")}, []string{"e3"}, 1},
		{"resource name", "us-east-1", cloudtrail.LookupEventsInput{LookupAttributes: attr(cttypes.LookupAttributeKeyResourceName, keyB)}, []string{"e2"}, 1},
		{"resource type", "us-east-1", cloudtrail.LookupEventsInput{LookupAttributes: attr(cttypes.LookupAttributeKeyResourceType, "AWS::KMS::Key")}, []string{"e2", "e4", "e3", "e1"}, 1},
		{"event source", "us-east-1", cloudtrail.LookupEventsInput{LookupAttributes: attr(cttypes.LookupAttributeKeyEventSource, "kms.amazonaws.com")}, []string{"e2", "e4", "e3", "e1"}, 1},
		{"other event source", "us-east-1", cloudtrail.LookupEventsInput{LookupAttributes: attr(cttypes.LookupAttributeKeyEventSource, "iam.amazonaws.com")}, nil, 1},
		{"user name of an IAM user", "us-east-1", cloudtrail.LookupEventsInput{LookupAttributes: attr(cttypes.LookupAttributeKeyUsername, "alice")}, []string{"e4", "e3", "e1"}, 1},
		{"user name of a role session", "us-east-1", cloudtrail.LookupEventsInput{LookupAttributes: attr(cttypes.LookupAttributeKeyUsername, "bob-session")}, []string{"e2"}, 1},
		{"access key", "us-east-1", cloudtrail.LookupEventsInput{LookupAttributes: attr(cttypes.LookupAttributeKeyAccessKeyId, "ASIABOB")}, []string{"e2"}, 1},
		{"event id", "us-east-1", cloudtrail.LookupEventsInput{LookupAttributes: attr(cttypes.LookupAttributeKeyEventId, "e3")}, []string{"e3"}, 1},
		{"read only", "us-east-1", cloudtrail.LookupEventsInput{LookupAttributes: attr(cttypes.LookupAttributeKeyReadOnly, "true")}, nil, 1},
		{"time range, both ends included", "us-east-1", cloudtrail.LookupEventsInput{StartTime: aws.Time(now.Add(-3 * time.Hour)), EndTime: aws.Time(now.Add(-2 * time.Hour))}, []string{"e4", "e3"}, 1},
		{"start time only", "us-east-1", cloudtrail.LookupEventsInput{StartTime: aws.Time(now.Add(-150 * time.Minute))}, []string{"e2", "e4"}, 1},
		{"other region", "eu-west-1", cloudtrail.LookupEventsInput{}, []string{"e5"}, 1},
		{"insight events", "us-east-1", cloudtrail.LookupEventsInput{EventCategory: cttypes.EventCategoryInsight}, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			ids, pages := lookupAll(t, ct.Client(tt.region, noCloudTrailRetry), &in)
			if !slices.Equal(ids, tt.wantIDs) {
				t.Errorf("got events %v, want %v", ids, tt.wantIDs)
			}
			if pages != tt.wantPages {
				t.Errorf("got %d pages, want %d", pages, tt.wantPages)
			}
		})
	}

	t.Run("event fields", func(t *testing.T) {
		out, err := ct.Client("us-east-1", noCloudTrailRetry).LookupEvents(context.Background(), &cloudtrail.LookupEventsInput{
			LookupAttributes: attr(cttypes.LookupAttributeKeyEventId, "e2"),
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Events) != 1 {
			t.Fatalf("got %d events, want 1", len(out.Events))
		}
		e := out.Events[0]
		want := trailRecord("e2", "CreateKey", "us-east-1", now.Add(-1*time.Hour), keyB, true)
		if got := aws.ToString(e.CloudTrailEvent); got != string(want) {
			t.Errorf("got CloudTrailEvent %s, want the record %s", got, want)
		}
		if got := aws.ToTime(e.EventTime); !got.Equal(now.Add(-1 * time.Hour)) {
			t.Errorf("got EventTime %v, want %v", got, now.Add(-1*time.Hour))
		}
		for _, f := range []struct{ name, got, want string }{
			{"EventName", aws.ToString(e.EventName), "CreateKey"},
			{"EventSource", aws.ToString(e.EventSource), "kms.amazonaws.com"},
			{"Username", aws.ToString(e.Username), "bob-session"},
			{"AccessKeyId", aws.ToString(e.AccessKeyId), "ASIABOB"},
			{"ReadOnly", aws.ToString(e.ReadOnly), "false"},
		} {
			if f.got != f.want {
				t.Errorf("got %s %q, want %q", f.name, f.got, f.want)
			}
		}
		if len(e.Resources) != 1 || aws.ToString(e.Resources[0].ResourceName) != keyB || aws.ToString(e.Resources[0].ResourceType) != "AWS::KMS::Key" {
			t.Errorf("got Resources %+v, want one AWS::KMS::Key named %s", e.Resources, keyB)
		}
	})

	t.Run("an event added between pages is served", func(t *testing.T) {
		c := ct.Client("eu-west-1", noCloudTrailRetry)
		if err := ct.AddEvent("eu-west-1", trailRecord("e6", "CreateKey", "eu-west-1", now.Add(-6*time.Hour), keyEU, false)); err != nil {
			t.Fatal(err)
		}
		ids, _ := lookupAll(t, c, &cloudtrail.LookupEventsInput{MaxResults: aws.Int32(1)})
		if want := []string{"e5", "e6"}; !slices.Equal(ids, want) {
			t.Errorf("got events %v, want %v", ids, want)
		}
	})
}

func apiCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

func TestCloudTrailErrors(t *testing.T) {
	ct := startCloudTrail(t, localaws.CloudTrailOptions{Regions: []string{"us-east-1"}, LookupEventsRate: -1})
	now := time.Now().UTC()
	for i := range 3 {
		if err := ct.AddEvent("us-east-1", trailRecord(fmt.Sprintf("e%d", i), "CreateKey", "us-east-1", now.Add(-time.Duration(i)*time.Minute), "arn:aws:kms:us-east-1:111122223333:key/k", false)); err != nil {
			t.Fatal(err)
		}
	}
	c := ct.Client("us-east-1", noCloudTrailRetry)
	ctx := context.Background()
	name := func(v string) cttypes.LookupAttribute {
		return cttypes.LookupAttribute{AttributeKey: cttypes.LookupAttributeKeyEventName, AttributeValue: aws.String(v)}
	}
	first, err := c.LookupEvents(ctx, &cloudtrail.LookupEventsInput{MaxResults: aws.Int32(1), LookupAttributes: []cttypes.LookupAttribute{name("CreateKey")}})
	if err != nil || first.NextToken == nil {
		t.Fatalf("got %v, %v; want a first page with a NextToken", first, err)
	}
	tests := []struct {
		name     string
		region   string
		in       cloudtrail.LookupEventsInput
		wantCode string
	}{
		{"two lookup attributes", "us-east-1", cloudtrail.LookupEventsInput{LookupAttributes: []cttypes.LookupAttribute{name("CreateKey"), name("ReplicateKey")}}, "InvalidLookupAttributesException"},
		{"unknown attribute key", "us-east-1", cloudtrail.LookupEventsInput{LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: "Colour", AttributeValue: aws.String("blue")}}}, "InvalidLookupAttributesException"},
		{"MaxResults over 50", "us-east-1", cloudtrail.LookupEventsInput{MaxResults: aws.Int32(51)}, "InvalidMaxResultsException"},
		{"MaxResults zero", "us-east-1", cloudtrail.LookupEventsInput{MaxResults: aws.Int32(0)}, "InvalidMaxResultsException"},
		{"start after end", "us-east-1", cloudtrail.LookupEventsInput{StartTime: aws.Time(now), EndTime: aws.Time(now.Add(-time.Hour))}, "InvalidTimeRangeException"},
		{"unknown event category", "us-east-1", cloudtrail.LookupEventsInput{EventCategory: "management"}, "InvalidEventCategoryException"},
		{"garbage token", "us-east-1", cloudtrail.LookupEventsInput{NextToken: aws.String("not a token")}, "InvalidNextTokenException"},
		{"token of another query", "us-east-1", cloudtrail.LookupEventsInput{NextToken: first.NextToken, LookupAttributes: []cttypes.LookupAttribute{name("ReplicateKey")}}, "InvalidNextTokenException"},
		{"region not served", "eu-west-1", cloudtrail.LookupEventsInput{}, "UnrecognizedClientException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			_, err := ct.Client(tt.region, noCloudTrailRetry).LookupEvents(ctx, &in)
			if got := apiCode(err); got != tt.wantCode {
				t.Errorf("got error %v (code %q), want code %s", err, got, tt.wantCode)
			}
		})
	}

	t.Run("same query, other MaxResults, continues", func(t *testing.T) {
		out, err := c.LookupEvents(ctx, &cloudtrail.LookupEventsInput{NextToken: first.NextToken, MaxResults: aws.Int32(5), LookupAttributes: []cttypes.LookupAttribute{name("CreateKey")}})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(out.Events); got != 2 {
			t.Errorf("got %d events on the second page, want 2", got)
		}
	})

	t.Run("LookupEvents only", func(t *testing.T) {
		_, err := c.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{})
		if got := apiCode(err); got != "UnknownOperationException" {
			t.Fatalf("got error %v (code %q), want UnknownOperationException", err, got)
		}
	})

	t.Run("AddEvent rejects", func(t *testing.T) {
		for _, tc := range []struct {
			name, region string
			record       []byte
		}{
			{"not JSON", "us-east-1", []byte("nope")},
			{"no eventID", "us-east-1", []byte(`{"eventTime":"2024-01-01T00:00:00Z"}`)},
			{"bad eventTime", "us-east-1", []byte(`{"eventID":"x","eventTime":"yesterday"}`)},
			{"another region's record", "eu-west-1", trailRecord("x", "CreateKey", "us-east-1", now, "arn:aws:kms:us-east-1:111122223333:key/k", false)},
			{"a duplicate eventID", "us-east-1", trailRecord("e0", "CreateKey", "us-east-1", now, "arn:aws:kms:us-east-1:111122223333:key/k", false)},
		} {
			if err := ct.AddEvent(tc.region, tc.record); err == nil {
				t.Errorf("%s: got no error, want one", tc.name)
			}
		}
	})
}

func TestCloudTrailWireProtocol(t *testing.T) {
	ct, err := localaws.NewCloudTrail(localaws.CloudTrailOptions{LookupEventsRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ct)
	defer srv.Close()
	if err := ct.AddEvent("ap-south-1", trailRecord("e1", "CreateKey", "ap-south-1", time.Now(), "arn:aws:kms:ap-south-1:111122223333:key/k", false)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		target     string
		region     string
		wantStatus int
		wantType   string
	}{
		{"SDK target", localaws.CloudTrailTarget("LookupEvents"), "ap-south-1", http.StatusOK, ""},
		{"qualified target of the CLI", localaws.CloudTrailQualifiedTargetPrefix + ".LookupEvents", "ap-south-1", http.StatusOK, ""},
		{"KMS target", localaws.KMSTarget("ListKeys"), "ap-south-1", http.StatusBadRequest, "UnknownOperationException"},
		{"no credential scope", localaws.CloudTrailTarget("LookupEvents"), "", http.StatusBadRequest, "UnrecognizedClientException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := signedRequest(t, srv.URL, tt.region, tt.target, `{"MaxResults":5}`)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("got status %d (%s), want %d", resp.StatusCode, body, tt.wantStatus)
			}
			if got := resp.Header.Get("Content-Type"); got != "application/x-amz-json-1.1" {
				t.Errorf("got Content-Type %q, want application/x-amz-json-1.1", got)
			}
			if tt.wantType != "" {
				var e kmsErrorBody
				if err := json.Unmarshal(body, &e); err != nil || e.Type != tt.wantType {
					t.Errorf("got body %s, want __type %s", body, tt.wantType)
				}
				return
			}
			var out struct {
				Events []struct {
					EventID   string  `json:"EventId"`
					EventTime float64 `json:"EventTime"`
				} `json:"Events"`
			}
			if err := json.Unmarshal(body, &out); err != nil || len(out.Events) != 1 || out.Events[0].EventID != "e1" || out.Events[0].EventTime < 1e9 {
				t.Errorf("got body %s, want event e1 with EventTime in epoch seconds", body)
			}
		})
	}
	if got := ct.Count("ap-south-1", "LookupEvents"); got != 2 {
		t.Errorf("got %d LookupEvents counted in ap-south-1, want 2", got)
	}
	if got := ct.Count(localaws.AnyRegion, localaws.AnyOperation); got != 4 {
		t.Errorf("got %d requests counted, want 4", got)
	}
}

func TestCloudTrailThrottling(t *testing.T) {
	const limit = 10.0
	ct := startCloudTrail(t, localaws.CloudTrailOptions{LookupEventsRate: limit, LookupEventsBurst: 1})
	ctx := context.Background()

	t.Run("over the rate is ThrottlingException", func(t *testing.T) {
		c := ct.Client("us-east-1", noCloudTrailRetry)
		var codes []string
		for range 3 {
			_, err := c.LookupEvents(ctx, &cloudtrail.LookupEventsInput{})
			codes = append(codes, apiCode(err))
		}
		if want := []string{"", "ThrottlingException", "ThrottlingException"}; !slices.Equal(codes, want) {
			t.Errorf("got error codes %q for three requests at once, want %q", codes, want)
		}
		reqs := ct.Requests("us-east-1", "LookupEvents")
		if len(reqs) != 3 || reqs[1].Status != http.StatusBadRequest || reqs[1].ErrorCode != "ThrottlingException" || reqs[0].ErrorCode != "" {
			t.Errorf("got requests %+v, want one answered and two throttled with 400", reqs)
		}
		// Each region has its own quota.
		if _, err := ct.Client("eu-west-1", noCloudTrailRetry).LookupEvents(ctx, &cloudtrail.LookupEventsInput{}); err != nil {
			t.Errorf("first request in eu-west-1: got %v, want no error", err)
		}
	})

	t.Run("the SDK retries a throttled request", func(t *testing.T) {
		ct.ResetRequests()
		time.Sleep(200 * time.Millisecond) // refill the bucket
		// The standard retryer, with a backoff of up to 150 ms against the
		// 100 ms the bucket takes to refill. Its backoff is jittered
		// (uniform up to the maximum), so four retries wait less than
		// 100 ms in all about once in 120 requests; ten attempts make
		// running out of them vanishingly rare.
		c := ct.Client("us-east-1", func(o *cloudtrail.Options) {
			o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) { so.MaxAttempts, so.MaxBackoff = 10, 150*time.Millisecond })
		})
		for i := range 4 {
			if _, err := c.LookupEvents(ctx, &cloudtrail.LookupEventsInput{}); err != nil {
				t.Fatalf("request %d: got %v, want the SDK to retry until it succeeds", i, err)
			}
		}
		reqs := ct.Requests("us-east-1", "LookupEvents")
		throttled := 0
		for _, r := range reqs {
			if r.ErrorCode == "ThrottlingException" {
				throttled++
			}
		}
		if len(reqs)-throttled != 4 {
			t.Errorf("got %d answered requests, want 4", len(reqs)-throttled)
		}
		t.Logf("%d requests, %d throttled and retried by the SDK", len(reqs), throttled)
	})

	t.Run("intercept injects throttling", func(t *testing.T) {
		ct.ResetRequests()
		ct.SetIntercept(localaws.FailFirst("us-west-2", localaws.CloudTrailTarget("LookupEvents"), 1, localaws.ThrottlingFault))
		defer ct.SetIntercept(nil)
		_, err := ct.Client("us-west-2", noCloudTrailRetry).LookupEvents(ctx, &cloudtrail.LookupEventsInput{})
		if got := apiCode(err); got != "ThrottlingException" {
			t.Errorf("got %v, want the injected ThrottlingException", err)
		}
		if reqs := ct.Requests("us-west-2", AnyOp); len(reqs) != 1 || reqs[0].ErrorCode != "ThrottlingException" {
			t.Errorf("got requests %+v, want the intercepted one recorded as throttled", reqs)
		}
	})
}

// AnyOp is localaws.AnyOperation, shorter.
const AnyOp = localaws.AnyOperation

func TestNewCloudTrailRejectsBadOptions(t *testing.T) {
	for _, o := range []localaws.CloudTrailOptions{
		{Regions: []string{"moon-1"}},
		{Regions: []string{"us-east-1", "us-east-1"}},
		{LookupEventsBurst: -1},
	} {
		if _, err := localaws.NewCloudTrail(o); err == nil {
			t.Errorf("NewCloudTrail(%+v): got no error, want one", o)
		}
	}
}
