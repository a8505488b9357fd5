package doctor

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/kms-autotagger/kms-autotagger/internal/events"
)

// TrailAPI is the CloudTrail calls the cloudtrail check makes; they need
// cloudtrail:DescribeTrails, cloudtrail:GetTrailStatus and
// cloudtrail:GetEventSelectors.
type TrailAPI interface {
	DescribeTrails(ctx context.Context, in *cloudtrail.DescribeTrailsInput, optFns ...func(*cloudtrail.Options)) (*cloudtrail.DescribeTrailsOutput, error)
	GetTrailStatus(ctx context.Context, in *cloudtrail.GetTrailStatusInput, optFns ...func(*cloudtrail.Options)) (*cloudtrail.GetTrailStatusOutput, error)
	GetEventSelectors(ctx context.Context, in *cloudtrail.GetEventSelectorsInput, optFns ...func(*cloudtrail.Options)) (*cloudtrail.GetEventSelectorsOutput, error)
}

var _ TrailAPI = (*cloudtrail.Client)(nil)

// kmsEventSource is the CloudTrail eventSource of KMS.
const kmsEventSource = "kms.amazonaws.com"

// kmsWriteEvents are the events the tagger reacts to, the calls that create
// a key (events.CreationEventNames), as the advanced event selector fields
// see them.
var kmsWriteEvents = func() []map[string]string {
	var evs []map[string]string
	for _, name := range events.CreationEventNames() {
		evs = append(evs, map[string]string{"eventCategory": "Management", "eventSource": kmsEventSource, "eventName": name, "readOnly": "false"})
	}
	return evs
}()

const createTrailFix = "Create a multi-Region trail, which covers every region including those enabled later, and start it: " +
	"aws cloudtrail create-trail --name management-events --s3-bucket-name BUCKET --is-multi-region-trail && " +
	"aws cloudtrail start-logging --name management-events (the bucket needs the bucket policy CloudTrail asks for). " +
	"Its default event selector records all management events."

// CheckTrails checks that in region some trail is logging and records the
// management write events of KMS: without one, EventBridge in region
// receives no "AWS API Call via CloudTrail" event and keys created there
// are not tagged. Every call is made in region, with trail ARNs, so that
// multi-Region and organization trails homed elsewhere (shadow trails)
// count.
func CheckTrails(ctx context.Context, api TrailAPI, region string) Check {
	c := Check{Name: CheckNameCloudTrail, Region: region}
	inRegion := func(o *cloudtrail.Options) { o.Region = region }
	out, err := api.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{IncludeShadowTrails: aws.Bool(true)}, inRegion)
	if err != nil {
		c.Status, c.Summary = Fail, fmt.Sprintf("cannot list the trails of %s: %v", region, err)
		c.Fix = callAdvice(err, "cloudtrail:DescribeTrails")
		return c
	}
	var good []string
	var fixes []string
	covering := 0
	for _, t := range out.TrailList {
		f := judgeTrail(ctx, api, region, t, inRegion)
		c.Details = append(c.Details, f.text)
		if f.covers {
			covering++
		}
		if f.ok {
			good = append(good, aws.ToString(t.Name))
		} else if f.fix != "" && !slices.Contains(fixes, f.fix) {
			fixes = append(fixes, f.fix)
		}
	}
	switch {
	case len(good) > 0:
		c.Status = Pass
		c.Summary = fmt.Sprintf("trail %s logs the KMS management write events of %s", strings.Join(good, ", "), region)
	case covering == 0:
		c.Status = Fail
		c.Summary = fmt.Sprintf("no CloudTrail trail covers %s: EventBridge receives no KMS API call events there, so no key created there is tagged", region)
		c.Fix = createTrailFix
	default:
		c.Status = Fail
		c.Summary = fmt.Sprintf("no trail covering %s both logs and records KMS management write events: EventBridge receives no %s there",
			region, strings.Join(events.CreationEventNames(), " or "))
		c.Fix = strings.Join(fixes, " ")
		if len(fixes) > 1 {
			c.Fix = "Any one of these: " + strings.Join(fixes, " Or: ")
		}
	}
	return c
}

// trailFinding is what was found about one trail.
type trailFinding struct {
	covers bool   // the trail covers the region checked
	ok     bool   // it logs and records KMS write events there
	text   string // one line for the report
	fix    string // what to do when not ok
}

func judgeTrail(ctx context.Context, api TrailAPI, region string, t types.Trail, inRegion func(*cloudtrail.Options)) trailFinding {
	id := aws.ToString(t.TrailARN)
	if id == "" {
		id = aws.ToString(t.Name)
	}
	home := aws.ToString(t.HomeRegion)
	desc := describeTrail(t)
	if home != "" && home != region && !aws.ToBool(t.IsMultiRegionTrail) {
		return trailFinding{text: fmt.Sprintf("%s: a single-Region trail of %s, it does not cover %s", desc, home, region)}
	}
	status, err := api.GetTrailStatus(ctx, &cloudtrail.GetTrailStatusInput{Name: aws.String(id)}, inRegion)
	if err != nil {
		return trailFinding{covers: true, text: fmt.Sprintf("%s: cannot read its status: %v", desc, err),
			fix: callAdvice(err, "cloudtrail:GetTrailStatus")}
	}
	selectors, err := api.GetEventSelectors(ctx, &cloudtrail.GetEventSelectorsInput{TrailName: aws.String(id)}, inRegion)
	if err != nil {
		return trailFinding{covers: true, text: fmt.Sprintf("%s: cannot read its event selectors: %v", desc, err),
			fix: callAdvice(err, "cloudtrail:GetEventSelectors")}
	}
	records, why := RecordsKMSWrites(selectors.EventSelectors, selectors.AdvancedEventSelectors)
	logging := aws.ToBool(status.IsLogging)
	if home == "" {
		home = region
	}
	startFix := fmt.Sprintf("Start logging on %s: aws cloudtrail start-logging --name %s --region %s.", aws.ToString(t.Name), id, home)
	selectorFix := fmt.Sprintf("Change the event selectors of %s so that one records management events with ReadWriteType All or "+
		"WriteOnly without excluding %s (basic), or selects eventCategory Management without a readOnly = true or "+
		"eventSource != %s condition (advanced): aws cloudtrail put-event-selectors --trail-name %s --region %s ... "+
		"replaces all its selectors, so keep the data-event ones it has.", aws.ToString(t.Name), kmsEventSource, kmsEventSource, id, home)
	f := trailFinding{covers: true}
	switch {
	case logging && records:
		f.ok, f.text = true, fmt.Sprintf("%s: logging; %s", desc, why)
	case !logging && records:
		f.text, f.fix = fmt.Sprintf("%s: NOT logging (%s)", desc, why), startFix
	case logging && !records:
		f.text, f.fix = fmt.Sprintf("%s: logging, but %s", desc, why), selectorFix
	default:
		f.text, f.fix = fmt.Sprintf("%s: NOT logging, and %s", desc, why), startFix+" "+selectorFix
	}
	return f
}

func describeTrail(t types.Trail) string {
	var attrs []string
	if h := aws.ToString(t.HomeRegion); h != "" {
		attrs = append(attrs, "home "+h)
	}
	if aws.ToBool(t.IsMultiRegionTrail) {
		attrs = append(attrs, "multi-Region")
	}
	if aws.ToBool(t.IsOrganizationTrail) {
		attrs = append(attrs, "organization")
	}
	s := "trail " + aws.ToString(t.Name)
	if len(attrs) > 0 {
		s += " (" + strings.Join(attrs, ", ") + ")"
	}
	return s
}

// RecordsKMSWrites reports whether a trail with these event selectors (as
// GetEventSelectors returns them: basic or advanced, never both) records
// the management write events of kms.amazonaws.com that create a key
// (events.CreationEventNames), and says why or why not.
//
// A basic selector records them when it includes management events
// (IncludeManagementEvents true or unset, the API's default), its
// ReadWriteType is All (or unset) or WriteOnly, and its
// ExcludeManagementEventSources does not hold kms.amazonaws.com.
//
// An advanced selector records an event when each of its field selectors
// matches the event's eventCategory (Management), eventSource, eventName
// and readOnly ("false"): every operator given must hold, Equals, StartsWith
// and EndsWith for at least one of their values, NotEquals, NotStartsWith
// and NotEndsWith for none. A selector on any other field is not counted,
// since the doctor cannot tell what it keeps.
func RecordsKMSWrites(basic []types.EventSelector, advanced []types.AdvancedEventSelector) (bool, string) {
	if len(advanced) > 0 {
		return advancedRecords(advanced)
	}
	if len(basic) == 0 {
		return false, "it has no event selectors, so it records no management events"
	}
	var why []string
	for i, s := range basic {
		label := fmt.Sprintf("event selector %d", i+1)
		rw := s.ReadWriteType
		if rw == "" {
			rw = types.ReadWriteTypeAll
		}
		switch {
		case s.IncludeManagementEvents != nil && !*s.IncludeManagementEvents:
			why = append(why, label+" excludes management events (IncludeManagementEvents false)")
		case rw != types.ReadWriteTypeAll && rw != types.ReadWriteTypeWriteOnly:
			why = append(why, fmt.Sprintf("%s records only read events (ReadWriteType %s)", label, rw))
		case slices.Contains(s.ExcludeManagementEventSources, kmsEventSource):
			why = append(why, fmt.Sprintf("%s excludes %s (ExcludeManagementEventSources)", label, kmsEventSource))
		default:
			return true, fmt.Sprintf("%s records management events (ReadWriteType %s) including %s", label, rw, kmsEventSource)
		}
	}
	return false, strings.Join(why, "; ")
}

func advancedRecords(selectors []types.AdvancedEventSelector) (bool, string) {
	var recordedBy []string
	for _, ev := range kmsWriteEvents {
		var by string
		var why []string
		for i, s := range selectors {
			label := fmt.Sprintf("advanced selector %d", i+1)
			if n := aws.ToString(s.Name); n != "" {
				label = fmt.Sprintf("advanced selector %q", n)
			}
			ok, reason := selectorMatches(s, ev)
			if ok {
				by = label
				break
			}
			why = append(why, label+" "+reason)
		}
		if by == "" {
			return false, fmt.Sprintf("no advanced event selector records kms:%s: %s", ev["eventName"], strings.Join(why, "; "))
		}
		if !slices.Contains(recordedBy, by) {
			recordedBy = append(recordedBy, by)
		}
	}
	return true, strings.Join(recordedBy, " and ") + " records the management write events of " + kmsEventSource
}

// selectorMatches reports whether every field selector of s matches ev, and
// otherwise which one does not.
func selectorMatches(s types.AdvancedEventSelector, ev map[string]string) (bool, string) {
	for _, f := range s.FieldSelectors {
		field := aws.ToString(f.Field)
		v, known := ev[field]
		if !known {
			return false, fmt.Sprintf("filters on %s, which the doctor cannot judge for management events", field)
		}
		if !fieldMatches(f, v) {
			if field == "eventCategory" {
				return false, fmt.Sprintf("does not select management events (%s)", describeField(f))
			}
			return false, fmt.Sprintf("excludes them (%s)", describeField(f))
		}
	}
	return true, ""
}

func fieldMatches(f types.AdvancedFieldSelector, v string) bool {
	anyOf := func(values []string, test func(v, x string) bool) bool {
		for _, x := range values {
			if test(v, x) {
				return true
			}
		}
		return false
	}
	equal := func(v, x string) bool { return v == x }
	positive := []struct {
		values []string
		test   func(v, x string) bool
	}{{f.Equals, equal}, {f.StartsWith, strings.HasPrefix}, {f.EndsWith, strings.HasSuffix}}
	for _, p := range positive {
		if len(p.values) > 0 && !anyOf(p.values, p.test) {
			return false
		}
	}
	return !anyOf(f.NotEquals, equal) && !anyOf(f.NotStartsWith, strings.HasPrefix) && !anyOf(f.NotEndsWith, strings.HasSuffix)
}

func describeField(f types.AdvancedFieldSelector) string {
	var parts []string
	for _, op := range []struct {
		name   string
		values []string
	}{
		{"Equals", f.Equals}, {"StartsWith", f.StartsWith}, {"EndsWith", f.EndsWith},
		{"NotEquals", f.NotEquals}, {"NotStartsWith", f.NotStartsWith}, {"NotEndsWith", f.NotEndsWith},
	} {
		if len(op.values) > 0 {
			parts = append(parts, fmt.Sprintf("%s %s [%s]", aws.ToString(f.Field), op.name, strings.Join(op.values, ", ")))
		}
	}
	return strings.Join(parts, ", ")
}
