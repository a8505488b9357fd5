package demo_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kms-autotagger/kms-autotagger/internal/demo"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
)

// buildBootstrap builds the function for this machine with the flags the
// Lambda build uses.
func buildBootstrap(t *testing.T) string {
	t.Helper()
	root, err := localaws.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "bootstrap")
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "lambda.norpc,lambdaonly", "-ldflags", "-s -w", "-o", out, "./cmd/autotagger")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building bootstrap: %v\n%s", err, b)
	}
	return out
}

// detail reads fields of a sample's CloudTrail record without the project's
// decoder, so the test does not grade the decoder by itself.
type detail struct {
	EventID      string `json:"eventID"`
	EventTime    string `json:"eventTime"`
	UserIdentity struct {
		ARN            string `json:"arn"`
		SessionContext struct {
			SessionIssuer struct {
				ARN string `json:"arn"`
			} `json:"sessionIssuer"`
		} `json:"sessionContext"`
		InvokedBy string `json:"invokedBy"`
	} `json:"userIdentity"`
}

func readDetail(t *testing.T, path string) detail {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Detail detail `json:"detail"`
	}
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return ev.Detail
}

// TestEndToEnd runs the real bootstrap under the Lambda runtime interface
// emulator against local-kms (two regions) and the SQS stand-in, posts every
// file in events/, and checks the outcome, the tags on each key and the
// dead-letter queue.
func TestEndToEnd(t *testing.T) {
	root, err := localaws.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	eventsDir := filepath.Join(root, "events")
	const replicaPrimary = "arn:aws:kms:us-east-1:111122223333:key/mrk-9db9f3010c164289b78e44d2c67c2b81"

	type want struct {
		outcome string
		// governance: the tags derived from the record must be on the key.
		governance bool
		extra      map[string]string // further tags that must be on the key
		absent     []string          // tags that must not be on the key
	}
	wants := map[string]want{
		"aws_managed_key.json":            {outcome: "skipped"},
		"createkey_assumedrole.json":      {outcome: "tagged", governance: true, absent: []string{"CreatedVia", "ReplicaOf"}},
		"createkey_cloudformation.json":   {outcome: "tagged", governance: true, extra: map[string]string{"CreatedVia": "cloudformation.amazonaws.com", "aws:cloudformation:logical-id": "DatabaseKey"}},
		"createkey_external.json":         {outcome: "tagged", governance: true},
		"createkey_iamuser.json":          {outcome: "tagged", governance: true, absent: []string{"CreatedByRole", "CreatedVia", "ReplicaOf"}},
		"createkey_identitycenter.json":   {outcome: "tagged", governance: true},
		"createkey_pending_deletion.json": {outcome: "dead-lettered", absent: []string{"CreatedBy"}},
		"createkey_with_tags.json":        {outcome: "tagged", governance: true, extra: map[string]string{"Project": "apollo"}},
		"failed_call.json":                {outcome: "skipped"},
		"replicatekey.json":               {outcome: "tagged", governance: true, extra: map[string]string{"ReplicaOf": replicaPrimary}},
		"unrelated_kms_event.json":        {outcome: "skipped"},
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var logs strings.Builder
	report, err := demo.Run(ctx, demo.Options{
		Bootstrap: buildBootstrap(t),
		EventsDir: eventsDir,
		Env:       []string{"STATIC_TAGS=ManagedBy=kms-autotagger"},
		Logs:      &syncBuilder{b: &logs},
	})
	if err != nil {
		t.Fatalf("demo.Run: %v\nlogs:\n%s", err, logs.String())
	}

	var seen []string
	for _, row := range report.Rows {
		seen = append(seen, row.Event)
		w, ok := wants[row.Event]
		if !ok {
			t.Errorf("events/%s has no expectation in this test: add one", row.Event)
			continue
		}
		if row.Status != 200 {
			t.Errorf("%s: emulator status %d, want 200", row.Event, row.Status)
		}
		if row.Outcome != w.outcome {
			t.Errorf("%s: got outcome %q (%s), want %q; body %s", row.Event, row.Outcome, row.Reason, w.outcome, row.Body)
		}
		if w.governance {
			d := readDetail(t, filepath.Join(eventsDir, row.Event))
			createdBy := d.UserIdentity.ARN
			if createdBy == "" {
				createdBy = d.UserIdentity.InvokedBy
			}
			must := map[string]string{"CreatedBy": createdBy, "CreatedAt": d.EventTime, "CreationEventId": d.EventID, "CreatedByEvidence": "event", "ManagedBy": "kms-autotagger"}
			if role := d.UserIdentity.SessionContext.SessionIssuer.ARN; role != "" {
				must["CreatedByRole"] = role
			}
			for k, v := range must {
				if got := row.Tags[k]; got != v {
					t.Errorf("%s: tag %s: got %q, want %q", row.Event, k, got, v)
				}
			}
		}
		for k, v := range w.extra {
			if got := row.Tags[k]; got != v {
				t.Errorf("%s: tag %s: got %q, want %q", row.Event, k, got, v)
			}
		}
		for _, k := range w.absent {
			if v, ok := row.Tags[k]; ok {
				t.Errorf("%s: tag %s=%q is on the key, want it absent", row.Event, k, v)
			}
		}
	}
	sort.Strings(seen)
	for name := range wants {
		if sort.SearchStrings(seen, name) == len(seen) || seen[sort.SearchStrings(seen, name)] != name {
			t.Errorf("events/%s is expected but was not posted", name)
		}
	}

	if len(report.DeadLetters) != 1 {
		t.Fatalf("dead letters: got %d, want 1: %+v", len(report.DeadLetters), report.DeadLetters)
	}
	d := report.DeadLetters[0]
	pending := readDetail(t, filepath.Join(eventsDir, "createkey_pending_deletion.json"))
	if d.EventID != pending.EventID || d.Error.Code != "KMSInvalidStateException" || d.Version != 1 || len(d.Event) == 0 || d.RequestID == "" {
		t.Errorf("dead letter: got event %s code %s version %d request %q, want the pending-deletion event with KMSInvalidStateException, version 1, the event and a request id",
			d.EventID, d.Error.Code, d.Version, d.RequestID)
	}

	var out strings.Builder
	if err := report.Print(&out); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"createkey_iamuser.json", "tagged", "dead-lettered", "KMSInvalidStateException", "DEAD LETTERS (1)"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("printed report lacks %q:\n%s", s, out.String())
		}
	}
	if err := report.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// TestEndToEndHandlerErrorComesBackInTheBody: a transient failure that
// outlasts the retries is returned by the handler; the emulator reports it
// as HTTP 200 with an errorMessage body, which the demo reads as "error".
func TestEndToEndHandlerErrorComesBackInTheBody(t *testing.T) {
	dir := t.TempDir()
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", "createkey_iamuser.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "createkey_iamuser.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	report, err := demo.Run(ctx, demo.Options{
		Bootstrap: buildBootstrap(t),
		EventsDir: dir,
		// A KMS endpoint that refuses connections: every attempt is a
		// network fault, retried, then returned.
		Env: []string{"AWS_ENDPOINT_URL_KMS=http://127.0.0.1:1", "MAX_ATTEMPTS=2", "MAX_BACKOFF=10ms"},
	})
	if err != nil {
		t.Fatalf("demo.Run: %v", err)
	}
	row := report.Rows[0]
	if row.Status != 200 || row.Outcome != "error" || !strings.Contains(string(row.Body), "errorMessage") {
		t.Errorf("got status %d outcome %q body %s, want 200, error and an errorMessage body", row.Status, row.Outcome, row.Body)
	}
	if len(report.DeadLetters) != 0 {
		t.Errorf("dead letters: got %d, want 0: a transient failure is Lambda's to retry", len(report.DeadLetters))
	}
	if err := report.Check(); err == nil {
		t.Error("Check: got nil, want an error for the failed event")
	}
}

// syncBuilder collects the logs several processes' readers write at once.
type syncBuilder struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
