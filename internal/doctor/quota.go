package doctor

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	sqtypes "github.com/aws/aws-sdk-go-v2/service/servicequotas/types"
)

// CheckNameQuotas is the name of the quotas check.
const CheckNameQuotas = "quotas"

// QuotaAPI is the Service Quotas calls the quotas check makes; they need
// servicequotas:ListServiceQuotas and servicequotas:ListAWSDefaultServiceQuotas.
type QuotaAPI interface {
	ListServiceQuotas(ctx context.Context, in *servicequotas.ListServiceQuotasInput, optFns ...func(*servicequotas.Options)) (*servicequotas.ListServiceQuotasOutput, error)
	ListAWSDefaultServiceQuotas(ctx context.Context, in *servicequotas.ListAWSDefaultServiceQuotasInput, optFns ...func(*servicequotas.Options)) (*servicequotas.ListAWSDefaultServiceQuotasOutput, error)
}

var _ QuotaAPI = (*servicequotas.Client)(nil)

// The quotas the tagger, the sweep, the audit and the backfill share, as
// Service Quotas names them. Their quota codes are not published in the
// KMS and CloudTrail documentation, so the check lists each service's
// quotas and matches the names, which the documentation does give: KMS's
// request quotas table names "TagResource request rate" (10 per second per
// account and region) and "UntagResource request rate" (5); CloudTrail
// documents LookupEvents at 2 per second per account and region, which
// cannot be raised, and may list it in Service Quotas by a name with
// LookupEvents in it.
const (
	ServiceCodeKMS         = "kms"
	ServiceCodeCloudTrail  = "cloudtrail"
	QuotaNameTagResource   = "TagResource request rate"
	QuotaNameUntagResource = "UntagResource request rate"
	// lookupEventsName is what the name of CloudTrail's LookupEvents quota
	// holds.
	lookupEventsName = "lookupevents"

	// DocumentedTagResource, DocumentedUntagResource and
	// DocumentedLookupEvents are the documented defaults, per second per
	// account and region.
	DocumentedTagResource   = 10.0
	DocumentedUntagResource = 5.0
	DocumentedLookupEvents  = 2.0
)

// Demand is what the tools send to each account and region, per second:
// the figures the quotas check sets the quotas against.
type Demand struct {
	// HandlerTagRate is TAG_RATE_LIMIT, per instance of the function (0:
	// no limit).
	HandlerTagRate float64
	// SweepOn says the scheduled sweep is configured; SweepTagRate and
	// SweepLookupRate are its rates (SWEEP_TAG_RATE, SWEEP_LOOKUP_RATE).
	SweepOn                       bool
	SweepTagRate, SweepLookupRate float64
	// CLITagRate and CLILookupRate are the defaults of autotagger audit
	// --repair and backfill (--tag-rate, --lookup-rate).
	CLITagRate, CLILookupRate float64
}

// quota is one quota as the check found it.
type quota struct {
	name   string
	value  float64
	source string // "applied", "default" or "documented"
	code   string
}

func (q quota) String() string {
	s := fmt.Sprintf("%s %g/s (%s", q.name, q.value, q.source)
	if q.code != "" {
		s += ", " + q.code
	}
	return s + ")"
}

// CheckQuotas reads, in region, the caller's account's applied KMS
// TagResource and UntagResource quotas and CloudTrail's LookupEvents quota
// (ListServiceQuotas; the AWS defaults where Service Quotas has no applied
// value; the documented value where it lists none) and sets them against
// the tools' rates. It fails when the sweep's rate leaves the live handler
// nothing; it warns when the quotas cannot be read.
func CheckQuotas(ctx context.Context, api QuotaAPI, region string, d Demand) Check {
	c := Check{Name: CheckNameQuotas, Region: region}
	inRegion := func(o *servicequotas.Options) { o.Region = region }
	kms, err := listQuotas(ctx, api, ServiceCodeKMS, inRegion)
	if err != nil {
		c.Status, c.Summary = Warn, fmt.Sprintf("cannot read the KMS quotas of %s: %v; the rates below assume the documented defaults", region, err)
		c.Fix = callAdvice(err, "servicequotas:ListServiceQuotas and servicequotas:ListAWSDefaultServiceQuotas")
		c.Details = headroom(d, quota{QuotaNameTagResource, DocumentedTagResource, "documented", ""}, quota{QuotaNameUntagResource, DocumentedUntagResource, "documented", ""},
			quota{"LookupEvents", DocumentedLookupEvents, "documented", ""})
		return c
	}
	tag := find(kms, func(n string) bool { return n == QuotaNameTagResource }, QuotaNameTagResource, DocumentedTagResource)
	untag := find(kms, func(n string) bool { return n == QuotaNameUntagResource }, QuotaNameUntagResource, DocumentedUntagResource)
	trail, err := listQuotas(ctx, api, ServiceCodeCloudTrail, inRegion)
	lookup := find(trail, func(n string) bool { return strings.Contains(strings.ToLower(n), lookupEventsName) }, "LookupEvents", DocumentedLookupEvents)
	if err != nil && !notListed(err) {
		c.Details = append(c.Details, fmt.Sprintf("CloudTrail's quotas cannot be read (%v): LookupEvents is taken at its documented %g/s", err, DocumentedLookupEvents))
	}
	c.Summary = fmt.Sprintf("KMS %s, %s; CloudTrail %s", tag, untag, lookup)
	c.Details = append(c.Details, headroom(d, tag, untag, lookup)...)
	c.Status = Pass
	var problems []string
	if d.SweepOn && tag.value <= d.SweepTagRate {
		problems = append(problems, fmt.Sprintf("the sweep's %g TagResource per second (SWEEP_TAG_RATE) takes all of the %g/s quota", d.SweepTagRate, tag.value))
	}
	if d.SweepOn && untag.value < d.SweepTagRate {
		problems = append(problems, fmt.Sprintf("the sweep's %g tag writes per second (SWEEP_TAG_RATE) exceed the %g/s UntagResource quota", d.SweepTagRate, untag.value))
	}
	if d.SweepOn && lookup.value <= d.SweepLookupRate {
		problems = append(problems, fmt.Sprintf("the sweep's %g LookupEvents per second (SWEEP_LOOKUP_RATE) take all of the %g/s quota", d.SweepLookupRate, lookup.value))
	}
	if len(problems) > 0 {
		c.Status = Fail
		c.Summary += ": " + strings.Join(problems, "; ")
		c.Fix = fmt.Sprintf("Lower SWEEP_TAG_RATE and SWEEP_LOOKUP_RATE below the quotas (defaults 2 and 1), or ask for a higher KMS quota in Service Quotas (region %s); CloudTrail's LookupEvents quota cannot be raised.", region)
	}
	return c
}

// headroom says what each tool takes of the quotas and what that leaves
// the live handler.
func headroom(d Demand, tag, untag, lookup quota) []string {
	var out []string
	handler := "no limit per instance (TAG_RATE_LIMIT 0)"
	if d.HandlerTagRate > 0 {
		handler = fmt.Sprintf("TAG_RATE_LIMIT %g per instance, so %d instances at once", d.HandlerTagRate, int(tag.value/d.HandlerTagRate))
	}
	if d.SweepOn {
		out = append(out, fmt.Sprintf("TagResource: the sweep takes %g/s (SWEEP_TAG_RATE), leaving %g/s for the live handler (%s); UntagResource (%g/s) is within the same %g/s of the sweep",
			d.SweepTagRate, tag.value-d.SweepTagRate, handler, untag.value, d.SweepTagRate))
		out = append(out, fmt.Sprintf("LookupEvents: the sweep takes %g/s (SWEEP_LOOKUP_RATE), leaving %g/s for the handler's tamper repair and the console's event history",
			d.SweepLookupRate, lookup.value-d.SweepLookupRate))
	} else {
		out = append(out, fmt.Sprintf("TagResource: the live handler has all %g/s (%s); the sweep is off", tag.value, handler))
	}
	out = append(out, fmt.Sprintf("autotagger audit --repair and backfill take %g tag writes/s (--tag-rate), leaving %g/s while they run; %g LookupEvents/s (--lookup-rate), leaving %g/s: lower --lookup-rate to 1 when the sweep or tamper repair runs at the same time",
		d.CLITagRate, tag.value-d.CLITagRate, d.CLILookupRate, lookup.value-d.CLILookupRate))
	return out
}

// listQuotas returns the applied quotas of service, and the AWS defaults
// of those Service Quotas has no applied value of.
func listQuotas(ctx context.Context, api QuotaAPI, service string, optFns ...func(*servicequotas.Options)) (map[string]quota, error) {
	found := map[string]quota{}
	pages := servicequotas.NewListServiceQuotasPaginator(api, &servicequotas.ListServiceQuotasInput{ServiceCode: aws.String(service)})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx, optFns...)
		if err != nil {
			return nil, fmt.Errorf("%s ListServiceQuotas: %w", service, err)
		}
		for _, q := range out.Quotas {
			add(found, q, "applied")
		}
	}
	defaults := servicequotas.NewListAWSDefaultServiceQuotasPaginator(api, &servicequotas.ListAWSDefaultServiceQuotasInput{ServiceCode: aws.String(service)})
	for defaults.HasMorePages() {
		out, err := defaults.NextPage(ctx, optFns...)
		if err != nil {
			if len(found) > 0 {
				break // the applied values are what matter
			}
			return nil, fmt.Errorf("%s ListAWSDefaultServiceQuotas: %w", service, err)
		}
		for _, q := range out.Quotas {
			if _, ok := found[aws.ToString(q.QuotaName)]; !ok {
				add(found, q, "default")
			}
		}
	}
	return found, nil
}

func add(found map[string]quota, q sqtypes.ServiceQuota, source string) {
	name := aws.ToString(q.QuotaName)
	if name == "" || q.Value == nil {
		return
	}
	found[name] = quota{name: name, value: *q.Value, source: source, code: aws.ToString(q.QuotaCode)}
}

// find returns the quota whose name match accepts, or the documented value
// under name.
func find(quotas map[string]quota, match func(string) bool, name string, documented float64) quota {
	for n, q := range quotas {
		if match(n) {
			q.name = name
			return q
		}
	}
	return quota{name: name, value: documented, source: "documented: not in Service Quotas"}
}

// notListed reports whether err says Service Quotas has no quotas of the
// service.
func notListed(err error) bool {
	return errorCode(err) == "NoSuchResourceException"
}
