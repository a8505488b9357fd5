package cli_test

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kms-autotagger/kms-autotagger/internal/audit"
	"github.com/kms-autotagger/kms-autotagger/internal/audit/audittest"
	"github.com/kms-autotagger/kms-autotagger/internal/backfill"
	"github.com/kms-autotagger/kms-autotagger/internal/cli"
	"github.com/kms-autotagger/kms-autotagger/internal/events"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
	"github.com/kms-autotagger/kms-autotagger/internal/trailarchive/archivetest"
)

// TestBackfillOrganizationCommand: backfill --accounts org through the
// member role, both regions of both accounts, and --trail-bucket for a key
// of the member account older than the event history, whose CreateKey only
// the organization trail's log files in moto's S3 hold; then audit
// --trail-bucket finds every key compliant, that one from the archive.
func TestBackfillOrganizationCommand(t *testing.T) {
	o := startAuditOrg(t)
	ctx := context.Background()
	home, member := auditHome, o.member
	want := map[string][]tagger.Tag{}
	for i, p := range []struct{ account, region string }{{home, "us-east-1"}, {home, "eu-west-1"}, {member, "us-east-1"}, {member, "eu-west-1"}} {
		key, truth := o.key(t, p.account, p.region, "f0000000-0000-4000-8000-00000000000"+string(rune('1'+i)))
		want[key] = truth
	}

	// The old key and its log file, among other calls, in an organization
	// trail's bucket with the prefix "ct".
	const bucket, prefix, orgID = "org-trail-archive", "ct", "o-q1w2e3r4t5"
	if err := o.moto.CreateBucket(ctx, "us-east-1", bucket); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ENDPOINT_URL_S3", o.moto.URL())
	old, _ := o.key(t, member, "eu-west-1", "")
	created := time.Date(2023, 1, 17, 8, 0, 5, 0, time.UTC)
	o.kms[member].SetKeyFacts(old, localaws.KeyFacts{CreationDate: created})
	rec := audittest.CreateKeyRecord("f0000000-0000-4000-8000-0000000000aa", old, audittest.Role(member, "platform"), created)
	s3c := s3.NewFromConfig(o.moto.Config("us-east-1"), func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := archivetest.Put(ctx, s3c, bucket, archivetest.LogFile{Prefix: prefix, Org: orgID, Account: member, Region: "eu-west-1", At: created.Add(5 * time.Minute),
		Records: [][]byte{archivetest.Record(events.EventSourceKMS, "Decrypt", member, "eu-west-1", created), rec}}); err != nil {
		t.Fatal(err)
	}
	dec, err := events.DecodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	dec.Key.Evidence = tagger.EvidenceTrailArchive
	want[old] = o.policy.Plan(dec.Key, nil).Tags

	o.moto.ResetCalls()
	code, stdout, stderr := runBackfillCLI(t, "--accounts", "org", "--regions", "us-east-1,eu-west-1", "--trail-bucket", bucket, "--trail-prefix", prefix,
		"--lookup-rate", "20", "--output", "json")
	if code != cli.ExitOK {
		t.Fatalf("got exit %d, want 0; stderr:\n%s\nstdout:\n%s", code, stderr, stdout)
	}
	var rep backfill.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("stdout is not one JSON report: %v\n%s", err, stdout)
	}
	rows := map[string]backfill.Row{}
	for _, r := range rep.Rows {
		rows[r.KeyARN] = r
	}
	for key, truth := range want {
		if got := o.tags(t, key); !maps.Equal(got, tagMap(truth)) {
			t.Errorf("%s: got tags %v, want %v", key, got, tagMap(truth))
		}
		r := rows[key]
		wantEvidence := tagger.EvidenceHistory
		if key == old {
			wantEvidence = tagger.EvidenceTrailArchive
		}
		if r.Action != backfill.ActionTagged || r.Evidence != wantEvidence || r.Account != strings.Split(key, ":")[4] {
			t.Errorf("%s: got row %+v, want tagged from the %s in its own account", key, r, wantEvidence)
		}
	}
	accounts := []string{home, member}
	slices.Sort(accounts)
	if s := rep.Summary; !slices.Equal(s.Accounts, accounts) || s.FromArchive != 1 || len(rep.Partitions) != 4 {
		t.Errorf("got accounts %v, %d from the archive, %d partitions; want %v, 1, 4", s.Accounts, s.FromArchive, len(rep.Partitions), accounts)
	}
	for _, p := range rep.Partitions {
		if p.TagWritesPerSecond > backfill.DefaultTagRate*1.02 || p.LookupEventsPerSecond > 20*1.02 {
			t.Errorf("%s %s: got %.2f tag writes and %.2f lookups per second, want at most %g and 20", p.Account, p.Region, p.TagWritesPerSecond, p.LookupEventsPerSecond, backfill.DefaultTagRate)
		}
	}
	// The member account through its member role, the backfill's session.
	calls := o.moto.Calls("sts", "AssumeRole")
	if len(calls) == 0 || calls[0].Params.Get("RoleArn") != "arn:aws:iam::"+member+":role"+auditRolePath+auditMemberRole || calls[0].Params.Get("RoleSessionName") != cli.BackfillSessionName {
		t.Errorf("got AssumeRole calls %+v, want the member role with session %s", calls, cli.BackfillSessionName)
	}

	// The audit with the archive: every key compliant, the old one from the
	// archive.
	code, stdout, stderr = runAuditCLI(t, "--accounts", "org", "--regions", "us-east-1,eu-west-1", "--trail-bucket", bucket, "--trail-prefix", prefix, "--output", "json")
	if code != cli.ExitOK {
		t.Fatalf("audit: got exit %d, want 0; stderr:\n%s\nstdout:\n%s", code, stderr, stdout)
	}
	doc := decodeAudit(t, stdout)
	for _, r := range doc.Keys {
		if r.Status != audit.StatusCompliant {
			t.Errorf("audit: %s is %s (%s), want compliant", r.KeyARN, r.Status, r.Reason)
		}
		if r.KeyARN == old && (r.Evidence != tagger.EvidenceTrailArchive || r.EventID != "f0000000-0000-4000-8000-0000000000aa") {
			t.Errorf("audit: the old key's row %+v, want its CreateKey from the trail archive", r)
		}
	}
	if doc.Summary.FromArchive != 1 || len(doc.Keys) != len(want) {
		t.Errorf("audit: got %d keys, %d from the archive; want %d and 1", len(doc.Keys), doc.Summary.FromArchive, len(want))
	}

	// Without the archive the old key is not the backfill's to tag: it is
	// reported, and the audit says unattributable and exits 1.
	code, stdout, _ = runAuditCLI(t, "--accounts", member, "--regions", "eu-west-1", "--trail-bucket", "", "--output", "json")
	if code != cli.ExitFailure || !slices.Equal(decodeAudit(t, stdout).Summary.Unattributable, []string{old}) {
		t.Errorf("audit without the archive: got exit %d, unattributable %v; want 1 and %s", code, decodeAudit(t, stdout).Summary.Unattributable, old)
	}
}

// TestBackfillOrgUsage: the scope flags' usage errors.
func TestBackfillOrgUsage(t *testing.T) {
	o := startAuditOrg(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"not an account", []string{"--accounts", "12345"}, `"12345" is not a 12-digit account ID`},
		{"another account without a member role", []string{"--accounts", o.member, "--member-role-name", ""}, "give --member-role-name"},
		{"a bad bucket", []string{"--trail-bucket", "Not_A_Bucket"}, "is not an S3 bucket name"},
		{"parallel zero", []string{"--parallel", "0"}, "at least one account"},
		{"read rate zero", []string{"--read-rate", "0"}, "--read-rate 0 is not a positive number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runBackfillCLI(t, tc.args...)
			if code != cli.ExitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("got exit %d, stderr:\n%s\nwant 2 and %q", code, stderr, tc.want)
			}
		})
	}
}
