package doctor_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/kms-autotagger/kms-autotagger/internal/doctor"
	"github.com/kms-autotagger/kms-autotagger/internal/events"
)

func field(name string, op string, values ...string) types.AdvancedFieldSelector {
	f := types.AdvancedFieldSelector{Field: aws.String(name)}
	switch op {
	case "Equals":
		f.Equals = values
	case "NotEquals":
		f.NotEquals = values
	case "StartsWith":
		f.StartsWith = values
	case "NotStartsWith":
		f.NotStartsWith = values
	case "EndsWith":
		f.EndsWith = values
	case "NotEndsWith":
		f.NotEndsWith = values
	default:
		panic("unknown operator " + op)
	}
	return f
}

func advanced(name string, fields ...types.AdvancedFieldSelector) types.AdvancedEventSelector {
	s := types.AdvancedEventSelector{FieldSelectors: fields}
	if name != "" {
		s.Name = aws.String(name)
	}
	return s
}

var management = field("eventCategory", "Equals", "Management")

// oneSelectorPerCreation is an advanced selector per call that creates a
// key, each named after its call and recording only it, and the reason
// RecordsKMSWrites gives for them.
func oneSelectorPerCreation() ([]types.AdvancedEventSelector, string) {
	var selectors []types.AdvancedEventSelector
	var labels []string
	for _, name := range events.CreationEventNames() {
		selectors = append(selectors, advanced(name, management, field("eventName", "Equals", name)))
		labels = append(labels, fmt.Sprintf("advanced selector %q", name))
	}
	return selectors, strings.Join(labels, " and ") + " records"
}

func TestRecordsKMSWrites(t *testing.T) {
	perCreation, perCreationWhy := oneSelectorPerCreation()
	cases := []struct {
		name     string
		basic    []types.EventSelector
		advanced []types.AdvancedEventSelector
		want     bool
		wantWhy  string
	}{
		{name: "default selector", want: true, wantWhy: "event selector 1 records management events (ReadWriteType All)",
			basic: []types.EventSelector{{ReadWriteType: types.ReadWriteTypeAll, IncludeManagementEvents: aws.Bool(true)}}},
		{name: "unset fields take the API defaults", want: true, wantWhy: "ReadWriteType All",
			basic: []types.EventSelector{{}}},
		{name: "write only", want: true, wantWhy: "ReadWriteType WriteOnly",
			basic: []types.EventSelector{{ReadWriteType: types.ReadWriteTypeWriteOnly, IncludeManagementEvents: aws.Bool(true)}}},
		{name: "read only", want: false, wantWhy: "records only read events (ReadWriteType ReadOnly)",
			basic: []types.EventSelector{{ReadWriteType: types.ReadWriteTypeReadOnly, IncludeManagementEvents: aws.Bool(true)}}},
		{name: "management events excluded", want: false, wantWhy: "excludes management events (IncludeManagementEvents false)",
			basic: []types.EventSelector{{ReadWriteType: types.ReadWriteTypeAll, IncludeManagementEvents: aws.Bool(false)}}},
		{name: "KMS excluded", want: false, wantWhy: "excludes kms.amazonaws.com (ExcludeManagementEventSources)",
			basic: []types.EventSelector{{ReadWriteType: types.ReadWriteTypeAll, IncludeManagementEvents: aws.Bool(true),
				ExcludeManagementEventSources: []string{"rdsdata.amazonaws.com", "kms.amazonaws.com"}}}},
		{name: "another source excluded", want: true, wantWhy: "including kms.amazonaws.com",
			basic: []types.EventSelector{{ReadWriteType: types.ReadWriteTypeAll, IncludeManagementEvents: aws.Bool(true),
				ExcludeManagementEventSources: []string{"rdsdata.amazonaws.com"}}}},
		{name: "second selector records", want: true, wantWhy: "event selector 2 records",
			basic: []types.EventSelector{
				{ReadWriteType: types.ReadWriteTypeAll, IncludeManagementEvents: aws.Bool(false)},
				{ReadWriteType: types.ReadWriteTypeWriteOnly, IncludeManagementEvents: aws.Bool(true)},
			}},
		{name: "every selector fails, every reason given", want: false,
			wantWhy: "event selector 1 excludes management events (IncludeManagementEvents false); event selector 2 records only read events",
			basic: []types.EventSelector{
				{ReadWriteType: types.ReadWriteTypeAll, IncludeManagementEvents: aws.Bool(false)},
				{ReadWriteType: types.ReadWriteTypeReadOnly, IncludeManagementEvents: aws.Bool(true)},
			}},
		{name: "no selectors", want: false, wantWhy: "no event selectors"},

		{name: "advanced: all management events", want: true,
			wantWhy:  `advanced selector "Management events" records the management write events of kms.amazonaws.com`,
			advanced: []types.AdvancedEventSelector{advanced("Management events", management)}},
		{name: "advanced: write events only", want: true,
			advanced: []types.AdvancedEventSelector{advanced("", management, field("readOnly", "Equals", "false"))}},
		{name: "advanced: read events only", want: false,
			wantWhy:  "no advanced event selector records kms:" + events.EventNameCreateKey + ": advanced selector 1 excludes them (readOnly Equals [true])",
			advanced: []types.AdvancedEventSelector{advanced("", management, field("readOnly", "Equals", "true"))}},
		{name: "advanced: KMS excluded", want: false,
			wantWhy:  `advanced selector "no kms" excludes them (eventSource NotEquals [kms.amazonaws.com])`,
			advanced: []types.AdvancedEventSelector{advanced("no kms", management, field("eventSource", "NotEquals", "kms.amazonaws.com"))}},
		{name: "advanced: another source excluded", want: true,
			advanced: []types.AdvancedEventSelector{advanced("", management, field("eventSource", "NotEquals", "rdsdata.amazonaws.com"))}},
		{name: "advanced: data events only", want: false,
			wantWhy: "does not select management events (eventCategory Equals [Data])",
			advanced: []types.AdvancedEventSelector{advanced("s3", field("eventCategory", "Equals", "Data"),
				field("resources.type", "Equals", "AWS::S3::Object"))}},
		{name: "advanced: data selector then management selector", want: true, wantWhy: "advanced selector 2 records",
			advanced: []types.AdvancedEventSelector{
				advanced("", field("eventCategory", "Equals", "Data"), field("resources.type", "Equals", "AWS::S3::Object")),
				advanced("", management),
			}},
		{name: "advanced: read selector and write selector", want: true, wantWhy: `advanced selector "writes" records`,
			advanced: []types.AdvancedEventSelector{
				advanced("reads", management, field("readOnly", "Equals", "true")),
				advanced("writes", management, field("readOnly", "Equals", "false")),
			}},
		{name: "advanced: only CreateKey", want: false, wantWhy: "no advanced event selector records kms:" + events.EventNameReplicateKey,
			advanced: []types.AdvancedEventSelector{advanced("", management, field("eventName", "Equals", events.EventNameCreateKey))}},
		{name: "advanced: each creation call by its own selector", want: true,
			wantWhy: perCreationWhy, advanced: perCreation},
		{name: "advanced: a field the doctor cannot judge", want: false,
			wantWhy: "filters on userIdentity.arn, which the doctor cannot judge",
			advanced: []types.AdvancedEventSelector{advanced("", management,
				field("userIdentity.arn", "StartsWith", "arn:aws:sts::111122223333:assumed-role/Deployer"))}},
		{name: "advanced: StartsWith and EndsWith", want: true,
			advanced: []types.AdvancedEventSelector{advanced("", management,
				field("eventSource", "StartsWith", "s3.", "kms."), field("eventSource", "EndsWith", ".amazonaws.com"))}},
		{name: "advanced: NotStartsWith", want: false, wantWhy: "eventSource NotStartsWith [km]",
			advanced: []types.AdvancedEventSelector{advanced("", management, field("eventSource", "NotStartsWith", "km"))}},
		{name: "advanced: NotEndsWith", want: false, wantWhy: "eventName NotEndsWith [Key]",
			advanced: []types.AdvancedEventSelector{advanced("", management, field("eventName", "NotEndsWith", "Key"))}},
		{name: "advanced win over basic", want: false, wantWhy: "readOnly Equals [true]",
			basic:    []types.EventSelector{{}},
			advanced: []types.AdvancedEventSelector{advanced("", management, field("readOnly", "Equals", "true"))}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, why := doctor.RecordsKMSWrites(tc.basic, tc.advanced)
			if got != tc.want {
				t.Errorf("RecordsKMSWrites = %v (%s), want %v", got, why, tc.want)
			}
			if !strings.Contains(why, tc.wantWhy) {
				t.Errorf("reason = %q, want it to contain %q", why, tc.wantWhy)
			}
			if why == "" {
				t.Error("reason is empty, want one")
			}
		})
	}
}
