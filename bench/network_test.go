package bench_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
)

// connCounter is a TCP listener that accepts connections, counts them and
// closes them at once.
type connCounter struct {
	l    *net.TCPListener
	n    atomic.Int64
	done chan struct{}
}

func newConnCounter(t *testing.T) *connCounter {
	t.Helper()
	l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	c := &connCounter{l: l}
	c.start()
	return c
}

func (c *connCounter) url() string { return "http://" + c.l.Addr().String() }

func (c *connCounter) start() {
	_ = c.l.SetDeadline(time.Time{})
	c.done = make(chan struct{})
	go func() {
		defer close(c.done)
		for {
			conn, err := c.l.Accept()
			if err != nil {
				return
			}
			c.n.Add(1)
			_ = conn.Close()
		}
	}()
}

// count accepts every connection already made, then returns how many were
// made since start, and starts counting again.
func (c *connCounter) count() int64 {
	_ = c.l.SetDeadline(time.Now().Add(200 * time.Millisecond))
	<-c.done
	n := c.n.Load()
	c.start()
	return n
}

// TestInitMakesNoNetworkCall starts the real bootstrap under the emulator
// with every AWS endpoint it could use (KMS, SQS, STS, CloudTrail, any
// other service, the instance metadata service, the dead-letter queue)
// pointing at a listener that counts connections, and invokes it with an
// event it skips: the init and the skip must open no connection. Then, to
// show the listener would have seen a call, a CreateKey event must reach
// it. Both with the default settings and with cross-account tagging (which
// adds STS).
func TestInitMakesNoNetworkCall(t *testing.T) {
	bootstrap := buildFunction(t, "./cmd/autotagger", "bootstrap")
	skipped := sampleEvent(t, "failed_call.json")
	tagged := sampleEvent(t, "createkey_iamuser.json")
	tests := []struct {
		name string
		env  []string
	}{
		{"default settings", nil},
		{"cross-account", []string{"MEMBER_ROLE_NAME=kms-autotagger-member"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newConnCounter(t)
			env := append([]string{
				"AWS_LAMBDA_FUNCTION_TIMEOUT=30",
				"AWS_ENDPOINT_URL=" + c.url(),
				"AWS_ENDPOINT_URL_KMS=" + c.url(),
				"AWS_ENDPOINT_URL_SQS=" + c.url(),
				"AWS_ENDPOINT_URL_STS=" + c.url(),
				"AWS_ENDPOINT_URL_CLOUDTRAIL=" + c.url(),
				"AWS_EC2_METADATA_SERVICE_ENDPOINT=" + c.url(),
				"DEAD_LETTER_QUEUE_URL=" + c.url() + "/111122223333/kms-autotagger-dlq",
				"TAGGER_ROLE_ARN=arn:aws:iam::111122223333:role/kms-autotagger-AutoTaggerFunctionRole-1QW2E3R4T5Y6",
				"MAX_ATTEMPTS=1",
			}, tt.env...)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out := &reportLines{}
			rie, err := localaws.StartRIE(ctx, localaws.RIEOptions{Bootstrap: bootstrap, Env: env, Stdout: out})
			if err != nil {
				t.Fatal(err)
			}
			defer rie.Close()
			defer func() {
				if t.Failed() {
					t.Logf("emulator and function output:\n%s", out)
				}
			}()

			status, body, err := rie.Invoke(ctx, skipped)
			if err != nil || status != 200 {
				t.Fatalf("invoke: status %d, %v: %s", status, err, body)
			}
			var res struct {
				Outcome string `json:"outcome"`
			}
			if err := json.Unmarshal(body, &res); err != nil || res.Outcome != "skipped" {
				t.Fatalf("response %s: got outcome %q (%v), want skipped", body, res.Outcome, err)
			}
			if n := c.count(); n != 0 {
				t.Errorf("connections during init and a skipped event: got %d, want 0", n)
			}

			status, body, err = rie.Invoke(ctx, tagged)
			if err != nil || status != 200 {
				t.Fatalf("invoke: status %d, %v: %s", status, err, body)
			}
			if n := c.count(); n == 0 {
				t.Errorf("connections for a CreateKey event: got 0, want at least 1 (is the listener wired?); response %s", body)
			}
			if err := rie.Close(); err != nil && !errors.Is(err, os.ErrProcessDone) {
				t.Error(err)
			}
		})
	}
}
