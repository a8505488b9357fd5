package audittest

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
)

// Organization is a simulated organization for the tests of the audit,
// the backfill and the sweep: each account has its own local-kms, serving
// every region of Regions, and its own CloudTrail stand-in (its event
// history).
type Organization struct {
	Regions []string
	KMS     map[string]*localaws.KMS
	Trails  map[string]*localaws.CloudTrail
}

// StartOrganization starts the stand-ins of accounts in regions, local-kms
// of every account at once, the CloudTrail stand-ins with lookupRate
// LookupEvents per second per region (0: the stand-in's default, the real
// quota), registers their Close with tb.Cleanup, and fails tb when one does
// not start.
func StartOrganization(tb testing.TB, accounts, regions []string, lookupRate float64) *Organization {
	tb.Helper()
	o := &Organization{Regions: regions, KMS: map[string]*localaws.KMS{}, Trails: map[string]*localaws.CloudTrail{}}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
	)
	for _, a := range accounts {
		wg.Go(func() {
			k, err := localaws.StartKMS(context.Background(), localaws.KMSOptions{Regions: regions, Account: a})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			o.KMS[a] = k
		})
	}
	wg.Wait()
	for _, k := range o.KMS {
		tb.Cleanup(func() { _ = k.Close() })
	}
	if len(errs) > 0 {
		tb.Fatalf("starting local-kms: %v", errors.Join(errs...))
	}
	for _, a := range accounts {
		ct, err := localaws.StartCloudTrail(localaws.CloudTrailOptions{Regions: regions, LookupEventsRate: lookupRate})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = ct.Close() })
		o.Trails[a] = ct
	}
	return o
}
