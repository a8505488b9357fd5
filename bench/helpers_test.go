package bench_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kms-autotagger/kms-autotagger/internal/localaws"
	"github.com/kms-autotagger/kms-autotagger/internal/localaws/localawstest"
)

// buildFunction builds the command pkg (such as ./cmd/autotagger) for this
// machine with the flags of the Lambda build, into a directory of its own.
func buildFunction(tb testing.TB, pkg, name string) string {
	tb.Helper()
	root, err := localaws.RepoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	out := filepath.Join(tb.TempDir(), name)
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "lambda.norpc,lambdaonly", "-ldflags", "-s -w", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("building %s: %v\n%s", pkg, err, b)
	}
	return out
}

// sampleEvent reads events/name.
func sampleEvent(tb testing.TB, name string) []byte {
	tb.Helper()
	root, err := localaws.RepoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "events", name))
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// processOf returns the pid of the one running process whose executable is
// exe, the child of a process named aws-lambda-rie.
func processOf(tb testing.TB, exe string) int {
	tb.Helper()
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		tb.Fatal(err)
	}
	var pids []int
	for _, d := range dirs {
		if target, err := os.Readlink(filepath.Join(d, "exe")); err != nil || target != exe {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(d))
		ppid := procStatus(tb, pid)["PPid"]
		parent, err := os.Readlink(filepath.Join("/proc", ppid, "exe"))
		if err == nil && filepath.Base(parent) == localaws.RIETool {
			pids = append(pids, pid)
		}
	}
	if len(pids) != 1 {
		tb.Fatalf("processes of %s under %s: got %v, want exactly one", exe, localaws.RIETool, pids)
	}
	return pids[0]
}

// procStatus reads /proc/pid/status into a map of its fields.
func procStatus(tb testing.TB, pid int) map[string]string {
	tb.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatalf("reading status of process %d: %v", pid, err)
	}
	fields := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
			fields[k] = strings.TrimSpace(v)
		}
	}
	return fields
}

// kib reads a "1234 kB" field of /proc/pid/status.
func kib(tb testing.TB, status map[string]string, field string) float64 {
	tb.Helper()
	v, ok := strings.CutSuffix(status[field], " kB")
	n, err := strconv.ParseFloat(v, 64)
	if !ok || err != nil {
		tb.Fatalf("%s: got %q, want a number of kB", field, status[field])
	}
	return n
}

// reportLines collects the emulator's output and reads the init duration
// it logs (its REPORT lines' "Init Duration" is not the init's: the
// "INIT REPORT(durationMs: ...)" line is, from starting the binary until it
// asks for its first event).
type reportLines struct {
	localawstest.SyncBuffer
}

var initDurationPattern = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)

// initDuration returns the duration of the one INIT REPORT line.
func (r *reportLines) initDuration(tb testing.TB) time.Duration {
	tb.Helper()
	out := r.String()
	m := initDurationPattern.FindAllStringSubmatch(out, -1)
	if len(m) != 1 {
		tb.Fatalf("emulator output has %d INIT REPORT lines, want 1:\n%s", len(m), out)
	}
	ms, _ := strconv.ParseFloat(m[0][1], 64)
	return time.Duration(ms * float64(time.Millisecond))
}

// percentile returns the p-th percentile (nearest rank) of d.
func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[max((len(s)*p+99)/100-1, 0)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
