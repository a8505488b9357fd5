package localaws

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultStartTimeout bounds how long a stand-in may take to become ready
// when its options leave StartTimeout zero.
const DefaultStartTimeout = 30 * time.Second

// stopGrace is how long stop waits after SIGTERM before sending SIGKILL.
const stopGrace = 5 * time.Second

// pipeDrainDelay bounds how long a stopped process's output is drained: a
// grandchild (the RIE's bootstrap) may hold the pipe open after it exits.
const pipeDrainDelay = 2 * time.Second

// tailBytes is how much of a process's latest output is kept for errors.
const tailBytes = 8 << 10

// probeInterval is the pause between readiness probes.
const probeInterval = 20 * time.Millisecond

// FreePort returns a TCP port on 127.0.0.1 that was free when it was asked
// for. Another process may take it before the caller binds it, so prefer
// letting a server bind port 0 where it can report the port it got.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	return port, nil
}

// procSpec describes a stand-in process and how to tell that it is ready.
type procSpec struct {
	name    string    // used in errors, e.g. "local-kms (us-east-1)"
	path    string    // binary
	args    []string  // arguments after the binary
	env     []string  // complete environment
	dir     string    // working directory; "" for the caller's
	logFile string    // file receiving stdout and stderr
	output  io.Writer // optional extra copy of stdout and stderr
	timeout time.Duration

	// readyLine, when set, is matched against each line of output with
	// terminal colour codes removed; the process is not ready before a line
	// matches, and the submatches are returned by startProcess.
	readyLine *regexp.Regexp
	// probe, when set, is retried after readyLine matched until it succeeds.
	probe func(ctx context.Context, match []string) error
}

// process is a started stand-in.
type process struct {
	name   string
	cmd    *exec.Cmd
	out    *outputSink
	exited chan struct{} // closed when the process has exited and its output is drained
	// waitErr is cmd.Wait's result; read it only after exited is closed.
	waitErr error

	stopOnce sync.Once
	stopErr  error
}

// startProcess starts spec and waits, within ctx and spec.timeout, until it
// is ready. It returns readyLine's submatches. On failure the process is
// stopped and the error quotes the tail of its output.
func startProcess(ctx context.Context, spec procSpec) (*process, []string, error) {
	logf, err := os.OpenFile(spec.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("start %s: open log: %w", spec.name, err)
	}
	sink := newOutputSink(logf, spec.output, spec.readyLine)
	cmd := exec.Command(spec.path, spec.args...)
	cmd.Env = spec.env
	cmd.Dir = spec.dir
	cmd.Stdout = sink
	cmd.Stderr = sink
	cmd.WaitDelay = pipeDrainDelay
	cmd.SysProcAttr = childSysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, nil, fmt.Errorf("start %s: %w", spec.name, err)
	}
	p := &process{name: spec.name, cmd: cmd, out: sink, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.exited)
	}()

	match, err := p.awaitReady(ctx, spec)
	if err != nil {
		_ = p.stop()
		return nil, nil, fmt.Errorf("start %s: %w\n%s", spec.name, err, p.tailSection())
	}
	return p, match, nil
}

// awaitReady waits for spec.readyLine and then for spec.probe to succeed.
func (p *process) awaitReady(ctx context.Context, spec procSpec) ([]string, error) {
	timeout := spec.timeout
	if timeout <= 0 {
		timeout = DefaultStartTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var match []string
	if spec.readyLine != nil {
		select {
		case match = <-p.out.matched:
		case <-p.exited:
			return nil, fmt.Errorf("exited before it was ready: %v", p.exitDescription())
		case <-ctx.Done():
			return nil, fmt.Errorf("no line matching %q within %v: %w", spec.readyLine, timeout, ctx.Err())
		}
	}
	if spec.probe == nil {
		return match, nil
	}
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	for {
		err := spec.probe(ctx, match)
		if err == nil {
			return match, nil
		}
		select {
		case <-tick.C:
		case <-p.exited:
			return nil, fmt.Errorf("exited before it was ready: %v", p.exitDescription())
		case <-ctx.Done():
			return nil, fmt.Errorf("not ready within %v: last probe: %w", timeout, err)
		}
	}
}

// exitDescription describes how the process exited; call only after exited.
func (p *process) exitDescription() string {
	if p.waitErr == nil {
		return "exit status 0"
	}
	return p.waitErr.Error()
}

// alive reports whether the process has not exited yet.
func (p *process) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM, waits up to stopGrace, then sends SIGKILL. Stopping a
// process that already exited is not an error, nor is the exit status a
// signal caused. It is safe to call more than once.
func (p *process) stop() error {
	p.stopOnce.Do(func() {
		if !p.alive() {
			return
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			p.stopErr = fmt.Errorf("stop %s: %w", p.name, err)
		}
		select {
		case <-p.exited:
			return
		case <-time.After(stopGrace):
		}
		if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			p.stopErr = errors.Join(p.stopErr, fmt.Errorf("kill %s: %w", p.name, err))
		}
		select {
		case <-p.exited:
		case <-time.After(stopGrace):
			p.stopErr = errors.Join(p.stopErr, fmt.Errorf("stop %s: still running %v after SIGKILL", p.name, stopGrace))
		}
	})
	return p.stopErr
}

// tail returns the latest output of the process.
func (p *process) tail() string { return p.out.tail() }

// tailSection formats tail for the end of an error message.
func (p *process) tailSection() string {
	t := strings.TrimRight(p.tail(), "\n")
	if t == "" {
		t = "(no output)"
	}
	return fmt.Sprintf("--- last output of %s (pid %d) ---\n%s\n--- end of output ---", p.name, p.cmd.Process.Pid, t)
}

// ansiEscape matches terminal colour codes, which local-kms always writes.
var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

// outputSink receives a process's stdout and stderr: it appends them to the
// log file, copies them to an optional writer, keeps the latest tailBytes for
// error messages and matches whole lines against a readiness pattern.
type outputSink struct {
	mu      sync.Mutex
	file    io.Writer
	extra   io.Writer
	last    []byte // the latest output, at most tailBytes
	partial []byte // the current unterminated line, while still matching
	pattern *regexp.Regexp
	matched chan []string // receives the first match, then nothing more
}

func newOutputSink(file, extra io.Writer, pattern *regexp.Regexp) *outputSink {
	return &outputSink{file: file, extra: extra, pattern: pattern, matched: make(chan []string, 1)}
}

// Write implements io.Writer. It never fails: losing the log file or the
// extra writer must not kill the process, whose pipe would break.
func (s *outputSink) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = s.file.Write(b)
	if s.extra != nil {
		_, _ = s.extra.Write(b)
	}
	s.last = append(s.last, b...)
	if over := len(s.last) - tailBytes; over > 0 {
		s.last = append(s.last[:0], s.last[over:]...)
	}
	if s.pattern != nil {
		s.scanLines(b)
	}
	return len(b), nil
}

// scanLines feeds b to the readiness pattern line by line; s.mu is held.
func (s *outputSink) scanLines(b []byte) {
	s.partial = append(s.partial, b...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			if len(s.partial) > tailBytes { // no newline in sight: give up on this line
				s.partial = s.partial[:0]
			}
			return
		}
		line := ansiEscape.ReplaceAllString(strings.TrimRight(string(s.partial[:i]), "\r"), "")
		s.partial = s.partial[i+1:]
		if m := s.pattern.FindStringSubmatch(line); m != nil {
			s.matched <- m
			s.pattern, s.partial = nil, nil
			return
		}
	}
}

// tail returns the latest output.
func (s *outputSink) tail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.last)
}

// mergeEnv returns base without the keys set in overrides, followed by
// overrides (KEY=VALUE entries; a later override of a key wins).
func mergeEnv(base []string, overrides ...string) []string {
	keys := make(map[string]bool, len(overrides))
	for _, kv := range overrides {
		k, _, _ := strings.Cut(kv, "=")
		keys[k] = true
	}
	out := make([]string, 0, len(base)+len(overrides))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if !keys[k] {
			out = append(out, kv)
		}
	}
	seen := make(map[string]int, len(overrides))
	for _, kv := range overrides {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := seen[k]; ok {
			out[i] = kv
			continue
		}
		seen[k] = len(out)
		out = append(out, kv)
	}
	return out
}

// dialProbe returns a probe that succeeds once addr accepts TCP connections.
func dialProbe(addr string) func(context.Context, []string) error {
	return func(ctx context.Context, _ []string) error {
		var d net.Dialer
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// hostPort joins 127.0.0.1 and port.
func hostPort(port int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}
