package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kms-autotagger/kms-autotagger/internal/backfill"
	"github.com/kms-autotagger/kms-autotagger/internal/cli"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws/localawstest"
)

// backfillRecord is alice's CreateKey of keyARN at the time given.
func backfillRecord(eventID, keyARN string, at time.Time) []byte {
	parts := strings.Split(keyARN, ":")
	region, keyID := parts[3], keyARN[strings.LastIndex(keyARN, "/")+1:]
	b, err := json.Marshal(map[string]any{
		"eventVersion": "1.09",
		"userIdentity": map[string]any{"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice", "accountId": "111122223333", "userName": "alice"},
		"eventTime":    at.UTC().Format(time.RFC3339), "eventSource": "kms.amazonaws.com", "eventName": "CreateKey", "awsRegion": region,
		"requestParameters": map[string]any{"keySpec": "SYMMETRIC_DEFAULT"},
		"responseElements": map[string]any{"keyMetadata": map[string]any{
			"AWSAccountId": "111122223333", "keyId": keyID, "arn": keyARN, "keyState": "Enabled", "keyManager": "CUSTOMER", "origin": "AWS_KMS",
		}},
		"eventID": eventID, "eventType": "AwsApiCall", "recipientAccountId": "111122223333",
		"resources": []map[string]string{{"accountId": "111122223333", "type": "AWS::KMS::Key", "ARN": keyARN}},
	})
	if err != nil {
		panic(err)
	}
	return b
}

// backfillJSON is the document backfill --output json writes.
type backfillJSON struct {
	Summary backfill.Summary `json:"summary"`
	Rows    []backfill.Row   `json:"rows"`
	Error   string           `json:"error"`
}

func runBackfillCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = cli.Run(context.Background(), append([]string{"backfill"}, args...), cli.IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut, Getenv: os.Getenv})
	return code, out.String(), errOut.String()
}

func decodeBackfillJSON(t *testing.T, stdout string) backfillJSON {
	t.Helper()
	var doc backfillJSON
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, stdout)
	}
	return doc
}

// accountStandIn serves account:ListRegions (restJson1, POST /listRegions)
// in two pages, recording the request bodies.
type accountStandIn struct {
	mu     sync.Mutex
	bodies []string
}

func (a *accountStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var in struct {
		NextToken               string   `json:"NextToken"`
		RegionOptStatusContains []string `json:"RegionOptStatusContains"`
	}
	var body bytes.Buffer
	_, _ = body.ReadFrom(r.Body)
	a.mu.Lock()
	a.bodies = append(a.bodies, body.String())
	a.mu.Unlock()
	_ = json.Unmarshal(body.Bytes(), &in)
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodPost || r.URL.Path != "/listRegions" {
		w.Header().Set("X-Amzn-ErrorType", "ValidationException")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"message":"unexpected ` + r.Method + ` ` + r.URL.Path + `"}`))
		return
	}
	if in.NextToken == "" {
		_, _ = w.Write([]byte(`{"Regions":[{"RegionName":"eu-west-1","RegionOptStatus":"ENABLED_BY_DEFAULT"}],"NextToken":"page2"}`))
		return
	}
	_, _ = w.Write([]byte(`{"Regions":[{"RegionName":"us-east-1","RegionOptStatus":"ENABLED_BY_DEFAULT"}]}`))
}

func TestBackfillCommand(t *testing.T) {
	acct := &accountStandIn{}
	acctSrv := httptest.NewServer(acct)
	defer acctSrv.Close()
	// moto answers sts:GetCallerIdentity: the caller's account names the
	// partitions.
	m, err := localaws.StartMoto(context.Background(), localaws.MotoOptions{Account: "111122223333", SingleAccount: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	s := localawstest.Start(t, localawstest.Options{
		NoSQS:      true,
		CloudTrail: &localaws.CloudTrailOptions{LookupEventsRate: 20},
		Env: map[string]string{"AWS_ENDPOINT_URL_ACCOUNT": acctSrv.URL, "AWS_ENDPOINT_URL_STS": m.URL(), "MAX_BACKOFF": "10ms", "LOG_LEVEL": "WARN",
			"MEMBER_ROLE_NAME": "", "TRAIL_ARCHIVE_BUCKET": ""},
	})
	k, ct := s.KMS, s.CloudTrail
	at := time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Second)
	keys := map[string]string{}
	for _, region := range []string{"us-east-1", "eu-west-1"} {
		keys[region] = s.CreateKey(t, region)
		if err := ct.AddEvent(region, backfillRecord("ev-"+region, keys[region], at)); err != nil {
			t.Fatal(err)
		}
	}
	rates := []string{"--lookup-rate", "20", "--tag-rate", "50"}

	t.Run("dry run as JSON", func(t *testing.T) {
		code, stdout, stderr := runBackfillCLI(t, append(rates, "--dry-run", "--output", "json", "--regions", "us-east-1, eu-west-1")...)
		if code != cli.ExitOK {
			t.Fatalf("got exit %d, want 0; stderr:\n%s", code, stderr)
		}
		doc := decodeBackfillJSON(t, stdout)
		if !doc.Summary.DryRun || doc.Summary.Actions[backfill.ActionWouldTag] != 2 || len(doc.Rows) != 2 {
			t.Errorf("got %+v, want a dry run with 2 keys to tag", doc)
		}
		if !slices.Equal(doc.Summary.Accounts, []string{"111122223333"}) || doc.Rows[0].Account != "111122223333" {
			t.Errorf("got accounts %v and rows %+v, want the caller's account, 111122223333", doc.Summary.Accounts, doc.Rows)
		}
		if got := k.Router().Count(localaws.AnyRegion, localaws.KMSTarget("TagResource")); got != 0 {
			t.Errorf("dry run: got %d TagResource, want 0", got)
		}
		if got := s.Tags(t, keys["us-east-1"]); len(got) != 0 {
			t.Errorf("dry run: key got tags %v, want none", got)
		}
	})

	t.Run("default region, --since a duration", func(t *testing.T) {
		before := time.Now()
		code, stdout, stderr := runBackfillCLI(t, append(rates, "--dry-run", "--output", "json", "--since", "720h")...)
		if code != cli.ExitOK {
			t.Fatalf("got exit %d, want 0; stderr:\n%s", code, stderr)
		}
		doc := decodeBackfillJSON(t, stdout)
		if !slices.Equal(doc.Summary.Regions, []string{"us-east-1"}) {
			t.Errorf("got regions %v, want the configured us-east-1", doc.Summary.Regions)
		}
		if want := before.Add(-720 * time.Hour); doc.Summary.Since.Sub(want).Abs() > 5*time.Second {
			t.Errorf("got since %v, want about %v", doc.Summary.Since, want)
		}
	})

	t.Run("a date older than the history is the 90 days it holds", func(t *testing.T) {
		code, stdout, stderr := runBackfillCLI(t, append(rates, "--dry-run", "--output", "json", "--since", "2020-01-02")...)
		if code != cli.ExitOK {
			t.Fatalf("got exit %d, want 0; stderr:\n%s", code, stderr)
		}
		s := decodeBackfillJSON(t, stdout).Summary
		if !s.Since.Equal(s.Until.Add(-backfill.MaxHistory)) {
			t.Errorf("got since %v until %v, want 90 days", s.Since, s.Until)
		}
	})

	t.Run("all regions from account:ListRegions", func(t *testing.T) {
		code, stdout, stderr := runBackfillCLI(t, append(rates, "--dry-run", "--output", "json", "--regions", "all")...)
		if code != cli.ExitOK {
			t.Fatalf("got exit %d, want 0; stderr:\n%s", code, stderr)
		}
		if got := decodeBackfillJSON(t, stdout).Summary.Regions; !slices.Equal(got, []string{"eu-west-1", "us-east-1"}) {
			t.Errorf("got regions %v, want both pages of ListRegions", got)
		}
		acct.mu.Lock()
		defer acct.mu.Unlock()
		if len(acct.bodies) != 2 || !strings.Contains(acct.bodies[0], `"ENABLED"`) || !strings.Contains(acct.bodies[0], `"ENABLED_BY_DEFAULT"`) {
			t.Errorf("got ListRegions requests %q, want two asking for ENABLED and ENABLED_BY_DEFAULT", acct.bodies)
		}
	})

	t.Run("tagging, as a table", func(t *testing.T) {
		code, stdout, stderr := runBackfillCLI(t, append(rates, "--regions", "us-east-1,eu-west-1")...)
		if code != cli.ExitOK {
			t.Fatalf("got exit %d, want 0; stderr:\n%s", code, stderr)
		}
		t.Logf("the table:\n%s", stdout)
		for _, want := range []string{"REGION", "ACTION", "tagged", "CreationEventId=ev-eu-west-1", "2 keys: 2 tagged."} {
			if !strings.Contains(stdout, want) {
				t.Errorf("table lacks %q:\n%s", want, stdout)
			}
		}
		for region, key := range keys {
			if got := s.Tags(t, key); got["CreationEventId"] != "ev-"+region || got["CreatedBy"] != "arn:aws:iam::111122223333:user/alice" {
				t.Errorf("key %s got tags %v, want its governance tags", key, got)
			}
		}
		// Again: nothing to do.
		code, stdout, _ = runBackfillCLI(t, append(rates, "--regions", "us-east-1,eu-west-1")...)
		if code != cli.ExitOK || !strings.Contains(stdout, "2 keys: 2 up-to-date.") {
			t.Errorf("second run: got exit %d and\n%s\nwant 0 and 2 keys up to date", code, stdout)
		}
	})

	t.Run("a malformed event exits 1", func(t *testing.T) {
		bad := `{"eventVersion":"1.09","eventSource":"kms.amazonaws.com","eventName":"CreateKey","awsRegion":"eu-west-1","eventID":"ev-bad","eventTime":"` +
			at.Format(time.RFC3339) + `","responseElements":{"keyMetadata":{}}}`
		if err := ct.AddEvent("eu-west-1", []byte(bad)); err != nil {
			t.Fatal(err)
		}
		code, stdout, _ := runBackfillCLI(t, append(rates, "--regions", "eu-west-1")...)
		if code != cli.ExitFailure || !strings.Contains(stdout, "MalformedEvent (permanent)") {
			t.Errorf("got exit %d and\n%s\nwant 1 and the malformed event reported", code, stdout)
		}
	})

	t.Run("--tag-unknown without a CreatedAt tag is a usage error", func(t *testing.T) {
		t.Setenv("TAG_NAME_CREATED_AT", "-")
		code, _, stderr := runBackfillCLI(t, "--tag-unknown")
		if code != cli.ExitUsage || !strings.Contains(stderr, "CreatedAt") {
			t.Errorf("got exit %d, stderr %q; want 2 naming CreatedAt", code, stderr)
		}
	})
}

func TestBackfillUsage(t *testing.T) {
	for _, tt := range []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"help", []string{"--help"}, cli.ExitOK, "Tags the KMS keys created before"},
		{"bad output", []string{"--output", "yaml"}, cli.ExitUsage, "--output"},
		{"bad since", []string{"--since", "last week"}, cli.ExitUsage, "--since"},
		{"since in the future", []string{"--since", "2999-01-01"}, cli.ExitUsage, "not in the past"},
		{"negative duration", []string{"--since", "-5h"}, cli.ExitUsage, "positive"},
		{"extra argument", []string{"now"}, cli.ExitUsage, "unexpected argument"},
		{"unknown flag", []string{"--everything"}, cli.ExitUsage, "flag provided but not defined"},
		{"zero read rate", []string{"--read-rate", "0"}, cli.ExitUsage, "--read-rate 0 is not a positive number of requests per second"},
		{"negative lookup rate", []string{"--lookup-rate", "-1"}, cli.ExitUsage, "--lookup-rate -1 is not a positive number of requests per second"},
		{"bad member role path", []string{"--member-role-name", "r", "--member-role-path", "a/b"}, cli.ExitUsage, "autotagger backfill: configuration: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runBackfillCLI(t, tt.args...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("got exit %d, stderr:\n%s\nwant %d and %q", code, stderr, tt.wantCode, tt.wantErr)
			}
		})
	}
}
