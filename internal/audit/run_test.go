package audit_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kms-autotagger/kms-autotagger/internal/audit"
	"github.com/kms-autotagger/kms-autotagger/internal/audit/audittest"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// TestPartitionsInParallel: each partition keeps to its own LookupEvents
// and TagResource buckets, and partitions run at once, so the run takes
// about as long as the slowest, not the sum.
func TestPartitionsInParallel(t *testing.T) {
	w := startWorld(t, []string{acctA, acctB}, []string{"us-east-1", "eu-west-1"})
	const perPartition = 5
	for _, p := range w.partitions() {
		for i := range perPartition {
			w.created(t, p.Account, p.Region, fmt.Sprintf("c%s-%s-%d", p.Account, p.Region, i), audittest.User(p.Account, "alice"))
		}
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		parallel int
		repair   bool
		tagRate  float64
	}{
		{"one partition at a time", 1, false, 0},
		{"all at once, repairing at 2 tags per second", 4, true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := w.auditor(t, audit.Options{Parallel: tc.parallel, Repair: tc.repair, TagRate: tc.tagRate}).Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			s := rep.Summary
			for _, p := range rep.Partitions {
				if p.Keys != perPartition || p.LookupEvents != perPartition {
					t.Errorf("%s %s: got %d keys and %d LookupEvents, want %d of each", p.Account, p.Region, p.Keys, p.LookupEvents, perPartition)
				}
				// Five lookups one token apart: 4 intervals of half a second.
				if p.LookupEventsPerSecond > audit.DefaultLookupRate*1.02 || p.LookupEventsPerSecond < audit.DefaultLookupRate*0.5 {
					t.Errorf("%s %s: got %.3f LookupEvents per second, want close to and at most %g", p.Account, p.Region, p.LookupEventsPerSecond, audit.DefaultLookupRate)
				}
				if min := float64(perPartition-1) / audit.DefaultLookupRate; p.ElapsedSeconds < min*0.98 {
					t.Errorf("%s %s: took %.2fs, want at least %.2fs at the lookup rate", p.Account, p.Region, p.ElapsedSeconds, min)
				}
				if tc.repair {
					if p.Repaired != perPartition || p.TagWrites != perPartition || p.TagWritesLimit != tc.tagRate || p.TagWritesPerSecond > tc.tagRate*1.02 {
						t.Errorf("%s %s: got %d repaired, %d tag writes at %.3f/s (limit %g), want %d at most %g/s",
							p.Account, p.Region, p.Repaired, p.TagWrites, p.TagWritesPerSecond, p.TagWritesLimit, perPartition, tc.tagRate)
					}
				}
			}
			if tc.parallel == 1 && s.ElapsedSeconds < 0.95*s.SumPartitionSeconds {
				t.Errorf("one at a time: took %.2fs, want the sum of the partitions, %.2fs", s.ElapsedSeconds, s.SumPartitionSeconds)
			}
			if tc.parallel > 1 && (s.ElapsedSeconds > 0.5*s.SumPartitionSeconds || s.ElapsedSeconds > s.SlowestPartitionSeconds+1) {
				t.Errorf("all at once: took %.2fs, want about the slowest partition's %.2fs, not the sum %.2fs",
					s.ElapsedSeconds, s.SlowestPartitionSeconds, s.SumPartitionSeconds)
			}
			if got := w.throttled(); got != 0 {
				t.Errorf("got %d LookupEvents throttled by CloudTrail, want none", got)
			}
		})
	}
}

// TestFailures: what cannot be read is reported, and fails the run, but
// never stops the other partitions.
func TestFailures(t *testing.T) {
	w := startWorld(t, []string{acctA}, []string{"us-east-1", "eu-west-1"})
	key, _ := w.created(t, acctA, "us-east-1", "f0000000-0000-4000-8000-000000000001", audittest.User(acctA, "alice"))
	other, truth := w.created(t, acctA, "eu-west-1", "f0000000-0000-4000-8000-000000000002", audittest.User(acctA, "alice"))
	w.tag(t, other, truth...)
	ctx := context.Background()

	t.Run("event history denied", func(t *testing.T) {
		w.trails[acctA].SetIntercept(func(rw http.ResponseWriter, _ *http.Request, region, _ string) bool {
			if region != "us-east-1" {
				return false
			}
			localaws.WriteKMSError(rw, http.StatusBadRequest, "AccessDeniedException", "not authorized to perform cloudtrail:LookupEvents")
			return true
		})
		defer w.trails[acctA].SetIntercept(nil)
		rep, err := w.auditor(t, audit.Options{Repair: true}).Run(ctx)
		if err != nil {
			t.Fatalf("got %v, want a report of the failed key", err)
		}
		if len(rep.Keys) != 2 {
			t.Fatalf("got %d rows, want 2", len(rep.Keys))
		}
		failed, fine := rep.Keys[1], rep.Keys[0] // eu-west-1 sorts first
		if failed.KeyARN != key || failed.Status != audit.StatusFailed || failed.ErrorCode != "AccessDeniedException" ||
			failed.Action != audit.ActionNotRepaired || !strings.Contains(failed.Reason, "not authorized") {
			t.Errorf("got %+v, want %s failed with AccessDeniedException, not repaired", failed, key)
		}
		if fine.KeyARN != other || fine.Status != audit.StatusCompliant {
			t.Errorf("got %+v, want %s compliant", fine, other)
		}
		if rep.Compliant() || rep.Summary.NonCompliant != 1 {
			t.Errorf("got compliant %v with %d not compliant, want 1", rep.Compliant(), rep.Summary.NonCompliant)
		}
		if got := w.tags(t, key); len(got) != 0 {
			t.Errorf("got tags %v on the key whose history could not be read, want none", got)
		}
	})

	t.Run("a repair denied", func(t *testing.T) {
		w.kms[acctA].Router().SetIntercept(localaws.FailFirst("us-east-1", localaws.KMSTarget("TagResource"), 100,
			localaws.Fault{Status: http.StatusBadRequest, Code: "AccessDeniedException", Message: "not authorized to perform kms:TagResource"}))
		defer w.kms[acctA].Router().SetIntercept(nil)
		rep, err := w.auditor(t, audit.Options{Repair: true}).Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		r := rep.Keys[1]
		if r.Status != audit.StatusMissing || r.Action != audit.ActionRepairFailed || r.ErrorCode != "AccessDeniedException" || r.Written != nil {
			t.Errorf("got %+v, want missing, repair-failed with AccessDeniedException", r)
		}
		if rep.Summary.Repaired != 0 || rep.Summary.NonCompliant != 1 {
			t.Errorf("got %d repaired, %d not compliant, want 0 and 1", rep.Summary.Repaired, rep.Summary.NonCompliant)
		}
	})

	t.Run("an account without clients", func(t *testing.T) {
		parts := append(w.partitions(), audit.Partition{Account: acctB, Region: "us-east-1"})
		rep, err := w.auditor(t, audit.Options{Partitions: parts}).Run(ctx)
		if err == nil || !strings.Contains(err.Error(), "no stand-in for account "+acctB) {
			t.Errorf("got error %v, want the partition's", err)
		}
		if rep == nil || len(rep.Summary.Errors) != 1 || rep.Compliant() || len(rep.Keys) != 2 {
			t.Fatalf("got %+v, want the two keys and one error", rep)
		}
		if p := rep.Partitions[2]; p.Account != acctB || p.Error == "" || p.Keys != 0 || p.Coverage != nil {
			t.Errorf("got %+v, want the failed partition of %s, no keys, no coverage", p, acctB)
		}
	})

	t.Run("interrupted", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		rep, err := w.auditor(t, audit.Options{}).Run(ctx)
		if !errors.Is(err, context.Canceled) || rep == nil || !rep.Summary.Interrupted || rep.Compliant() {
			t.Errorf("got %v and %+v, want an interrupted report", err, rep)
		}
	})
}

func TestNew(t *testing.T) {
	policy, err := tagger.NewPolicy(tagger.DefaultNames(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	clients := func(context.Context, string, string) (audit.Clients, error) { return audit.Clients{}, nil }
	p := audit.Partition{Account: acctA, Region: "us-east-1"}
	for _, tc := range []struct {
		name    string
		policy  *tagger.Policy
		clients audit.ClientsFunc
		opts    audit.Options
		want    string
	}{
		{"no policy", nil, clients, audit.Options{Partitions: []audit.Partition{p}}, "no tag policy"},
		{"no clients", policy, nil, audit.Options{Partitions: []audit.Partition{p}}, "no clients"},
		{"no partitions", policy, clients, audit.Options{}, "no account and region"},
		{"bad account", policy, clients, audit.Options{Partitions: []audit.Partition{{Account: "1234", Region: "us-east-1"}}}, `"1234" is not a 12-digit account ID`},
		{"bad region", policy, clients, audit.Options{Partitions: []audit.Partition{{Account: acctA, Region: "mars"}}}, `"mars" is not a region name`},
		{"twice", policy, clients, audit.Options{Partitions: []audit.Partition{p, p}}, "listed twice"},
		{"negative rate", policy, clients, audit.Options{Partitions: []audit.Partition{p}, TagRate: -1}, "tag rate -1"},
		{"negative parallel", policy, clients, audit.Options{Partitions: []audit.Partition{p}, Parallel: -1}, "-1 partitions"},
		{"fine", policy, clients, audit.Options{Partitions: []audit.Partition{p}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := audit.New(tc.policy, tc.clients, slog.New(slog.NewTextHandler(io.Discard, nil)), tc.opts)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestWriteCSV: one line per key, and tag data a spreadsheet would run as
// a formula defused.
func TestWriteCSV(t *testing.T) {
	rep := &audit.Report{Keys: []audit.Row{{
		Account: acctA, Region: "us-east-1", KeyARN: "arn:aws:kms:us-east-1:" + acctA + ":key/k1", KeyID: "k1", KeyState: "Enabled",
		Status: audit.StatusForged, Action: audit.ActionRepaired, EventID: "e1", EventName: "CreateKey", Evidence: "trail-archive",
		Missing: []tagger.Tag{{Key: "CreatedAt", Value: "2024-01-02T03:04:05Z"}, {Key: "Governance", Value: "yes"}},
		Wrong:   []audit.Mismatch{{Key: "CreatedBy", Value: "=1+2", Want: "arn:aws:iam::" + acctA + ":user/alice"}},
		Forged:  []tagger.Tag{{Key: "createdby", Value: "x"}}, Written: []tagger.Tag{{Key: "CreatedBy", Value: "a"}},
		Removed: []string{"createdby"}, Reason: "=HYPERLINK", ErrorCode: "",
	}}}
	var b bytes.Buffer
	if err := audit.WriteCSV(&b, rep); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{audit.CSVHeader, {acctA, "us-east-1", "arn:aws:kms:us-east-1:" + acctA + ":key/k1", "k1", "Enabled", "forged", "repaired", "e1", "CreateKey", "trail-archive",
		"CreatedAt=2024-01-02T03:04:05Z;Governance=yes", "CreatedBy==1+2 (want arn:aws:iam::" + acctA + ":user/alice)", "createdby=x", "",
		"CreatedBy=a", "createdby", "'=HYPERLINK", ""}}
	if !reflect.DeepEqual(recs, want) {
		t.Errorf("got\n%q\nwant\n%q", recs, want)
	}
}

// TestActiveAccounts: the ACTIVE accounts of an organization in moto, by
// ListAccounts with the management account's credentials.
func TestActiveAccounts(t *testing.T) {
	ctx := context.Background()
	m, err := localaws.StartMoto(ctx, localaws.MotoOptions{Account: acctA})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	creds, _ := m.Credentials().Retrieve(ctx)
	cfg := m.Config("us-east-1")

	t.Run("no organization", func(t *testing.T) {
		// AWS answers AWSOrganizationsNotInUseException, moto no account.
		_, err := audit.ActiveAccounts(ctx, audit.NewOrganizations(cfg, ""))
		if err == nil {
			t.Error("got no error, want one: there is no organization, so no account to audit")
		}
	})
	t.Run("an error answer", func(t *testing.T) {
		m.SetHook(func(w http.ResponseWriter, r *http.Request, call localaws.MotoCall, next http.Handler) {
			if call.Operation != "ListAccounts" {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"__type":"com.amazonaws.organizations#AWSOrganizationsNotInUseException","Message":"Your account is not a member of an organization."}`))
		})
		defer m.SetHook(nil)
		_, err := audit.ActiveAccounts(ctx, audit.NewOrganizations(cfg, ""))
		if _, code := tagger.Classify(err); code != "AWSOrganizationsNotInUseException" || !strings.Contains(err.Error(), "not a member") {
			t.Errorf("got %v (%s), want AWSOrganizationsNotInUseException with its message", err, code)
		}
	})

	if err := audittest.OrgCall(ctx, m.URL(), creds.AccessKeyID, "CreateOrganization", map[string]string{"FeatureSet": "ALL"}, nil); err != nil {
		t.Fatal(err)
	}
	var members []string
	for _, name := range []string{"payments", "closed"} {
		id, err := audittest.CreateAccount(ctx, m.URL(), creds.AccessKeyID, name)
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, id)
	}
	if err := audittest.OrgCall(ctx, m.URL(), creds.AccessKeyID, "CloseAccount", map[string]string{"AccountId": members[1]}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := audit.ActiveAccounts(ctx, audit.NewOrganizations(aws.Config{Region: "eu-west-1", Credentials: cfg.Credentials}, m.URL()))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{acctA, members[0]}
	if want[1] < want[0] {
		want[0], want[1] = want[1], want[0]
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want the management account and the active member %v (not the closed %s)", got, want, members[1])
	}
	// The requests were signed for organizations in us-east-1, the
	// partition's endpoint region, whatever the configuration's region.
	calls := m.Calls("organizations", "ListAccounts")
	if len(calls) == 0 || calls[len(calls)-1].Region != "us-east-1" || calls[len(calls)-1].AccessKeyID != creds.AccessKeyID {
		t.Errorf("got calls %+v, want ListAccounts signed for us-east-1 with %s", calls, creds.AccessKeyID)
	}
	// The caller is the management account, as sts says.
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Account) != acctA {
		t.Errorf("got %v %v, want account %s", id, err, acctA)
	}
}
