package cli_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/kms-autotagger/kms-autotagger/internal/audit"
	"github.com/kms-autotagger/kms-autotagger/internal/audit/audittest"
	"github.com/kms-autotagger/kms-autotagger/internal/cli"
	"github.com/kms-autotagger/kms-autotagger/internal/events"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

const (
	auditHome       = "111122223333"
	auditMemberRole = "kms-autotagger-member"
	auditRolePath   = "/kms-autotagger/"
)

// auditOrg is an organization in moto, whose management account is
// auditHome and whose member account moto's CreateAccount made; local-kms
// for each account in two regions behind localaws.AccountRouter, and a
// CloudTrail stand-in for each behind audittest.TrailRouter, both routing
// by the account moto knows for the request's access key (the caller's IAM
// user, or the member role assumed with moto's STS). The environment points
// the CLI at them, with the caller's credentials.
type auditOrg struct {
	moto    *localaws.Moto
	member  string
	kms     map[string]*localaws.KMS
	trails  map[string]*localaws.CloudTrail
	policy  *tagger.Policy
	regions *regionsStandIn
}

// auditStatic is the STATIC_TAGS of the tests.
var auditStatic = tagger.Tag{Key: "Governance", Value: "kms-autotagger"}

func startAuditOrg(t *testing.T) *auditOrg {
	t.Helper()
	ctx := context.Background()
	m, err := localaws.StartMoto(ctx, localaws.MotoOptions{Account: auditHome})
	if err != nil {
		t.Fatalf("starting moto: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	creds, _ := m.Credentials().Retrieve(ctx)
	if err := audittest.OrgCall(ctx, m.URL(), creds.AccessKeyID, "CreateOrganization", map[string]string{"FeatureSet": "ALL"}, nil); err != nil {
		t.Fatal(err)
	}
	member, err := audittest.CreateAccount(ctx, m.URL(), creds.AccessKeyID, "payments")
	if err != nil {
		t.Fatal(err)
	}
	o := &auditOrg{moto: m, member: member, kms: map[string]*localaws.KMS{}, trails: map[string]*localaws.CloudTrail{}, regions: &regionsStandIn{}}
	for _, account := range []string{auditHome, member} {
		k, err := localaws.StartKMS(ctx, localaws.KMSOptions{Regions: []string{"us-east-1", "eu-west-1"}, Account: account})
		if err != nil {
			t.Fatalf("starting local-kms for %s: %v", account, err)
		}
		t.Cleanup(func() { _ = k.Close() })
		o.kms[account] = k
		if o.trails[account], err = localaws.NewCloudTrail(localaws.CloudTrailOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	router, err := localaws.NewAccountRouter(m, o.kms)
	if err != nil {
		t.Fatal(err)
	}
	kmsSrv := httptest.NewServer(router)
	t.Cleanup(kmsSrv.Close)
	trailSrv := httptest.NewServer(&audittest.TrailRouter{Resolver: m, Trails: o.trails})
	t.Cleanup(trailSrv.Close)
	regionSrv := httptest.NewServer(o.regions)
	t.Cleanup(regionSrv.Close)
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_KMS":           kmsSrv.URL,
		"AWS_ENDPOINT_URL_CLOUDTRAIL":    trailSrv.URL,
		"AWS_ENDPOINT_URL_STS":           m.URL(),
		"AWS_ENDPOINT_URL_ORGANIZATIONS": m.URL(),
		"AWS_ENDPOINT_URL_ACCOUNT":       regionSrv.URL,
		"AWS_REGION":                     "us-east-1",
		"AWS_ACCESS_KEY_ID":              creds.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY":          creds.SecretAccessKey,
		"AWS_SESSION_TOKEN":              "",
		"AWS_PROFILE":                    "",
		"AWS_CONFIG_FILE":                os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE":    os.DevNull,
		"MEMBER_ROLE_NAME":               auditMemberRole,
		"MEMBER_ROLE_PATH":               auditRolePath,
		"STATIC_TAGS":                    auditStatic.Key + "=" + auditStatic.Value,
		"LOG_LEVEL":                      "WARN",
		"MAX_BACKOFF":                    "50ms",
	} {
		t.Setenv(k, v)
	}
	if o.policy, err = tagger.NewPolicy(tagger.DefaultNames(), "", []tagger.Tag{auditStatic}); err != nil {
		t.Fatal(err)
	}
	return o
}

// regionsStandIn serves account:ListRegions (restJson1, POST
// /listRegions): the two regions of the org, in two pages.
type regionsStandIn struct{}

func (regionsStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var in struct {
		NextToken string `json:"NextToken"`
	}
	_ = json.NewDecoder(r.Body).Decode(&in)
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodPost || r.URL.Path != "/listRegions" {
		w.Header().Set("X-Amzn-ErrorType", "ValidationException")
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if in.NextToken == "" {
		_, _ = w.Write([]byte(`{"Regions":[{"RegionName":"us-east-1","RegionOptStatus":"ENABLED_BY_DEFAULT"}],"NextToken":"p2"}`))
		return
	}
	_, _ = w.Write([]byte(`{"Regions":[{"RegionName":"eu-west-1","RegionOptStatus":"ENABLED"}]}`))
}

func (o *auditOrg) client(keyARN string) *kms.Client {
	parts := strings.Split(keyARN, ":")
	return o.kms[parts[4]].Client(parts[3])
}

// key creates a key in account and region; with eventID, its CreateKey by
// alice of that account is in the event history, and the key's governance
// tags are returned.
func (o *auditOrg) key(t *testing.T, account, region, eventID string) (string, []tagger.Tag) {
	t.Helper()
	out, err := o.kms[account].Client(region).CreateKey(context.Background(), &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	key := aws.ToString(out.KeyMetadata.Arn)
	if eventID == "" {
		return key, nil
	}
	rec := audittest.CreateKeyRecord(eventID, key, audittest.User(account, "alice"), time.Now())
	if err := o.trails[account].AddEvent(region, rec); err != nil {
		t.Fatal(err)
	}
	dec, err := events.DecodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	dec.Key.Evidence = tagger.EvidenceHistory // as the audit finds it
	return key, o.policy.Plan(dec.Key, nil).Tags
}

func (o *auditOrg) tag(t *testing.T, keyARN string, tags ...tagger.Tag) {
	t.Helper()
	in := &kms.TagResourceInput{KeyId: aws.String(keyARN)}
	for _, tg := range tags {
		in.Tags = append(in.Tags, kmstypes.Tag{TagKey: aws.String(tg.Key), TagValue: aws.String(tg.Value)})
	}
	if _, err := o.client(keyARN).TagResource(context.Background(), in); err != nil {
		t.Fatal(err)
	}
}

func (o *auditOrg) tags(t *testing.T, keyARN string) map[string]string {
	t.Helper()
	out, err := o.client(keyARN).ListResourceTags(context.Background(), &kms.ListResourceTagsInput{KeyId: aws.String(keyARN)})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, tg := range out.Tags {
		m[aws.ToString(tg.TagKey)] = aws.ToString(tg.TagValue)
	}
	return m
}

func runAuditCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = cli.Run(context.Background(), append([]string{"audit"}, args...), cli.IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut, Getenv: os.Getenv})
	return code, out.String(), errOut.String()
}

func decodeAudit(t *testing.T, stdout string) audit.JSONReport {
	t.Helper()
	var doc audit.JSONReport
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil || doc.Report == nil {
		t.Fatalf("stdout is not one JSON report: %v\n%s", err, stdout)
	}
	return doc
}

func without(tags []tagger.Tag, key string) []tagger.Tag {
	return slices.DeleteFunc(slices.Clone(tags), func(t tagger.Tag) bool { return t.Key == key })
}

func tagMap(tags []tagger.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[t.Key] = t.Value
	}
	return m
}

func TestAuditCommand(t *testing.T) {
	o := startAuditOrg(t)
	home, member := auditHome, o.member
	mallory := "arn:aws:iam::" + home + ":user/mallory"
	keys := map[string]string{}
	truths := map[string][]tagger.Tag{}
	add := func(name, account, region, eventID string) {
		keys[name], truths[name] = o.key(t, account, region, eventID)
	}
	// Keys with every finding across both accounts and both regions.
	add("compliant", home, "us-east-1", "e0000000-0000-4000-8000-000000000001")
	o.tag(t, keys["compliant"], truths["compliant"]...)
	add("missing", home, "us-east-1", "e0000000-0000-4000-8000-000000000002")
	add("case-variant", home, "eu-west-1", "e0000000-0000-4000-8000-000000000003")
	o.tag(t, keys["case-variant"], append(slices.Clone(truths["case-variant"]), tagger.Tag{Key: "CREATEDBY", Value: mallory})...)
	add("pending", home, "eu-west-1", "")
	if _, err := o.client(keys["pending"]).ScheduleKeyDeletion(context.Background(), &kms.ScheduleKeyDeletionInput{KeyId: aws.String(keys["pending"]), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	add("wrong", member, "us-east-1", "e0000000-0000-4000-8000-000000000004")
	wrongTags := slices.Clone(truths["wrong"])
	for i := range wrongTags {
		if wrongTags[i].Key == "CreatedBy" {
			wrongTags[i].Value = mallory
		}
	}
	o.tag(t, keys["wrong"], wrongTags...)
	add("unattributable", member, "us-east-1", "")
	add("no-true-value", member, "eu-west-1", "e0000000-0000-4000-8000-000000000005")
	o.tag(t, keys["no-true-value"], append(slices.Clone(truths["no-true-value"]), tagger.Tag{Key: "CreatedByRole", Value: "arn:aws:iam::" + member + ":role/admin"})...)
	add("static-missing", member, "eu-west-1", "e0000000-0000-4000-8000-000000000006")
	o.tag(t, keys["static-missing"], without(truths["static-missing"], auditStatic.Key)...)
	memberARN := "arn:aws:iam::" + member + ":user/alice"

	type wantRow struct {
		status  audit.Status
		missing []tagger.Tag
		wrong   []audit.Mismatch
		forged  []tagger.Tag
	}
	wants := map[string]wantRow{
		"compliant":      {status: audit.StatusCompliant},
		"missing":        {status: audit.StatusMissing, missing: truths["missing"]},
		"case-variant":   {status: audit.StatusForged, forged: []tagger.Tag{{Key: "CREATEDBY", Value: mallory}}},
		"pending":        {status: audit.StatusPendingDeletion},
		"wrong":          {status: audit.StatusWrong, wrong: []audit.Mismatch{{Key: "CreatedBy", Value: mallory, Want: memberARN}}},
		"unattributable": {status: audit.StatusUnattributable},
		"no-true-value":  {status: audit.StatusForged, forged: []tagger.Tag{{Key: "CreatedByRole", Value: "arn:aws:iam::" + member + ":role/admin"}}},
		"static-missing": {status: audit.StatusMissing, missing: []tagger.Tag{auditStatic}},
	}

	t.Run("audit of the organization as JSON", func(t *testing.T) {
		o.moto.ResetCalls()
		code, stdout, stderr := runAuditCLI(t, "--accounts", "org", "--regions", "us-east-1,eu-west-1", "--output", "json")
		if code != cli.ExitFailure {
			t.Fatalf("got exit %d, want 1; stderr:\n%s", code, stderr)
		}
		doc := decodeAudit(t, stdout)
		rows := map[string]audit.Row{}
		for _, r := range doc.Keys {
			rows[r.KeyARN] = r
		}
		if len(doc.Keys) != len(keys) {
			t.Errorf("got %d rows, want %d", len(doc.Keys), len(keys))
		}
		for name, w := range wants {
			r := rows[keys[name]]
			if r.Status != w.status || !reflect.DeepEqual(r.Missing, w.missing) || !reflect.DeepEqual(r.Wrong, w.wrong) || !reflect.DeepEqual(r.Forged, w.forged) {
				t.Errorf("%s: got %s missing %v wrong %v forged %v (%s); want %s %v %v %v",
					name, r.Status, r.Missing, r.Wrong, r.Forged, r.Reason, w.status, w.missing, w.wrong, w.forged)
			}
			if want := strings.Split(keys[name], ":")[4]; r.Account != want {
				t.Errorf("%s: got account %s, want %s", name, r.Account, want)
			}
			if r.Action != "" {
				t.Errorf("%s: got action %q, want none without --repair", name, r.Action)
			}
		}
		s := doc.Summary
		wantAccounts := []string{home, member}
		slices.Sort(wantAccounts)
		if !reflect.DeepEqual(s.Accounts, wantAccounts) || s.Partitions != 4 || s.NonCompliant != 6 || s.Repair {
			t.Errorf("summary: got accounts %v, %d partitions, %d not compliant; want %v, 4, 6", s.Accounts, s.Partitions, s.NonCompliant, wantAccounts)
		}
		if want := 100.0 / 7; s.Coverage == nil || *s.Coverage != want {
			t.Errorf("coverage: got %v, want %g", s.Coverage, want)
		}
		if !reflect.DeepEqual(s.Unattributable, []string{keys["unattributable"]}) || doc.Error != "" {
			t.Errorf("got unattributable %v and error %q, want %s and none", s.Unattributable, doc.Error, keys["unattributable"])
		}
		if len(doc.Partitions) != 4 {
			t.Fatalf("got %d partitions, want 4", len(doc.Partitions))
		}
		for _, p := range doc.Partitions {
			if p.Keys != 2 || p.Error != "" || p.LookupEventsLimit != audit.DefaultLookupRate || p.LookupEventsPerSecond > audit.DefaultLookupRate*1.02 {
				t.Errorf("%s %s: got %d keys, error %q, %d lookups at %.3f/s (limit %g); want 2 keys, none, within the limit",
					p.Account, p.Region, p.Keys, p.Error, p.LookupEvents, p.LookupEventsPerSecond, p.LookupEventsLimit)
			}
			if p.ElapsedSeconds <= 0 {
				t.Errorf("%s %s: got elapsed %g", p.Account, p.Region, p.ElapsedSeconds)
			}
		}
		// The member account was read through its member role, assumed
		// with the caller's credentials.
		calls := o.moto.Calls("sts", "AssumeRole")
		wantRole := "arn:aws:iam::" + member + ":role" + auditRolePath + auditMemberRole
		if len(calls) == 0 {
			t.Fatal("got no AssumeRole, want the member role assumed")
		}
		for _, c := range calls {
			if c.Params.Get("RoleArn") != wantRole || c.Params.Get("RoleSessionName") != cli.AuditSessionName {
				t.Errorf("got AssumeRole of %s as %s, want %s as %s", c.Params.Get("RoleArn"), c.Params.Get("RoleSessionName"), wantRole, cli.AuditSessionName)
			}
		}
		if got := len(o.moto.Calls("organizations", "ListAccounts")); got == 0 {
			t.Error("got no organizations:ListAccounts, want the org's accounts listed")
		}
	})

	t.Run("repair as a table", func(t *testing.T) {
		code, stdout, stderr := runAuditCLI(t, "--accounts", "org", "--regions", "us-east-1,eu-west-1", "--repair")
		if code != cli.ExitFailure {
			t.Fatalf("got exit %d, want 1 for the unattributable key; stderr:\n%s\nstdout:\n%s", code, stderr, stdout)
		}
		for _, want := range []string{"REPAIRED", "AFTER REPAIR", "COVERAGE", "TOTAL", "repaired", "not-repaired", "1 keys are still not compliant",
			"Unattributable (no creation event in CloudTrail's event history; never tagged from nothing): " + keys["unattributable"],
			"coverage 14.3%, 85.7% after repairing 5"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("table lacks %q:\n%s", want, stdout)
			}
		}
		for _, name := range []string{"compliant", "missing", "case-variant", "wrong", "no-true-value", "static-missing"} {
			if got, want := o.tags(t, keys[name]), tagMap(truths[name]); !maps.Equal(got, want) {
				t.Errorf("%s: got tags %v, want exactly %v", name, got, want)
			}
		}
		if got := o.tags(t, keys["unattributable"]); len(got) != 0 {
			t.Errorf("unattributable: got tags %v, want none: never tagged from nothing", got)
		}
	})

	t.Run("audit again as CSV", func(t *testing.T) {
		code, stdout, stderr := runAuditCLI(t, "--accounts", home+","+member, "--regions", "all", "--output", "csv")
		if code != cli.ExitFailure {
			t.Fatalf("got exit %d, want 1 for the unattributable key; stderr:\n%s", code, stderr)
		}
		recs, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
		if err != nil || len(recs) != len(keys)+1 || !reflect.DeepEqual(recs[0], audit.CSVHeader) {
			t.Fatalf("got %v (%v), want the header and %d keys", recs, err, len(keys))
		}
		for _, rec := range recs[1:] {
			want := string(audit.StatusCompliant)
			switch rec[2] {
			case keys["unattributable"]:
				want = string(audit.StatusUnattributable)
			case keys["pending"]:
				want = string(audit.StatusPendingDeletion)
			}
			if rec[5] != want {
				t.Errorf("%s: got %s, want %s (%s)", rec[2], rec[5], want, rec[15])
			}
		}
	})

	t.Run("the last key pending deletion: compliant", func(t *testing.T) {
		if _, err := o.client(keys["unattributable"]).ScheduleKeyDeletion(context.Background(), &kms.ScheduleKeyDeletionInput{KeyId: aws.String(keys["unattributable"]), PendingWindowInDays: aws.Int32(7)}); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := runAuditCLI(t, "--accounts", "org", "--regions", "all")
		if code != cli.ExitOK || !strings.Contains(stdout, "Every key is compliant.") || !strings.Contains(stdout, "coverage 100.0%") {
			t.Errorf("got exit %d, want 0 with every key compliant; stderr:\n%s\nstdout:\n%s", code, stderr, stdout)
		}
	})

	t.Run("the caller's own account by default", func(t *testing.T) {
		code, stdout, stderr := runAuditCLI(t, "--output", "json")
		if code != cli.ExitOK {
			t.Fatalf("got exit %d, want 0; stderr:\n%s", code, stderr)
		}
		doc := decodeAudit(t, stdout)
		if !reflect.DeepEqual(doc.Summary.Accounts, []string{home}) || !reflect.DeepEqual(doc.Summary.Regions, []string{"us-east-1"}) {
			t.Errorf("got %v %v, want the caller's account in the configured region", doc.Summary.Accounts, doc.Summary.Regions)
		}
	})

	t.Run("a role that cannot be assumed", func(t *testing.T) {
		o.moto.SetHook(func(w http.ResponseWriter, r *http.Request, call localaws.MotoCall, next http.Handler) {
			if call.Operation == "AssumeRole" {
				localaws.WriteQueryError(w, http.StatusForbidden, "AccessDenied", "not authorized to perform: sts:AssumeRole")
				return
			}
			next.ServeHTTP(w, r)
		})
		defer o.moto.SetHook(nil)
		code, stdout, stderr := runAuditCLI(t, "--accounts", member, "--regions", "us-east-1", "--output", "json")
		if code != cli.ExitFailure {
			t.Fatalf("got exit %d, want 1; stderr:\n%s", code, stderr)
		}
		doc := decodeAudit(t, stdout)
		if len(doc.Partitions) != 1 || !strings.Contains(doc.Partitions[0].Error, "AccessDenied") || doc.Error == "" {
			t.Errorf("got %+v (error %q), want the partition failed with AccessDenied", doc.Partitions, doc.Error)
		}
	})
}

func TestAuditUsage(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("MEMBER_ROLE_NAME", "")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"output", []string{"--output", "xml"}, `--output "xml" is not one of table, json, csv`},
		{"parallel", []string{"--parallel", "0"}, "--parallel 0"},
		{"tag rate", []string{"--tag-rate", "0"}, "--tag-rate 0 is not a positive number"},
		{"read rate", []string{"--read-rate", "-2"}, "--read-rate -2 is not a positive number"},
		{"first bad rate", []string{"--read-rate", "0", "--lookup-rate", "0"}, "--lookup-rate 0 is not a positive number"},
		{"argument", []string{"now"}, `unexpected argument "now"`},
		{"role path", []string{"--member-role-name", "r", "--member-role-path", "a/b"}, "autotagger audit: configuration: MEMBER_ROLE_PATH"},
		{"external id without a role", []string{"--external-id", "secret-id"}, "MEMBER_ROLE_EXTERNAL_ID is set but MEMBER_ROLE_NAME is empty"},
		{"flag", []string{"--frobnicate"}, "flag provided but not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runAuditCLI(t, tc.args...)
			if code != cli.ExitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("got exit %d with %q, want 2 with %q", code, stderr, tc.want)
			}
			if strings.Contains(stderr, "secret-id") {
				t.Errorf("the external ID is quoted: %s", stderr)
			}
		})
	}
	code, _, stderr := runAuditCLI(t, "--help")
	if code != cli.ExitOK || !strings.Contains(stderr, "unattributable") || !strings.Contains(stderr, "--tag-rate") {
		t.Errorf("--help: got exit %d with %q, want 0 and the statuses and flags", code, stderr)
	}
}

// TestAuditAccountsUsage: accounts named wrongly, or other accounts
// without a member role, are usage errors, found after the caller's
// identity.
func TestAuditAccountsUsage(t *testing.T) {
	o := startAuditOrg(t)
	t.Setenv("MEMBER_ROLE_NAME", "")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"not an account", []string{"--accounts", "1234"}, `"1234" is not a 12-digit account ID`},
		{"no account", []string{"--accounts", ","}, "names no account"},
		{"other account without a role", []string{"--accounts", o.member}, "give --member-role-name"},
		{"org without a role", []string{"--accounts", "org"}, "are not the caller's"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runAuditCLI(t, tc.args...)
			if code != cli.ExitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("got exit %d with %q, want 2 with %q", code, stderr, tc.want)
			}
		})
	}
	code, _, stderr := runAuditCLI(t, "--accounts", o.member, "--member-role-name", auditMemberRole, "--regions", "us-east-1")
	if code != cli.ExitOK {
		t.Errorf("the role by flag: got exit %d, want 0 (no keys); stderr:\n%s", code, stderr)
	}
}
