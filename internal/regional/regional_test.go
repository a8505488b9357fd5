package regional_test

import (
	"sync"
	"testing"

	"github.com/kms-autotagger/kms-autotagger/internal/regional"
)

type client struct{ region string }

func TestGetMakesOneClientPerRegion(t *testing.T) {
	var mu sync.Mutex
	made := map[string]int{}
	c := regional.New(func(region string) *client {
		mu.Lock()
		defer mu.Unlock()
		made[region]++
		return &client{region: region}
	})
	var wg sync.WaitGroup
	got := make([]*client, 20)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = c.Get([]string{"us-east-1", "eu-west-1"}[i%2])
		}()
	}
	wg.Wait()
	if made["us-east-1"] != 1 || made["eu-west-1"] != 1 || len(made) != 2 {
		t.Errorf("clients made: got %v, want one per region", made)
	}
	for i, cl := range got {
		if want := []string{"us-east-1", "eu-west-1"}[i%2]; cl.region != want || cl != c.Get(want) {
			t.Errorf("Get %d: got client of %s, want the one client of %s", i, cl.region, want)
		}
	}
}
