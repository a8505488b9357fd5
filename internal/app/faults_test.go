package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kms-autotagger/kms-autotagger/internal/app"
	"github.com/kms-autotagger/kms-autotagger/internal/config"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws/localawstest"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// Settings of the fault-injection run, read from the environment so that
// `make soak` can run it longer and a failure can be replayed.
const (
	envFaultEvents = "FAULT_EVENTS" // events to run, 100 by default
	envFaultSeed   = "FAULT_SEED"   // seed of the fault schedule, random by default
)

// fault is what the injector does with one TagResource request.
type fault int

const (
	faultNone         fault = iota // passed to local-kms
	faultInternal                  // 500 KMSInternalException (retried)
	faultThrottle                  // 400 ThrottlingException (retried)
	faultReset                     // connection reset without a response (retried)
	faultSlow                      // no answer until after the invocation deadline
	faultAccessDenied              // 400 AccessDeniedException (permanent)
	faultInvalidState              // 400 KMSInvalidStateException (permanent)
	faultKinds
)

var faultNames = [faultKinds]string{"none", "KMSInternalException", "ThrottlingException", "connection reset", "slower than the deadline", "AccessDeniedException", "KMSInvalidStateException"}

// faultDeck is the share of each fault in every hundred TagResource
// requests; the rest pass. 40 of 100 are faulted.
var faultDeck = [faultKinds]int{
	faultInternal:     12,
	faultThrottle:     10,
	faultReset:        8,
	faultSlow:         4,
	faultAccessDenied: 3,
	faultInvalidState: 3,
}

// injector is a fault-injecting InterceptFunc for TagResource. Which fault
// a request gets depends only on the seed, the event (the index of its key)
// and the attempt number for that key, never on the order in which
// concurrent events arrive or on the key ids local-kms picks, so a seed
// replays the same faults. First attempts draw from a deck shuffled per
// hundred events, so each hundred events starts with exactly the faultDeck
// mix; later attempts draw at random with the same odds.
type injector struct {
	seed     uint64
	slowFor  time.Duration
	index    map[string]int // key ARN -> index of its event
	first    []fault        // index -> fault of its first attempt
	mu       sync.Mutex
	attempts map[string]int // key ARN -> TagResource requests seen
	counts   [faultKinds]int
	slowWG   sync.WaitGroup
}

func newInjector(seed uint64, keys []string, slowFor time.Duration) *injector {
	in := &injector{seed: seed, slowFor: slowFor, index: make(map[string]int, len(keys)), first: make([]fault, len(keys)), attempts: make(map[string]int)}
	for i, k := range keys {
		in.index[k] = i
	}
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	for block := 0; block < len(keys); block += 100 {
		deck := make([]fault, 0, 100)
		for f, n := range faultDeck {
			for range n {
				deck = append(deck, fault(f))
			}
		}
		for len(deck) < 100 {
			deck = append(deck, faultNone)
		}
		rng.Shuffle(len(deck), func(i, j int) { deck[i], deck[j] = deck[j], deck[i] })
		for i := block; i < min(block+100, len(keys)); i++ {
			in.first[i] = deck[i-block]
		}
	}
	return in
}

// draw returns the fault of attempt n (1-based) on key; a key of no event
// is never faulted.
func (in *injector) draw(key string, n int) fault {
	i, ok := in.index[key]
	if !ok {
		return faultNone
	}
	if n == 1 {
		return in.first[i]
	}
	v := rand.New(rand.NewPCG(in.seed, uint64(i)<<32|uint64(n))).IntN(100)
	for f, share := range faultDeck {
		if v < share {
			return fault(f)
		}
		v -= share
	}
	return faultNone
}

// intercept is the InterceptFunc.
func (in *injector) intercept(w http.ResponseWriter, r *http.Request, _, target string) bool {
	if target != localaws.KMSTarget("TagResource") {
		return false
	}
	var body struct{ KeyId string }
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		localaws.WriteKMSError(w, http.StatusBadRequest, "SerializationException", err.Error())
		return true
	}
	in.mu.Lock()
	in.attempts[body.KeyId]++
	f := in.draw(body.KeyId, in.attempts[body.KeyId])
	in.counts[f]++
	in.mu.Unlock()

	switch f {
	case faultInternal:
		localaws.InternalFault.Write(w)
	case faultThrottle:
		localaws.ThrottlingFault.Write(w)
	case faultAccessDenied:
		localaws.AccessDeniedFault.Write(w)
	case faultInvalidState:
		localaws.WriteKMSError(w, http.StatusBadRequest, tagger.CodeKMSInvalidState, body.KeyId+" is pending deletion. (injected by the test)")
	case faultReset:
		resetConnection(w)
	case faultSlow:
		in.slowWG.Add(1)
		defer in.slowWG.Done()
		select {
		case <-time.After(in.slowFor):
			localaws.InternalFault.Write(w)
		case <-r.Context().Done(): // the client gave up, as it must
		}
	default:
		return false
	}
	return true
}

// resetConnection takes the connection from the server and closes it with
// an RST and no response, as a network fault would.
func resetConnection(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		localaws.WriteKMSError(w, http.StatusInternalServerError, "KMSInternalException", "test could not hijack: "+err.Error())
		return
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}

func (in *injector) summary() (counts [faultKinds]int, total int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, c := range in.counts {
		total += c
	}
	return in.counts, total
}

// envInt reads a positive whole number from the environment.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a whole number of at least 1", name, v)
	}
	return n
}

// newInstance is one more Lambda execution environment: a handler built by
// app.NewHandler from the environment startStack set, with its own
// clients. Its metrics go to io.Discard (NewHandler's go to stdout) and its
// logs to logs.
func newInstance(t *testing.T, logs io.Writer) *tagger.Handler {
	t.Helper()
	cfg, err := config.FromEnv(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	h, err := app.NewHandler(cfg, localawstest.FunctionConfig(t), slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if h.Metrics, err = app.NewMetrics(io.Discard, cfg); err != nil {
		t.Fatal(err)
	}
	return h
}

// invocation is one call of the handler, as Lambda makes it.
type invocation struct {
	res      tagger.Result
	err      error
	late     time.Duration // how long after the deadline it returned, if it did
	duration time.Duration
}

// invoke runs h on event with a Lambda-like deadline and request id.
func invoke(h *tagger.Handler, event []byte, timeout time.Duration, requestID string) invocation {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ctx = lambdacontextWithRequestID(ctx, requestID)
	deadline, _ := ctx.Deadline()
	start := time.Now()
	res, err := h.Handle(ctx, event)
	end := time.Now()
	inv := invocation{res: res, err: err, duration: end.Sub(start)}
	if end.After(deadline) {
		inv.late = end.Sub(deadline)
	}
	return inv
}

// TestFaultInjection runs the real handler over FAULT_EVENTS events (100 by
// default; `make soak` runs 1000) on distinct keys while an injector in
// front of local-kms fails 40% of TagResource requests: internal errors,
// throttling, connection resets, answers slower than the invocation
// deadline, access denied and invalid key state. Events that return an
// error are invoked again up to twice, as Lambda does for asynchronous
// invocations. Every event must end exactly once: tagged (the tags are on
// the key), dead-lettered (exactly one dead letter names it) or returned as
// an error (no dead letter, no tags); none lost, no duplicate dead letter,
// no invocation returning after its deadline. FAULT_SEED replays a run.
func TestFaultInjection(t *testing.T) {
	const (
		timeout   = 3 * time.Second // the invocation deadline
		instances = 4               // concurrent Lambda execution environments
		retries   = 2               // Lambda's retries of an asynchronous invocation
	)
	n := envInt(t, envFaultEvents, 100)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(envFaultSeed); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("%s=%q: want an unsigned whole number", envFaultSeed, v)
		}
	}
	t.Logf("fault schedule seed %d (replay with %s=%d %s=%d)", seed, envFaultSeed, seed, envFaultEvents, n)

	s := startStack(t, map[string]string{"MAX_BACKOFF": "50ms", "DEAD_LETTER_RESERVE": "1s"})
	keys := make([]string, n)
	for i := range keys {
		keys[i] = s.CreateKey(t, "us-east-1")
	}
	in := newInjector(seed, keys, timeout+time.Second)
	s.KMS.Router().SetIntercept(in.intercept)
	t.Cleanup(in.slowWG.Wait)

	logs := &localawstest.SyncBuffer{}
	eventID := func(i int) string { return fmt.Sprintf("fa0175e0-0000-4000-8000-%012d", i) }

	// history[i] holds every invocation of event i.
	history := make([][]invocation, n)
	work := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range instances {
		h := newInstance(t, logs)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				event := localawstest.CreateKeyEvent(eventID(i), keys[i], nil)
				for try := 0; try <= retries; try++ {
					inv := invoke(h, event, timeout, fmt.Sprintf("req-%d-%d-%d", w, i, try))
					history[i] = append(history[i], inv)
					if inv.err == nil {
						break
					}
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)

	dls := map[string]int{}
	msgs := s.DeadLetters(t)
	for _, m := range msgs {
		dls[m.Record.EventID]++
	}

	var first, final [4]int // tagged, dead-lettered, error, lost
	index := map[tagger.Outcome]int{tagger.OutcomeTagged: 0, tagger.OutcomeDeadLettered: 1, tagger.OutcomeError: 2}
	invocations, late := 0, 0
	var slowest time.Duration
	for i, hist := range history {
		id := eventID(i)
		for j, inv := range hist {
			invocations++
			slowest = max(slowest, inv.duration)
			if inv.late > 0 {
				late++
				t.Errorf("event %d invocation %d returned %v after its deadline", i, j+1, inv.late)
			}
			k, ok := index[inv.res.Outcome]
			if !ok || (inv.err != nil) != (inv.res.Outcome == tagger.OutcomeError) {
				t.Errorf("event %d invocation %d: got outcome %q with error %v, want tagged or dead-lettered with no error, or error with one", i, j+1, inv.res.Outcome, inv.err)
				continue
			}
			if inv.res.EventID != id || inv.res.KeyARN != keys[i] {
				t.Errorf("event %d invocation %d: got event %s key %s, want %s %s", i, j+1, inv.res.EventID, inv.res.KeyARN, id, keys[i])
			}
			if j == 0 {
				first[k]++
			}
		}
		last := hist[len(hist)-1]
		onKey := s.Tags(t, keys[i])
		wantDL := 0
		switch last.res.Outcome {
		case tagger.OutcomeTagged:
			final[0]++
			want := map[string]string{"CreatedBy": userARN, "CreatedAt": eventTime, "CreationEventId": id, "CreatedByUser": "alice", "CreatedByEvidence": "event", "ManagedBy": "kms-autotagger"}
			if !reflect.DeepEqual(onKey, want) {
				t.Errorf("event %d tagged: tags on key got %v, want %v", i, onKey, want)
				final[3]++
			}
		case tagger.OutcomeDeadLettered:
			final[1]++
			wantDL = 1
		case tagger.OutcomeError:
			final[2]++
		default:
			final[3]++
		}
		if last.res.Outcome != tagger.OutcomeTagged && len(onKey) != 0 {
			t.Errorf("event %d ended %s but the key has tags %v", i, last.res.Outcome, onKey)
		}
		if dls[id] != wantDL {
			t.Errorf("event %d ended %s after %d invocations: got %d dead letters for it, want %d", i, last.res.Outcome, len(hist), dls[id], wantDL)
			if wantDL == 1 {
				final[3]++
			}
		}
		delete(dls, id)
	}
	for id, c := range dls {
		t.Errorf("got %d dead letters for event %q, which was not run", c, id)
	}

	counts, total := in.summary()
	var mix strings.Builder
	for f := faultNone + 1; f < faultKinds; f++ {
		fmt.Fprintf(&mix, " %s=%d", faultNames[f], counts[f])
	}
	faulted := total - counts[faultNone]
	t.Logf("%d events, %d invocations in %v (%d instances, slowest invocation %v, %d returned after the deadline)", n, invocations, elapsed.Round(time.Millisecond), instances, slowest.Round(time.Millisecond), late)
	t.Logf("TagResource requests %d, faulted %d (%.1f%%):%s", total, faulted, 100*float64(faulted)/float64(max(total, 1)), mix.String())
	t.Logf("first invocation: tagged %d, dead-lettered %d, error %d", first[0], first[1], first[2])
	t.Logf("after Lambda's retries: tagged %d, dead-lettered %d, error %d, lost %d; dead letters in the queue %d", final[0], final[1], final[2], final[3], len(msgs))

	if final[3] != 0 || final[0]+final[1]+final[2] != n {
		t.Errorf("lost: got %d events unaccounted for, want 0", n-final[0]-final[1]-final[2]+final[3])
	}
	if len(msgs) != final[1] {
		t.Errorf("dead letters: got %d messages for %d dead-lettered events, want one each", len(msgs), final[1])
	}
	if 10*faulted < 3*total {
		t.Errorf("faulted TagResource requests: got %d of %d, want at least 30%%", faulted, total)
	}
	if counts[faultAccessDenied]+counts[faultInvalidState] == 0 || final[1] == 0 {
		t.Errorf("permanent faults %d, dead letters %d: want some of each", counts[faultAccessDenied]+counts[faultInvalidState], final[1])
	}
	if t.Failed() {
		t.Logf("handler logs:\n%s", logs.String())
	}
}
