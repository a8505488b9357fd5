package doctor_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/kms-autotagger/kms-autotagger/internal/doctor"
)

func TestMatchesRole(t *testing.T) {
	const role = "arn:aws:iam::111122223333:role/platform/KMSAutoTagger"
	cases := []struct {
		caller, role string
		want         bool
	}{
		{"arn:aws:sts::111122223333:assumed-role/KMSAutoTagger/jane", role, true},
		{"arn:aws:sts::111122223333:assumed-role/KMSAutoTagger/i-0abc", "arn:aws:iam::111122223333:role/KMSAutoTagger", true},
		{"arn:aws-us-gov:sts::111122223333:assumed-role/T/s", "arn:aws-us-gov:iam::111122223333:role/T", true},
		{role, role, true},
		{"arn:aws:iam::111122223333:user/jane", "arn:aws:iam::111122223333:user/jane", true},
		{"arn:aws:sts::444455556666:assumed-role/KMSAutoTagger/jane", role, false},
		{"arn:aws-cn:sts::111122223333:assumed-role/KMSAutoTagger/jane", role, false},
		{"arn:aws:sts::111122223333:assumed-role/KMSAutoTaggerAdmin/jane", role, false},
		{"arn:aws:sts::111122223333:assumed-role/platform/jane", role, false},
		{"arn:aws:sts::111122223333:assumed-role/KMSAutoTagger/", role, false},
		{"arn:aws:sts::111122223333:federated-user/KMSAutoTagger", role, false},
		{"arn:aws:iam::111122223333:user/KMSAutoTagger", role, false},
		{"arn:aws:sts::111122223333:assumed-role/KMSAutoTagger/jane", "arn:aws:iam::111122223333:user/KMSAutoTagger", false},
		{"arn:aws:sts::111122223333:assumed-role/KMSAutoTagger/jane", "KMSAutoTagger", false},
	}
	for _, tc := range cases {
		if got := doctor.MatchesRole(tc.caller, tc.role); got != tc.want {
			t.Errorf("MatchesRole(%q, %q) = %v, want %v", tc.caller, tc.role, got, tc.want)
		}
	}
}

func TestCheckSettings(t *testing.T) {
	env := map[string]string{"MAX_ATTEMPTS": "zero", "STATIC_TAGS": "novalue"}
	c, _ := doctor.CheckSettings(func(k string) string { return env[k] })
	if c.Status != doctor.Fail {
		t.Fatalf("status = %s, want fail", c.Status)
	}
	joined := strings.Join(c.Details, "\n")
	for _, want := range []string{"MAX_ATTEMPTS", "STATIC_TAGS"} {
		if !strings.Contains(joined, want) {
			t.Errorf("details %q do not name %s", joined, want)
		}
	}
	if c.Fix == "" {
		t.Error("a failed settings check has no fix")
	}

	c, cfg := doctor.CheckSettings(func(k string) string {
		return map[string]string{"DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/111122223333/dlq"}[k]
	})
	if c.Status != doctor.Pass || c.Fix != "" {
		t.Errorf("valid settings: status %s fix %q, want pass and no fix", c.Status, c.Fix)
	}
	if cfg.DeadLetterQueueURL != "https://sqs.us-east-1.amazonaws.com/111122223333/dlq" {
		t.Errorf("configuration queue URL = %q, want the one set", cfg.DeadLetterQueueURL)
	}
}

func TestReportText(t *testing.T) {
	r := doctor.NewReport([]doctor.Check{
		{Name: doctor.CheckNameIdentity, Status: doctor.Pass, Summary: "account 111122223333 as arn:aws:iam::111122223333:user/jane"},
		{Name: doctor.CheckNameCloudTrail, Region: "eu-west-1", Status: doctor.Fail, Summary: "no trail",
			Details: []string{"trail a: NOT logging"}, Fix: "Start logging."},
	})
	if r.OK || r.Failed != 1 {
		t.Fatalf("report OK %v Failed %d, want false 1", r.OK, r.Failed)
	}
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := "PASS  identity                     account 111122223333 as arn:aws:iam::111122223333:user/jane\n" +
		"FAIL  cloudtrail eu-west-1         no trail\n" +
		"      - trail a: NOT logging\n" +
		"      fix: Start logging.\n" +
		"\n1 of 2 checks failed.\n"
	if b.String() != want {
		t.Errorf("text =\n%s\nwant\n%s", b.String(), want)
	}

	ok := doctor.NewReport([]doctor.Check{{Name: doctor.CheckNameSettings, Status: doctor.Pass, Summary: "valid"}})
	b.Reset()
	if err := ok.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if !ok.OK || !strings.HasSuffix(b.String(), "\nAll 1 checks passed.\n") {
		t.Errorf("all-pass report OK %v text %q, want true and a closing line saying all passed", ok.OK, b.String())
	}
}
