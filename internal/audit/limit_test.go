package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/kms-autotagger/kms-autotagger/internal/audit"
)

// arrival is one request as the KMS endpoint received it.
type arrival struct {
	op, key string
	at      time.Time
}

// kmsEndpoint serves DescribeKey and ListResourceTags on KMS's JSON
// protocol and records every request; the first DescribeKey of each key
// gets a ThrottlingException when throttleFirst is set.
type kmsEndpoint struct {
	throttleFirst bool

	mu        sync.Mutex
	arrivals  []arrival
	throttled map[string]bool
}

func (e *kmsEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "TrentService.")
	var in struct{ KeyId string }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	e.mu.Lock()
	e.arrivals = append(e.arrivals, arrival{op: op, key: in.KeyId, at: time.Now()})
	throttle := e.throttleFirst && op == "DescribeKey" && !e.throttled[in.KeyId]
	if throttle {
		if e.throttled == nil {
			e.throttled = map[string]bool{}
		}
		e.throttled[in.KeyId] = true
	}
	e.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	switch {
	case throttle:
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"__type":"ThrottlingException","message":"Rate exceeded"}`))
	case op == "DescribeKey":
		_ = json.NewEncoder(w).Encode(map[string]any{"KeyMetadata": map[string]any{"KeyId": in.KeyId, "KeyState": "Enabled"}})
	case op == "ListResourceTags":
		_, _ = w.Write([]byte(`{"Tags":[],"Truncated":false}`))
	default:
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"__type":"UnsupportedOperationException","message":"` + op + `"}`))
	}
}

func (e *kmsEndpoint) recorded() []arrival {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]arrival(nil), e.arrivals...)
}

// meterClient is the real SDK client of e, retrying at once (the meter's
// tokens are the only wait).
func meterClient(t *testing.T, e *kmsEndpoint) *kms.Client {
	t.Helper()
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return kms.New(kms.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		}),
	})
}

var meterPart = audit.Partition{Account: "111122223333", Region: "us-east-1"}

// readKeys reads keys at once, each described while its tags are listed,
// their first attempts in turn.
func readKeys(t *testing.T, m *audit.Meter, c *kms.Client, keys []string) {
	t.Helper()
	var wg sync.WaitGroup
	for _, key := range keys {
		wg.Go(func() {
			opts := m.KMSInTurn(meterPart, audit.OpDescribeKey, audit.OpListResourceTags)
			var reads sync.WaitGroup
			reads.Go(func() {
				if _, err := c.ListResourceTags(context.Background(), &kms.ListResourceTagsInput{KeyId: aws.String(key)}, opts[1]); err != nil {
					t.Errorf("listing the tags of %s: %v", key, err)
				}
			})
			if _, err := c.DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: aws.String(key)}, opts[0]); err != nil {
				t.Errorf("describing %s: %v", key, err)
			}
			reads.Wait()
		})
	}
	wg.Wait()
}

// TestMeterKMSInTurn: the reads one key needs before its write take
// consecutive tokens of the partition's read bucket, whatever the other
// keys read at the same moment, and the bucket's rate still holds for
// every attempt, retries included.
func TestMeterKMSInTurn(t *testing.T) {
	const rate = 20.0 // reads per second: a token every 50ms
	minGap := time.Duration(0.9 / rate * float64(time.Second))
	keys := []string{"key-1", "key-2", "key-3", "key-4"}
	for _, tc := range []struct {
		name          string
		throttleFirst bool
		want          int // requests received
	}{
		{"each key's reads one token apart", false, 2 * len(keys)},
		{"retries wait for tokens of their own", true, 3 * len(keys)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &kmsEndpoint{throttleFirst: tc.throttleFirst}
			m := audit.NewMeter(audit.Rates{Read: rate})
			readKeys(t, m, meterClient(t, e), keys)

			got := e.recorded()
			if len(got) != tc.want {
				t.Fatalf("got %d requests, want %d", len(got), tc.want)
			}
			for i := 1; i < len(got); i++ {
				if gap := got[i].at.Sub(got[i-1].at); gap < minGap {
					t.Errorf("requests %d (%s %s) and %d (%s %s) %s apart, want at least %s at %g per second",
						i-1, got[i-1].op, got[i-1].key, i, got[i].op, got[i].key, gap, minGap, rate)
				}
			}
			if u := m.Usage(meterPart); u.Reads != tc.want {
				t.Errorf("got %d reads metered, want %d", u.Reads, tc.want)
			}
			// Each key's first two attempts are neighbours: no other
			// key's read came between them.
			first := map[string]int{}
			for i, a := range got {
				if tc.throttleFirst && a.op == "DescribeKey" && countBefore(got[:i], a.key, "DescribeKey") == 1 {
					continue // the retry, after its own token
				}
				if j, ok := first[a.key]; !ok {
					first[a.key] = i
				} else if i != j+1 {
					t.Errorf("key %s: reads %d and %d, want neighbours (got order %s)", a.key, j, i, order(got))
				}
			}
		})
	}
}

// TestMeterKMSInTurnCancel: a call cancelled while it waits for its
// reserved token gives the token back, so the next call does not wait for
// it too.
func TestMeterKMSInTurnCancel(t *testing.T) {
	const rate = 2.0 // a token every 500ms
	e := &kmsEndpoint{}
	c := meterClient(t, e)
	m := audit.NewMeter(audit.Rates{Read: rate})

	opts := m.KMSInTurn(meterPart, audit.OpDescribeKey, audit.OpListResourceTags)
	if _, err := c.DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: aws.String("key-1")}, opts[0]); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String("key-1")}, opts[1])
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "waiting for the ListResourceTags rate limit") {
		t.Fatalf("got error %v, want the rate limit's wait ended by the deadline", err)
	}
	if _, err := c.ListResourceTags(context.Background(), &kms.ListResourceTagsInput{KeyId: aws.String("key-2")}, m.KMS(meterPart, audit.OpListResourceTags)); err != nil {
		t.Fatal(err)
	}
	got := e.recorded()
	if len(got) != 2 {
		t.Fatalf("got %d requests, want 2 (the cancelled one never sent): %s", len(got), order(got))
	}
	gap := got[1].at.Sub(got[0].at)
	if gap < 450*time.Millisecond || gap > 750*time.Millisecond {
		t.Errorf("got the next read %s after the first, want one token (500ms): the cancelled call's token given back", gap)
	}
}

func countBefore(as []arrival, key, op string) int {
	n := 0
	for _, a := range as {
		if a.key == key && a.op == op {
			n++
		}
	}
	return n
}

func order(as []arrival) string {
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = a.op + " " + a.key
	}
	return strings.Join(parts, ", ")
}
