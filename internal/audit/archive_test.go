package audit_test

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kms-autotagger/kms-autotagger/internal/audit"
	"github.com/kms-autotagger/kms-autotagger/internal/audit/audittest"
	"github.com/kms-autotagger/kms-autotagger/internal/events"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
	"github.com/kms-autotagger/kms-autotagger/internal/trailarchive"
	"github.com/kms-autotagger/kms-autotagger/internal/trailarchive/archivetest"
)

const (
	archiveBucket = "org-trail-111122223333"
	archiveOrg    = "o-k3y5a2b7c9"
)

// startArchive runs moto's S3 with the bucket of an organization trail
// whose prefix is "cloudtrail".
func startArchive(t *testing.T) *s3.Client {
	t.Helper()
	m, err := localaws.StartMoto(context.Background(), localaws.MotoOptions{Account: acctA})
	if err != nil {
		t.Fatalf("starting moto: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	if err := m.CreateBucket(context.Background(), "us-east-1", archiveBucket); err != nil {
		t.Fatal(err)
	}
	return s3.NewFromConfig(m.Config("us-east-1"), func(o *s3.Options) { o.UsePathStyle = true })
}

// TestAuditFromArchive: keys older than CloudTrail's event history are
// attributed from the organization trail's log files in S3 (moto's), the
// real format: a key found only there is judged and repaired from its
// record; a record that contradicts its key, and a key with none, stay
// unattributable and say why.
func TestAuditFromArchive(t *testing.T) {
	w := startWorld(t, []string{acctA}, []string{"us-east-1", "eu-west-1"})
	client := startArchive(t)
	ctx := context.Background()
	alice := audittest.User(acctA, "alice")
	deployer := audittest.Role(acctA, "deployer")
	created := time.Date(2023, 5, 2, 10, 20, 30, 0, time.UTC)
	noise := func(region string, at time.Time) []byte {
		return archivetest.Record(events.EventSourceKMS, "Decrypt", acctA, region, at)
	}
	put := func(region string, at time.Time, records ...[]byte) {
		t.Helper()
		if _, err := archivetest.Put(ctx, client, archiveBucket, archivetest.LogFile{Prefix: "cloudtrail", Org: archiveOrg, Account: acctA, Region: region, At: at, Records: records}); err != nil {
			t.Fatal(err)
		}
	}
	truthOf := func(record []byte) []tagger.Tag {
		t.Helper()
		dec, err := events.DecodeRecord(record)
		if err != nil {
			t.Fatal(err)
		}
		dec.Key.Evidence = tagger.EvidenceTrailArchive
		return w.policy.Plan(dec.Key, nil).Tags
	}

	// Found only in the archive, among other calls; it carries a wrong
	// CreatedBy.
	archived := w.createKey(t, acctA, "us-east-1")
	w.kms[acctA].SetKeyFacts(archived, localaws.KeyFacts{CreationDate: created})
	archivedRec := audittest.CreateKeyRecord("c0000000-0000-4000-8000-000000000001", archived, alice, created)
	put("us-east-1", created.Add(4*time.Minute), noise("us-east-1", created), archivedRec, noise("us-east-1", created.Add(time.Minute)))
	archivedTruth := truthOf(archivedRec)
	mallory := "arn:aws:iam::" + acctA + ":user/mallory"
	w.tag(t, archived, tagger.Tag{Key: "CreatedBy", Value: mallory})

	// A replica in eu-west-1 of an archived primary: its ReplicateKey is
	// in the primary's region's files.
	primary := w.createKey(t, acctA, "us-east-1")
	w.kms[acctA].SetKeyFacts(primary, localaws.KeyFacts{CreationDate: created.Add(-time.Hour)})
	primaryRec := audittest.CreateKeyRecord("c0000000-0000-4000-8000-000000000002", primary, deployer, created.Add(-time.Hour))
	put("us-east-1", created.Add(-55*time.Minute), primaryRec)
	primaryTruth := truthOf(primaryRec)
	w.tag(t, primary, primaryTruth...)
	replica := w.createKey(t, acctA, "eu-west-1")
	w.kms[acctA].SetKeyFacts(replica, localaws.KeyFacts{CreationDate: created, PrimaryARN: primary})
	replicateRec := audittest.ReplicateKeyRecord("c0000000-0000-4000-8000-000000000003", primary, replica, deployer, created.Add(-30*time.Second))
	put("us-east-1", created.Add(3*time.Minute), noise("us-east-1", created), replicateRec)
	put("eu-west-1", created.Add(3*time.Minute), audittest.ReplicaCreateKeyRecord("c0000000-0000-4000-8000-000000000004", replica, primary, created))
	replicaTruth := truthOf(replicateRec)

	// A record that claims the creation of a key an hour older than it:
	// KMS contradicts it.
	contradicted := w.createKey(t, acctA, "eu-west-1")
	w.kms[acctA].SetKeyFacts(contradicted, localaws.KeyFacts{CreationDate: created})
	put("eu-west-1", created.Add(70*time.Minute), audittest.CreateKeyRecord("c0000000-0000-4000-8000-000000000005", contradicted, audittest.User(acctA, "mallory"), created.Add(65*time.Minute)))

	// No record anywhere.
	absent := w.createKey(t, acctA, "eu-west-1")
	w.kms[acctA].SetKeyFacts(absent, localaws.KeyFacts{CreationDate: created.Add(-48 * time.Hour)})

	archive, err := trailarchive.New(client, archiveBucket, "cloudtrail")
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		status   audit.Status
		evidence string
		eventID  string
		reason   string
		expected []tagger.Tag
	}
	wants := map[string]want{
		archived:     {audit.StatusWrong, tagger.EvidenceTrailArchive, "c0000000-0000-4000-8000-000000000001", "wrong values of CreatedBy", archivedTruth},
		primary:      {audit.StatusCompliant, tagger.EvidenceTrailArchive, "c0000000-0000-4000-8000-000000000002", "", primaryTruth},
		replica:      {audit.StatusMissing, tagger.EvidenceTrailArchive, "c0000000-0000-4000-8000-000000000003", "missing", replicaTruth},
		contradicted: {audit.StatusUnattributable, "", "", "record c0000000-0000-4000-8000-000000000005 in the trail archive contradicts the key", nil},
		absent:       {audit.StatusUnattributable, "", "", "no CreateKey or ReplicateKey record of key " + absent + " in the trail archive", nil},
	}
	check := func(t *testing.T, rep *audit.Report, repairRun bool) {
		t.Helper()
		if len(rep.Keys) != len(wants) {
			t.Fatalf("got %d rows, want %d", len(rep.Keys), len(wants))
		}
		for _, r := range rep.Keys {
			wt := wants[r.KeyARN]
			if r.Status != wt.status || r.Evidence != wt.evidence || r.EventID != wt.eventID || !strings.Contains(r.Reason, wt.reason) {
				t.Errorf("%s: got status %s, evidence %q, event %q, reason %q; want %s, %q, %q, a reason containing %q",
					r.KeyARN, r.Status, r.Evidence, r.EventID, r.Reason, wt.status, wt.evidence, wt.eventID, wt.reason)
			}
			if wt.expected != nil && !maps.Equal(asMap(r.Expected), asMap(wt.expected)) {
				t.Errorf("%s: got expected tags %v, want %v", r.KeyARN, r.Expected, wt.expected)
			}
			if repairRun && (wt.status == audit.StatusWrong || wt.status == audit.StatusMissing) && r.Action != audit.ActionRepaired {
				t.Errorf("%s: got action %q (%s), want repaired", r.KeyARN, r.Action, r.Reason)
			}
		}
	}

	t.Run("audit", func(t *testing.T) {
		rep, err := w.auditor(t, audit.Options{Archive: archive}).Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		check(t, rep, false)
		if got := rep.Summary.FromArchive; got != 3 {
			t.Errorf("got %d keys attributed from the archive, want 3", got)
		}
		// No LookupEvents for keys older than the history; the archive's
		// S3 calls counted in the partitions.
		for _, p := range rep.Partitions {
			if p.LookupEvents != 0 || p.Requests[audit.OpGetObject] == 0 || p.Requests[audit.OpListObjects] == 0 {
				t.Errorf("%s %s: got requests %v, want no LookupEvents and the archive's ListObjectsV2 and GetObject", p.Account, p.Region, p.Requests)
			}
		}
	})
	t.Run("repair", func(t *testing.T) {
		rep, err := w.auditor(t, audit.Options{Archive: archive, Repair: true}).Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		check(t, rep, true)
		for key, truth := range map[string][]tagger.Tag{archived: archivedTruth, replica: replicaTruth, primary: primaryTruth} {
			if got := w.tags(t, key); !maps.Equal(got, asMap(truth)) {
				t.Errorf("%s: got tags %v, want %v", key, got, asMap(truth))
			}
			if got := w.tags(t, key)["CreatedByEvidence"]; got != tagger.EvidenceTrailArchive {
				t.Errorf("%s: got CreatedByEvidence %q, want %q", key, got, tagger.EvidenceTrailArchive)
			}
		}
		for _, key := range []string{contradicted, absent} {
			if got := w.tags(t, key); len(got) != 0 {
				t.Errorf("%s: got tags %v, want none: it is unattributable", key, got)
			}
		}
	})
	t.Run("audit again", func(t *testing.T) {
		rep, err := w.auditor(t, audit.Options{Archive: archive}).Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := rep.Summary.Statuses, map[audit.Status]int{audit.StatusCompliant: 3, audit.StatusUnattributable: 2}; !maps.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
		if got, want := rep.Summary.Unattributable, []string{contradicted, absent}; !sameSet(got, want) {
			t.Errorf("got unattributable %v, want %v", got, want)
		}
	})
	t.Run("without the archive", func(t *testing.T) {
		rep, err := w.auditor(t, audit.Options{}).Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := rep.Summary.Statuses[audit.StatusUnattributable]; got != 5 {
			t.Errorf("got %d unattributable, want all 5: the history holds none of them", got)
		}
	})
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]bool{}
	for _, x := range a {
		m[x] = true
	}
	for _, x := range b {
		if !m[x] {
			return false
		}
	}
	return true
}
