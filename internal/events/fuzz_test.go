package events_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kms-autotagger/kms-autotagger/internal/events"
)

// FuzzDecode feeds Decode and DecodeRecord arbitrary bytes, seeded with every
// fixture, and checks that they never panic and that their results keep the
// promises the tagger relies on.
func FuzzDecode(f *testing.F) {
	addFixtureSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := events.Decode(raw)
		checkInvariants(t, "Decode", d, err)
		checkEnvelope(t, raw, d, err)
		d, err = events.DecodeRecord(raw)
		checkInvariants(t, "DecodeRecord", d, err)
		checkStackOperation(t, raw)
	})
}

// checkStackOperation checks that DecodeStackOperation returns an operation
// or an error, never both nor neither, and an operation with what the stack
// attribution relies on: an event id, a time in UTC, a region, and a call
// of CloudFormation's that starts an operation or creates a change set.
func checkStackOperation(t *testing.T, raw []byte) {
	t.Helper()
	op, err := events.DecodeStackOperation(raw)
	switch {
	case err != nil && op != nil:
		t.Fatalf("DecodeStackOperation: got %+v and error %v, want one of them", *op, err)
	case err != nil:
		return
	case op == nil:
		t.Fatal("DecodeStackOperation: got neither an operation nor an error")
	}
	if op.EventID == "" || op.Region == "" || op.EventTime.IsZero() || op.EventTime.Location().String() != "UTC" {
		t.Fatalf("DecodeStackOperation: got %+v, want an event id, a region and a time in UTC", *op)
	}
	if op.EventName != events.EventNameCreateChangeSet && !slices.Contains(events.StackOperationNames, op.EventName) {
		t.Fatalf("DecodeStackOperation: got eventName %q, want a stack operation or CreateChangeSet", op.EventName)
	}
	if op.Starts() && op.ErrorCode != "" {
		t.Fatalf("DecodeStackOperation: %s with errorCode %s starts an operation, want it not to", op.EventName, op.ErrorCode)
	}
}

// checkInvariants checks what holds for every result of fn.
func checkInvariants(t *testing.T, fn string, d events.Decoded, err error) {
	t.Helper()
	if err != nil {
		var matched int
		for _, sentinel := range []error{events.ErrNotJSON, events.ErrMalformed, events.ErrInconsistent} {
			if errors.Is(err, sentinel) {
				matched++
			}
		}
		if matched != 1 {
			t.Fatalf("%s error: got %v, matching %d of ErrNotJSON, ErrMalformed and ErrInconsistent, want exactly one", fn, err, matched)
		}
		var m *events.MalformedError
		if errors.As(err, &m) && (m.EventName == "" || m.Field == "" || m.Reason == "") {
			t.Fatalf("%s malformed error: got %+v, want EventName, Field and Reason set", fn, *m)
		}
		var i *events.InconsistentError
		if errors.As(err, &i) {
			if i.EventName == "" || i.Field == "" || i.Other == "" || i.Value == "" || i.OtherValue == "" || i.Value == i.OtherValue {
				t.Fatalf("%s inconsistent error: got %+v, want EventName, Field, Other and two different values set", fn, *i)
			}
			if d.Key == nil && d.Change == nil {
				t.Fatalf("%s inconsistent error %v: got no Key or Change, want the one read", fn, err)
			}
		}
		if d.Kind != 0 {
			t.Fatalf("%s error %v: got Kind %v, want none", fn, err, d.Kind)
		}
		return
	}
	switch d.Kind {
	case events.KindTag:
		k := d.Key
		if k == nil {
			t.Fatalf("%s: got KindTag with no Key, want a Key", fn)
		}
		if k.KeyARN == "" || k.KeyID == "" || k.Region == "" || k.Account == "" || k.Partition == "" || k.EventID == "" || k.EventRegion == "" {
			t.Fatalf("%s: got KindTag with key %+v, want KeyARN, KeyID, Region, Account, Partition, EventID and EventRegion set", fn, *k)
		}
		if k.EventTime.IsZero() || k.EventTime.Location().String() != "UTC" {
			t.Fatalf("%s: got EventTime %v, want a time in UTC", fn, k.EventTime)
		}
		if d.EventID != k.EventID {
			t.Fatalf("%s: got Decoded.EventID %q and Key.EventID %q, want them equal", fn, d.EventID, k.EventID)
		}
		if k.EventName == events.EventNameCreateKey && k.MultiRegionKeyType == events.MultiRegionReplica {
			t.Fatalf("%s: got KindTag for the CreateKey of REPLICA %s, want it skipped", fn, k.KeyARN)
		}
		if k.EventName == events.EventNameCreateKey && k.Region != k.EventRegion {
			t.Fatalf("%s: got KindTag for CreateKey of %s in %s logged in %s, want the same region", fn, k.KeyARN, k.Region, k.EventRegion)
		}
		if !strings.Contains(k.KeyARN, ":"+k.Region+":"+k.Account+":") {
			t.Fatalf("%s: got KindTag for %s with region %q and account %q, want those of the ARN", fn, k.KeyARN, k.Region, k.Account)
		}
	case events.KindTagChange:
		c := d.Change
		if c == nil || c.KeyARN == "" || c.Region == "" || c.Account == "" || c.EventID == "" || c.EventTime.IsZero() {
			t.Fatalf("%s: got KindTagChange with change %+v, want KeyARN, Region, Account, EventID and EventTime set", fn, c)
		}
	case events.KindIgnore, events.KindFailedCall, events.KindSkip:
		if d.Reason == "" {
			t.Fatalf("%s: got %v with no Reason, want a Reason", fn, d.Kind)
		}
	default:
		t.Fatalf("%s: got Kind %d with no error, want tag, tag-change, ignore, failed-call or skip", fn, d.Kind)
	}
}

// checkEnvelope checks that what Decode acts on is in the account and region
// of raw's envelope: a key to tag in the envelope's account, its call logged
// in the envelope's region; a tag change on a key in both.
func checkEnvelope(t *testing.T, raw []byte, d events.Decoded, err error) {
	t.Helper()
	if err != nil || (d.Kind != events.KindTag && d.Kind != events.KindTagChange) {
		return
	}
	var env struct {
		Account string `json:"account"`
		Region  string `json:"region"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatalf("Decode: got %v for an event whose envelope does not unmarshal: %v", d.Kind, err)
	}
	if k := d.Key; k != nil && (k.Account != env.Account || k.EventRegion != env.Region) {
		t.Fatalf("Decode: got key %s of account %q logged in %q, want the envelope's account %q and region %q",
			k.KeyARN, k.Account, k.EventRegion, env.Account, env.Region)
	}
	if c := d.Change; c != nil && (c.Account != env.Account || c.Region != env.Region) {
		t.Fatalf("Decode: got change on %s in account %q region %q, want the envelope's account %q and region %q",
			c.KeyARN, c.Account, c.Region, env.Account, env.Region)
	}
}

// addFixtureSeeds adds every fixture in testdata to f's seed corpus.
func addFixtureSeeds(f *testing.F) {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	if len(paths) == 0 {
		f.Fatal("no seeds: got 0 testdata/*.json files, want at least 1")
	}
	for _, path := range paths {
		raw, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
}
