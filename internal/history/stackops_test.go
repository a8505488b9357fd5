package history_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"

	"github.com/kms-autotagger/kms-autotagger/internal/history"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
)

const (
	paymentsStack = "arn:aws:cloudformation:eu-west-1:111122223333:stack/payments/5b0c7e2a-3951-11ef-8a4c-0a1b2c3d4e5f"
	// formerPayments is an earlier stack of the same name, deleted.
	formerPayments = "arn:aws:cloudformation:eu-west-1:111122223333:stack/payments/0a9b8c7d-1111-11ee-8a4c-0a1b2c3d4e5f"
)

// stackHistory is the CloudTrail stand-in, served from httptest, with the
// stack operation fixtures of the events package as edited.
type stackHistory struct {
	ct     *localaws.CloudTrail
	client *cloudtrail.Client
}

func newStackHistory(t *testing.T) *stackHistory {
	t.Helper()
	// The fixtures' time, within the history's 90 days.
	clock := func() time.Time { return time.Date(2024, 7, 3, 9, 0, 0, 0, time.UTC) }
	ct, err := localaws.NewCloudTrail(localaws.CloudTrailOptions{LookupEventsRate: -1, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ct)
	t.Cleanup(srv.Close)
	client := cloudtrail.New(cloudtrail.Options{
		Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
	})
	return &stackHistory{ct: ct, client: client}
}

// add records the fixture's operation at at, with eventID, edited by edit
// (the record as a JSON object).
func (h *stackHistory) add(t *testing.T, fixture, eventID string, at time.Time, edit func(map[string]any)) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "events", "testdata", fixture+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	rec["eventID"], rec["eventTime"] = eventID, at.UTC().Format(time.RFC3339)
	if edit != nil {
		edit(rec)
	}
	b, _ := json.Marshal(rec)
	if err := h.ct.AddEvent("eu-west-1", b); err != nil {
		t.Fatal(err)
	}
}

// byName makes the record's resource the stack's name, as a call naming
// the stack by its name may be recorded.
func byName(rec map[string]any) {
	rec["resources"] = []any{map[string]any{"accountId": "111122223333", "type": "AWS::CloudFormation::Stack", "ARN": "payments"}}
}

func TestFindStackOperation(t *testing.T) {
	created := time.Date(2024, 7, 3, 8, 20, 14, 0, time.UTC)
	tests := []struct {
		name    string
		history func(t *testing.T, h *stackHistory)
		want    string // the event id found; "" for none
	}{
		{"CreateStack by the stack's ARN", func(t *testing.T, h *stackHistory) {
			h.add(t, "stackop_createstack_sso", "op-create", created.Add(-time.Minute), nil)
		}, "op-create"},
		{"the latest operation before the creation", func(t *testing.T, h *stackHistory) {
			h.add(t, "stackop_createstack_sso", "op-create", created.Add(-5*time.Hour), nil)
			h.add(t, "stackop_updatestack_pipeline", "op-update", created.Add(-2*time.Minute), nil)
			h.add(t, "stackop_updatestack_failed", "op-refused", created.Add(-time.Minute), nil)
			h.add(t, "stackop_updatestack_sourceidentity", "op-after", created.Add(time.Minute), nil)
		}, "op-update"},
		{"found by the stack's name, tied to it by the stackId", func(t *testing.T, h *stackHistory) {
			h.add(t, "stackop_updatestack_sourceidentity", "op-by-name", created.Add(-time.Minute), byName)
		}, "op-by-name"},
		{"a former stack of the same name is not this one", func(t *testing.T, h *stackHistory) {
			h.add(t, "stackop_updatestack_sourceidentity", "op-former", created.Add(-time.Minute), func(rec map[string]any) {
				byName(rec)
				rec["responseElements"] = map[string]any{"stackId": formerPayments}
			})
		}, ""},
		{"beyond the window", func(t *testing.T, h *stackHistory) {
			h.add(t, "stackop_createstack_sso", "op-old", created.Add(-history.OperatorWindow-time.Minute), nil)
		}, ""},
		{"ExecuteChangeSet of a change set named, with the stack's name", func(t *testing.T, h *stackHistory) {
			h.add(t, "stackop_createchangeset", "op-changeset", created.Add(-10*time.Minute), func(rec map[string]any) {
				byName(rec)
				rec["requestParameters"] = map[string]any{"stackName": "payments", "changeSetName": "release-7"}
				rec["responseElements"] = map[string]any{"id": "arn:aws:cloudformation:eu-west-1:111122223333:changeSet/release-7/1", "stackId": paymentsStack}
			})
			h.add(t, "stackop_executechangeset", "op-execute", created.Add(-time.Minute), func(rec map[string]any) {
				byName(rec)
				rec["requestParameters"] = map[string]any{"stackName": "payments", "changeSetName": "release-7"}
			})
		}, "op-execute"},
		{"ExecuteChangeSet of a change set of no known stack", func(t *testing.T, h *stackHistory) {
			h.add(t, "stackop_executechangeset", "op-execute", created.Add(-time.Minute), func(rec map[string]any) {
				byName(rec)
				rec["requestParameters"] = map[string]any{"stackName": "payments", "changeSetName": "release-7"}
			})
		}, ""},
		{"ExecuteChangeSet naming the stack's ARN", func(t *testing.T, h *stackHistory) {
			h.add(t, "stackop_executechangeset", "op-execute", created.Add(-time.Minute), func(rec map[string]any) {
				rec["requestParameters"] = map[string]any{"stackName": paymentsStack, "changeSetName": "release-8"}
				rec["resources"] = []any{map[string]any{"type": "AWS::CloudFormation::Stack", "ARN": paymentsStack}}
			})
		}, "op-execute"},
		{"a call in another region", func(t *testing.T, h *stackHistory) {
			h.add(t, "stackop_createstack_sso", "op-elsewhere", created.Add(-time.Minute), func(rec map[string]any) { rec["awsRegion"] = "" })
		}, ""},
		{"nothing", func(*testing.T, *stackHistory) {}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newStackHistory(t)
			tt.history(t, h)
			op, err := history.FindStackOperation(context.Background(), h.client, paymentsStack, created)
			if err != nil {
				t.Fatalf("FindStackOperation: %v", err)
			}
			got := ""
			if op != nil {
				got = op.EventID
			}
			if got != tt.want {
				t.Errorf("operation: got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestFindStackOperationQueries: the stack's ARN is asked first, its name
// only when the ARN finds nothing, each within the window before the
// creation.
func TestFindStackOperationQueries(t *testing.T) {
	created := time.Date(2024, 7, 3, 8, 20, 14, 0, time.UTC)
	h := newStackHistory(t)
	h.add(t, "stackop_createstack_sso", "op-create", created.Add(-time.Minute), nil)
	if _, err := history.FindStackOperation(context.Background(), h.client, paymentsStack, created); err != nil {
		t.Fatal(err)
	}
	if n := h.ct.Count("eu-west-1", "LookupEvents"); n != 1 {
		t.Errorf("LookupEvents: got %d calls, want 1 (found by the ARN)", n)
	}
	h.ct.ResetRequests()
	if op, err := history.FindStackOperation(context.Background(), h.client, strings.Replace(paymentsStack, "5b0c7e2a", "00000000", 1), created); err != nil || op != nil {
		t.Fatalf("another stack: got %+v, %v; want none", op, err)
	}
	if n := h.ct.Count("eu-west-1", "LookupEvents"); n != 2 {
		t.Errorf("LookupEvents: got %d calls, want 2 (the ARN, then the name)", n)
	}
}

func TestFindStackOperationFails(t *testing.T) {
	h := newStackHistory(t)
	h.ct.SetIntercept(localaws.FailFirst(localaws.AnyRegion, localaws.AnyTarget, -1, localaws.AccessDeniedFault))
	if _, err := history.FindStackOperation(context.Background(), h.client, paymentsStack, time.Now()); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Errorf("denied: got %v, want the lookup's error", err)
	}
	if _, err := history.FindStackOperation(context.Background(), h.client, "arn:aws:kms:eu-west-1:111122223333:key/x", time.Now()); err == nil {
		t.Error("not a stack ARN: got no error")
	}
}
