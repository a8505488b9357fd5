package config_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/kms-autotagger/kms-autotagger/internal/config"
)

func TestSweepFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want config.Sweep
		errs []string // the settings the error must name; none for no error
	}{
		{"defaults: off", nil, config.Sweep{Repair: true, LookupRate: config.DefaultSweepLookupRate, TagRate: config.DefaultSweepTagRate}, nil},
		{"every setting", map[string]string{
			"SWEEP_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/111122223333/kms-autotagger-sweep.fifo", "SWEEP_ACCOUNTS": "111122223333, 444455556666,111122223333",
			"SWEEP_REGIONS": "us-east-1,eu-west-1", "SWEEP_REPAIR": "FALSE", "SWEEP_LOOKUP_RATE": "2", "SWEEP_TAG_RATE": "0.5",
			"TRAIL_ARCHIVE_BUCKET": "org-trail-logs", "TRAIL_ARCHIVE_PREFIX": "/ct/",
		}, config.Sweep{QueueURL: "https://sqs.us-east-1.amazonaws.com/111122223333/kms-autotagger-sweep.fifo", Accounts: []string{"111122223333", "444455556666"},
			Regions: []string{"us-east-1", "eu-west-1"}, LookupRate: 2, TagRate: 0.5, TrailBucket: "org-trail-logs", TrailPrefix: "ct"}, nil},
		{"the organization, every region", map[string]string{"SWEEP_ACCOUNTS": "org", "SWEEP_REGIONS": "all"},
			config.Sweep{Org: true, AllRegions: true, Repair: true, LookupRate: 1, TagRate: 2}, nil},
		{"bad values", map[string]string{
			"SWEEP_QUEUE_URL": "kms-autotagger-sweep", "SWEEP_ACCOUNTS": "1234", "SWEEP_REGIONS": "moon", "SWEEP_REPAIR": "yes",
			"SWEEP_LOOKUP_RATE": "3", "SWEEP_TAG_RATE": "0", "TRAIL_ARCHIVE_BUCKET": "Bad_Bucket", "TRAIL_ARCHIVE_PREFIX": "a//b",
		}, config.Sweep{}, []string{"SWEEP_QUEUE_URL", "SWEEP_ACCOUNTS", "SWEEP_REGIONS", "SWEEP_REPAIR", "SWEEP_LOOKUP_RATE", "SWEEP_TAG_RATE", "TRAIL_ARCHIVE_BUCKET", "TRAIL_ARCHIVE_PREFIX"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := config.SweepFromEnv(env(tc.env))
			if len(tc.errs) > 0 {
				if err == nil {
					t.Fatal("got no error, want one per bad setting")
				}
				for _, name := range tc.errs {
					if !strings.Contains(err.Error(), name) {
						t.Errorf("error %q does not name %s", err, name)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if got.On() != (tc.want.QueueURL != "") {
				t.Errorf("On: got %v with queue %q", got.On(), got.QueueURL)
			}
		})
	}
}

// TestSweepSettingsListed: the sweep's settings are rows of Settings, with
// the defaults SweepFromEnv applies, so that --help and the template's test
// know them.
func TestSweepSettingsListed(t *testing.T) {
	want := map[string]string{"SWEEP_QUEUE_URL": "", "SWEEP_ACCOUNTS": "", "SWEEP_REGIONS": "", "SWEEP_REPAIR": "true",
		"SWEEP_LOOKUP_RATE": "1", "SWEEP_TAG_RATE": "2", "TRAIL_ARCHIVE_BUCKET": "", "TRAIL_ARCHIVE_PREFIX": ""}
	got := map[string]string{}
	for _, s := range config.Settings {
		if _, ok := want[s.Env]; ok {
			got[s.Env] = s.Default
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
