package app_test

import (
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws/localawstest"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// quota is an InterceptFunc that lets through at most limit TagResource
// requests per second (a token bucket holding one second's worth) and
// answers the rest with 400 ThrottlingException, as KMS does past its
// request quota. It records when each request it let through arrived.
type quota struct {
	limiter *rate.Limiter
	mu      sync.Mutex
	passed  []time.Time
	refused int
}

func newQuota(limit int) *quota {
	return &quota{limiter: rate.NewLimiter(rate.Limit(limit), limit)}
}

func (q *quota) intercept(w http.ResponseWriter, _ *http.Request, _, target string) bool {
	if target != localaws.KMSTarget("TagResource") {
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.limiter.Allow() {
		q.refused++
		localaws.ThrottlingFault.Write(w)
		return true
	}
	q.passed = append(q.passed, time.Now())
	return false
}

// maxInWindow returns the most requests let through within any window.
func (q *quota) maxInWindow(window time.Duration) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	times := slices.Clone(q.passed)
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	most, lo := 0, 0
	for hi := range times {
		for times[hi].Sub(times[lo]) >= window {
			lo++
		}
		most = max(most, hi-lo+1)
	}
	return most
}

// TestBurst sends 100 CreateKey events at once to as many execution
// environments as the template's ReservedConcurrency default allows (10),
// each a handler of its own from app.NewHandler with the default retry
// settings and the template's 30 s timeout, against a KMS that allows 10
// TagResource per second. No event may be lost: each ends tagged, or (only
// without a rate limit) returns an error that Lambda retries. With
// TAG_RATE_LIMIT=1 (10 per second shared by 10 instances) every event must
// end tagged. In both, no duplicate TagResource is let through, and the
// burst ends within a generous bound on the time the quota sets (the 90
// events past the first second's 10 need 9 s).
func TestBurst(t *testing.T) {
	tests := []struct {
		name      string
		rateLimit string
		allTagged bool
	}{
		{"standard retries only", "0", false},
		{"TAG_RATE_LIMIT=1", "1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runBurst(t, tt.rateLimit, tt.allTagged) })
	}
}

func runBurst(t *testing.T, rateLimit string, allTagged bool) {
	const (
		events    = 100
		instances = 10 // template.yaml ReservedConcurrency default
		limit     = 10 // TagResource per second
		timeout   = 30 * time.Second
		bound     = 30 * time.Second // generous: the quota alone needs (events-limit)/limit = 9 s
	)
	s := startStack(t, map[string]string{"MAX_BACKOFF": "", "MAX_ATTEMPTS": "", "DEAD_LETTER_RESERVE": "", "TAG_RATE_LIMIT": rateLimit})
	keys := make([]string, events)
	for i := range keys {
		keys[i] = s.CreateKey(t, "us-east-1")
	}
	q := newQuota(limit)
	s.KMS.Router().SetIntercept(q.intercept)

	logs := &localawstest.SyncBuffer{}
	handlers := make([]*tagger.Handler, instances)
	for i := range handlers {
		handlers[i] = newInstance(t, logs)
	}
	eventID := func(i int) string { return fmt.Sprintf("b0257000-0000-4000-8000-%012d", i) }
	results := make([]invocation, events)
	work := make(chan int, events)
	for i := range events {
		work <- i
	}
	close(work)
	var wg sync.WaitGroup
	start := time.Now()
	for w, h := range handlers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				results[i] = invoke(h, localawstest.CreateKeyEvent(eventID(i), keys[i], nil), timeout, fmt.Sprintf("burst-%d-%d", w, i))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	tagged, errs, attempts, most := 0, 0, 0, 0
	for i, inv := range results {
		attempts += inv.res.Attempts
		most = max(most, inv.res.Attempts)
		onKey := s.Tags(t, keys[i])
		switch {
		case inv.res.Outcome == tagger.OutcomeTagged && inv.err == nil:
			tagged++
			want := map[string]string{"CreatedBy": userARN, "CreatedAt": eventTime, "CreationEventId": eventID(i), "CreatedByUser": "alice", "CreatedByEvidence": "event", "ManagedBy": "kms-autotagger"}
			if !reflect.DeepEqual(onKey, want) {
				t.Errorf("event %d tagged: tags on key got %v, want %v", i, onKey, want)
			}
		case inv.res.Outcome == tagger.OutcomeError && inv.err != nil && inv.res.ErrorCode == tagger.CodeThrottling:
			errs++ // Lambda retries it
			if allTagged {
				t.Errorf("event %d: returned %v after %d attempts, want tagged", i, inv.err, inv.res.Attempts)
			}
			if len(onKey) != 0 {
				t.Errorf("event %d returned an error but the key has tags %v", i, onKey)
			}
		default:
			t.Errorf("event %d: got outcome %s (%s), %v; want tagged, or a throttling error for Lambda to retry", i, inv.res.Outcome, inv.res.ErrorCode, inv.err)
		}
		if inv.late > 0 {
			t.Errorf("event %d returned %v after its deadline", i, inv.late)
		}
	}
	q.mu.Lock()
	passed, refused := len(q.passed), q.refused
	q.mu.Unlock()
	window := q.maxInWindow(time.Second)
	t.Logf("%d events, %d instances, quota %d TagResource/s, TAG_RATE_LIMIT=%q: tagged %d, errors for Lambda to retry %d, lost %d, in %v (the quota needs %v)",
		events, instances, limit, rateLimit, tagged, errs, events-tagged-errs, elapsed.Round(time.Millisecond), time.Duration(events-limit)*time.Second/limit)
	t.Logf("TagResource let through %d (at most %d within any 1 s, %.1f/s overall), throttled %d; attempts per event %.2f on average, %d at most",
		passed, window, float64(passed)/elapsed.Seconds(), refused, float64(attempts)/events, most)

	if passed != tagged {
		t.Errorf("TagResource let through: got %d, want one per tagged event (%d)", passed, tagged)
	}
	if window > 2*limit {
		t.Errorf("TagResource let through within 1 s: got %d, want at most %d (the bucket's %d plus %d/s)", window, 2*limit, limit, limit)
	}
	if elapsed > bound {
		t.Errorf("burst took %v, want within %v", elapsed, bound)
	}
	if t.Failed() {
		t.Logf("handler logs:\n%s", logs.String())
	}
}
