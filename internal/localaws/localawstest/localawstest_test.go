package localawstest_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kms-autotagger/kms-autotagger/internal/awssqs"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws/localawstest"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// TestStartDefaults checks the environment Start sets by default and the
// Stack's helpers against the stand-ins it started.
func TestStartDefaults(t *testing.T) {
	t.Setenv("MAX_BACKOFF", "1s")
	s := localawstest.Start(t, localawstest.Options{Env: map[string]string{
		"MAX_BACKOFF":         "", // an override to empty is set, not dropped
		"AWS_ACCESS_KEY_ID":   "AKIDOTHER",
		"DEAD_LETTER_RESERVE": "2s",
	}})
	if s.SQS == nil || s.CloudTrail != nil {
		t.Fatalf("got SQS %v CloudTrail %v, want an SQS stand-in and no CloudTrail", s.SQS, s.CloudTrail)
	}
	if got, want := s.KMS.Regions(), localawstest.DefaultRegions; !slices.Equal(got, want) {
		t.Errorf("KMS regions: got %v, want %v", got, want)
	}
	if want := s.SQS.URL() + "/" + localaws.DefaultAccount + "/" + localawstest.QueueName; s.QueueURL != want {
		t.Errorf("queue URL: got %s, want %s", s.QueueURL, want)
	}
	wantEnv := map[string]string{
		"AWS_ENDPOINT_URL_KMS":        s.KMS.URL(),
		"AWS_ENDPOINT_URL_SQS":        s.SQS.URL(),
		"AWS_REGION":                  "us-east-1",
		"AWS_ACCESS_KEY_ID":           "AKIDOTHER",
		"AWS_SECRET_ACCESS_KEY":       "secret",
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"DEAD_LETTER_QUEUE_URL":       s.QueueURL,
		"MAX_BACKOFF":                 "",
		"DEAD_LETTER_RESERVE":         "2s",
	}
	for _, name := range slices.Sorted(maps.Keys(wantEnv)) {
		if got, ok := os.LookupEnv(name); !ok || got != wantEnv[name] {
			t.Errorf("%s: got %q (set %v), want %q", name, got, ok, wantEnv[name])
		}
	}

	east, west := s.CreateKey(t, "us-east-1"), s.CreateKey(t, "eu-west-1")
	if localawstest.RegionOf(east) != "us-east-1" || localawstest.RegionOf(west) != "eu-west-1" {
		t.Errorf("keys: got %s and %s, want one in us-east-1 and one in eu-west-1", east, west)
	}
	if got := s.Tags(t, west); len(got) != 0 {
		t.Errorf("tags of a new key: got %v, want none", got)
	}
	want := map[string]string{"CreatedBy": "arn:aws:iam::111122223333:user/alice", "Project": "apollo"}
	s.TagKey(t, west, want)
	if got := s.Tags(t, west); !reflect.DeepEqual(got, want) {
		t.Errorf("tags after TagKey: got %v, want %v", got, want)
	}
	if got := localawstest.KeyTags(t, s.KMS, east); len(got) != 0 {
		t.Errorf("tags of the other key: got %v, want none", got)
	}

	if got := s.DeadLetters(t); len(got) != 0 {
		t.Errorf("dead letters of a new queue: got %d, want 0", len(got))
	}
	dlq := &awssqs.DeadLetterQueue{SQS: s.SQS.Client(), URL: s.QueueURL}
	const letters = 13 // more than one ReceiveMessage returns
	for i := range letters {
		d := &tagger.DeadLetter{Version: tagger.DeadLetterVersion, Kind: tagger.DeadLetterKind, EventID: fmt.Sprintf("ev-%02d", i),
			EventName: "CreateKey", KeyARN: east, Error: tagger.DeadLetterError{Code: "KMSInvalidStateException", Class: "permanent"}}
		if err := dlq.Send(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
	got := s.DeadLetters(t)
	var ids []string
	for _, m := range got {
		ids = append(ids, m.Record.EventID)
		if m.Record.KeyARN != east || m.Record.Error.Code != "KMSInvalidStateException" {
			t.Errorf("record: got %+v, want key %s and KMSInvalidStateException", m.Record, east)
		}
		wantAttrs := map[string]string{tagger.AttrErrorCode: "KMSInvalidStateException", tagger.AttrEventName: "CreateKey", tagger.AttrVersion: "1"}
		if !reflect.DeepEqual(m.Attributes, wantAttrs) {
			t.Errorf("attributes: got %v, want %v", m.Attributes, wantAttrs)
		}
	}
	slices.Sort(ids)
	if len(ids) != letters || ids[0] != "ev-00" || ids[letters-1] != fmt.Sprintf("ev-%02d", letters-1) || len(slices.Compact(slices.Clone(ids))) != letters {
		t.Errorf("drained event ids: got %v, want ev-00 to ev-%02d once each", ids, letters-1)
	}
	if got := s.DeadLetters(t); len(got) != 0 {
		t.Errorf("dead letters after draining: got %d, want 0", len(got))
	}
}

// TestStartWithoutSQS checks that NoSQS leaves the SQS variables as they
// were, and that CloudTrail and Regions are honoured.
func TestStartWithoutSQS(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:1")
	t.Setenv("DEAD_LETTER_QUEUE_URL", "")
	s := localawstest.Start(t, localawstest.Options{
		Regions:    []string{"eu-west-1"},
		Seeds:      map[string][]localaws.SeedKey{"eu-west-1": {{KeyID: "mrk-1f2e3d4c5b6a47988796a5b4c3d2e1f0"}}},
		NoSQS:      true,
		CloudTrail: &localaws.CloudTrailOptions{},
	})
	if s.SQS != nil || s.QueueURL != "" || s.CloudTrail == nil {
		t.Fatalf("got SQS %v queue %q CloudTrail %v, want no SQS and a CloudTrail stand-in", s.SQS, s.QueueURL, s.CloudTrail)
	}
	if got := s.KMS.Regions(); !slices.Equal(got, []string{"eu-west-1"}) {
		t.Errorf("KMS regions: got %v, want [eu-west-1]", got)
	}
	for name, want := range map[string]string{
		"AWS_ENDPOINT_URL_SQS":        "http://127.0.0.1:1",
		"DEAD_LETTER_QUEUE_URL":       "",
		"AWS_ENDPOINT_URL_CLOUDTRAIL": s.CloudTrail.URL(),
		"AWS_ENDPOINT_URL_KMS":        s.KMS.URL(),
		"AWS_REGION":                  "us-east-1",
	} {
		if got := os.Getenv(name); got != want {
			t.Errorf("%s: got %q, want %q", name, got, want)
		}
	}
	seeded := s.KMS.KeyARN("eu-west-1", "mrk-1f2e3d4c5b6a47988796a5b4c3d2e1f0")
	if got := s.Tags(t, seeded); len(got) != 0 {
		t.Errorf("tags of the seeded key: got %v, want none", got)
	}
}

func TestRegionOf(t *testing.T) {
	tests := []struct{ arn, want string }{
		{"arn:aws:kms:eu-west-1:111122223333:key/mrk-1f2e3d4c5b6a47988796a5b4c3d2e1f0", "eu-west-1"},
		{"arn:aws-cn:kms:cn-north-1:111122223333:alias/a:b", "cn-north-1"},
		{"arn:aws:iam::111122223333:user/alice", ""},
		{"not an arn", ""},
	}
	for _, tt := range tests {
		if got := localawstest.RegionOf(tt.arn); got != tt.want {
			t.Errorf("RegionOf(%q): got %q, want %q", tt.arn, got, tt.want)
		}
	}
}

func TestSyncBufferConcurrentWriters(t *testing.T) {
	var b localawstest.SyncBuffer
	const writers, lines = 8, 100
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range lines {
				fmt.Fprintf(&b, "writer %d line %d\n", w, i)
				_ = b.String()
			}
		})
	}
	wg.Wait()
	got := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(got) != writers*lines {
		t.Fatalf("lines: got %d, want %d", len(got), writers*lines)
	}
	for _, line := range got {
		if !strings.HasPrefix(line, "writer ") {
			t.Errorf("line %q is interleaved", line)
		}
	}
}
