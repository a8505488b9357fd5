package events_test

import (
	"errors"
	"os"
	"path/filepath"
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
		d, err = events.DecodeRecord(raw)
		checkInvariants(t, "DecodeRecord", d, err)
	})
}

// checkInvariants checks what holds for every result of fn.
func checkInvariants(t *testing.T, fn string, d events.Decoded, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, events.ErrNotJSON) && !errors.Is(err, events.ErrMalformed) {
			t.Fatalf("%s error: got %v, want one matching ErrNotJSON or ErrMalformed", fn, err)
		}
		var m *events.MalformedError
		if errors.As(err, &m) && (m.EventName == "" || m.Field == "" || m.Reason == "") {
			t.Fatalf("%s malformed error: got %+v, want EventName, Field and Reason set", fn, *m)
		}
		return
	}
	switch d.Kind {
	case events.KindTag:
		k := d.Key
		if k == nil {
			t.Fatalf("%s: got KindTag with no Key, want a Key", fn)
		}
		if k.KeyARN == "" || k.KeyID == "" || k.Region == "" || k.Account == "" || k.Partition == "" || k.EventID == "" {
			t.Fatalf("%s: got KindTag with key %+v, want KeyARN, KeyID, Region, Account, Partition and EventID set", fn, *k)
		}
		if k.EventTime.IsZero() || k.EventTime.Location().String() != "UTC" {
			t.Fatalf("%s: got EventTime %v, want a time in UTC", fn, k.EventTime)
		}
		if d.EventID != k.EventID {
			t.Fatalf("%s: got Decoded.EventID %q and Key.EventID %q, want them equal", fn, d.EventID, k.EventID)
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
