package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kms-autotagger/kms-autotagger/internal/cli"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws/localawstest"
)

// lastLine decodes the last line of stdout, where invoke prints its result.
func lastLine(t *testing.T, stdout string) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var res map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last line of stdout is not a JSON object: %v\n%s", err, stdout)
	}
	return res
}

func TestInvoke(t *testing.T) {
	ctx := context.Background()
	st := localawstest.Start(t, localawstest.Options{
		Seeds: map[string][]localaws.SeedKey{
			"us-east-1": {{KeyID: "8c4babd3-5fba-4e9f-811e-43d105f9a340"}},
			"eu-west-1": {{KeyID: "mrk-9db9f3010c164289b78e44d2c67c2b81"}},
		},
		Env: map[string]string{"MAX_BACKOFF": "10ms"},
	})
	sample := func(name string) string { return filepath.Join("..", "..", "events", name) }
	replica, err := os.ReadFile(sample("replicatekey.json"))
	if err != nil {
		t.Fatal(err)
	}
	created, err := os.ReadFile(sample("createkey_iamuser.json"))
	if err != nil {
		t.Fatal(err)
	}
	st.Recorded(t, created, replica) // the seeded keys, as created when the samples say
	notJSON := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(notJSON, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name        string
		args        []string
		stdin       string
		env         map[string]string
		wantCode    int
		wantOutcome string
		wantRegion  string
	}{
		{"tagged from a file", []string{"invoke", "--event", sample("createkey_iamuser.json")}, "", nil, 0, "tagged", "us-east-1"},
		{"replica from stdin", []string{"invoke", "--event", "-"}, string(replica), nil, 0, "tagged", "eu-west-1"},
		{"skipped", []string{"invoke", "--event", sample("failed_call.json")}, "", nil, 0, "skipped", ""},
		{"not JSON is dead-lettered", []string{"invoke", "--event", notJSON}, "", nil, 0, "dead-lettered", ""},
		{"handler error exits 1", []string{"invoke", "--event", sample("createkey_iamuser.json")}, "",
			map[string]string{"AWS_ENDPOINT_URL_KMS": "http://127.0.0.1:1", "MAX_ATTEMPTS": "2"}, 1, "error", "us-east-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			code := cli.Run(ctx, tt.args, cli.IO{Stdin: strings.NewReader(tt.stdin), Stdout: &stdout, Stderr: &stderr, Getenv: os.Getenv})
			if code != tt.wantCode {
				t.Fatalf("exit code: got %d, want %d\nstderr: %s", code, tt.wantCode, stderr.String())
			}
			res := lastLine(t, stdout.String())
			if res["outcome"] != tt.wantOutcome {
				t.Errorf("outcome: got %v, want %s (result %v)", res["outcome"], tt.wantOutcome, res)
			}
			if tt.wantRegion != "" && res["region"] != tt.wantRegion {
				t.Errorf("region: got %v, want %s", res["region"], tt.wantRegion)
			}
			if tt.wantOutcome == "error" && res["error"] == "" {
				t.Errorf("error result without an error message: %v", res)
			}
			if !strings.Contains(stderr.String(), `"outcome":"`+tt.wantOutcome+`"`) {
				t.Errorf("stderr lacks the JSON log line with the outcome:\n%s", stderr.String())
			}
		})
	}
}

func TestInvokeUsage(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantCode int
		wantErr  string
	}{
		{"no event flag", []string{"invoke"}, nil, 2, "usage: autotagger invoke"},
		{"missing file", []string{"invoke", "--event", "/nonexistent.json"}, nil, 2, "reading event"},
		{"bad setting", []string{"invoke", "--event", "../../events/createkey_iamuser.json"}, map[string]string{"MAX_ATTEMPTS": "many"}, 2, "MAX_ATTEMPTS"},
		{"unknown command", []string{"frobnicate"}, nil, 2, "unknown command"},
		{"help", []string{"invoke", "--help"}, nil, 0, "DEAD_LETTER_QUEUE_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			getenv := func(k string) string { return tt.env[k] }
			code := cli.Run(context.Background(), tt.args, cli.IO{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: getenv})
			if code != tt.wantCode || !strings.Contains(stderr.String()+stdout.String(), tt.wantErr) {
				t.Errorf("got exit %d and output %q, want exit %d and output containing %q", code, stderr.String(), tt.wantCode, tt.wantErr)
			}
		})
	}
}
