package doctor_test

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"

	"github.com/kms-autotagger/kms-autotagger/internal/doctor"
	"github.com/kms-autotagger/kms-autotagger/internal/doctor/doctortest"
)

// The quotas of the stand-in; their codes are the stand-in's own: the
// check matches the names, as KMS's and CloudTrail's documentation give
// them.
var (
	tagQuota    = doctortest.Quota{ServiceCode: "kms", QuotaCode: "L-TEST0001", QuotaName: "TagResource request rate", Value: 10, Adjustable: true}
	untagQuota  = doctortest.Quota{ServiceCode: "kms", QuotaCode: "L-TEST0002", QuotaName: "UntagResource request rate", Value: 5, Adjustable: true}
	otherQuota  = doctortest.Quota{ServiceCode: "kms", QuotaCode: "L-TEST0003", QuotaName: "CreateKey request rate", Value: 5, Adjustable: true}
	lookupQuota = doctortest.Quota{ServiceCode: "cloudtrail", QuotaCode: "L-TEST0004", QuotaName: "LookupEvents API transactions per second", Value: 2}
)

func raised(q doctortest.Quota, v float64) doctortest.Quota { q.Value = v; return q }

// TestCheckQuotas: the real SDK client against Service Quotas' protocol:
// applied values first, the AWS defaults for those with none, the
// documented value for a quota Service Quotas does not list; a sweep whose
// rate takes a whole quota fails, an unreadable Service Quotas warns.
func TestCheckQuotas(t *testing.T) {
	srv := &doctortest.QuotaServer{}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	client := servicequotas.New(servicequotas.Options{Region: "us-east-1", BaseEndpoint: aws.String(hs.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")})
	sweepOn := doctor.Demand{HandlerTagRate: 1, SweepOn: true, SweepTagRate: 2, SweepLookupRate: 1, CLITagRate: 5, CLILookupRate: 2}
	for _, tc := range []struct {
		name     string
		applied  map[string][]doctortest.Quota
		defaults map[string][]doctortest.Quota
		errs     map[string]string
		demand   doctor.Demand
		status   doctor.Status
		mentions []string
	}{
		{"applied values", map[string][]doctortest.Quota{"kms": {otherQuota, raised(tagQuota, 20), untagQuota}, "cloudtrail": {lookupQuota}}, nil, nil, sweepOn, doctor.Pass,
			[]string{"KMS TagResource request rate 20/s (applied, L-TEST0001)", "UntagResource request rate 5/s (applied, L-TEST0002)", "LookupEvents 2/s (applied, L-TEST0004)",
				"the sweep takes 2/s (SWEEP_TAG_RATE), leaving 18/s for the live handler (TAG_RATE_LIMIT 1 per instance, so 20 instances at once)",
				"the sweep takes 1/s (SWEEP_LOOKUP_RATE), leaving 1/s"}},
		{"defaults where none is applied, documented where none is listed", map[string][]doctortest.Quota{"kms": {otherQuota}},
			map[string][]doctortest.Quota{"kms": {tagQuota, untagQuota}}, map[string]string{"ListServiceQuotas/cloudtrail": "NoSuchResourceException"}, sweepOn, doctor.Pass,
			[]string{"TagResource request rate 10/s (default, L-TEST0001)", "LookupEvents 2/s (documented: not in Service Quotas)"}},
		{"the sweep off", map[string][]doctortest.Quota{"kms": {tagQuota, untagQuota}, "cloudtrail": {lookupQuota}}, nil, nil,
			doctor.Demand{HandlerTagRate: 1, CLITagRate: 5, CLILookupRate: 2}, doctor.Pass,
			[]string{"the live handler has all 10/s", "the sweep is off", "audit --repair and backfill take 5 tag writes/s (--tag-rate), leaving 5/s"}},
		{"a sweep that takes the whole quota", map[string][]doctortest.Quota{"kms": {raised(tagQuota, 2), untagQuota}, "cloudtrail": {lookupQuota}}, nil, nil, sweepOn, doctor.Fail,
			[]string{"the sweep's 2 TagResource per second (SWEEP_TAG_RATE) takes all of the 2/s quota", "Lower SWEEP_TAG_RATE"}},
		{"access denied", nil, nil, map[string]string{"ListServiceQuotas/kms": "AccessDeniedException"}, sweepOn, doctor.Warn,
			[]string{"cannot read the KMS quotas of eu-west-1", "servicequotas:ListServiceQuotas", "assume the documented defaults", "leaving 8/s for the live handler"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.Set(tc.applied, tc.defaults, tc.errs)
			c := doctor.CheckQuotas(context.Background(), client, "eu-west-1", tc.demand)
			text := c.Summary + "\n" + strings.Join(c.Details, "\n") + "\n" + c.Fix
			if c.Name != doctor.CheckNameQuotas || c.Region != "eu-west-1" || c.Status != tc.status {
				t.Errorf("got %s %s %s, want quotas eu-west-1 %s:\n%s", c.Name, c.Region, c.Status, tc.status, text)
			}
			for _, m := range tc.mentions {
				if !strings.Contains(text, m) {
					t.Errorf("the check does not say %q:\n%s", m, text)
				}
			}
			// Every request in the region checked; the pages followed.
			for _, r := range srv.Requests() {
				if r.Region != "eu-west-1" {
					t.Errorf("got a request in %s, want eu-west-1: %+v", r.Region, r)
				}
			}
			if n := len(tc.applied["kms"]); n > 1 {
				var tokens []string
				for _, r := range srv.Requests() {
					if r.Operation == doctortest.ListServiceQuotas && r.ServiceCode == "kms" {
						tokens = append(tokens, r.NextToken)
					}
				}
				if len(tokens) != n || !slices.Contains(tokens, "") {
					t.Errorf("got ListServiceQuotas pages %q, want all %d pages", tokens, n)
				}
			}
		})
	}
}

// TestReportWarn: a warning neither passes nor fails the report.
func TestReportWarn(t *testing.T) {
	r := doctor.NewReport([]doctor.Check{{Name: doctor.CheckNameSettings, Status: doctor.Pass}, {Name: doctor.CheckNameQuotas, Region: "us-east-1", Status: doctor.Warn, Summary: "cannot read"}})
	if !r.OK || r.Failed != 0 || r.Warned != 1 {
		t.Errorf("got ok %v, %d failed, %d warned; want ok, 0, 1", r.OK, r.Failed, r.Warned)
	}
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"WARN  quotas us-east-1", "1 of 2 checks passed, 1 could not tell."} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text does not say %q:\n%s", want, b.String())
		}
	}
}
