package events

import (
	"os"
	"path/filepath"
	"testing"
)

// AddFixtureSeeds adds every fixture in testdata to f's seed corpus, for
// FuzzOnePass here and FuzzDecode in package events_test.
func AddFixtureSeeds(f *testing.F) {
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
