package localaws

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// InvokePath is the path of the RIE's invoke endpoint.
const InvokePath = "/2015-03-31/functions/function/invocations"

// rieStartAttempts is how often StartRIE picks new ports when one it chose
// was taken before the RIE could bind it.
const rieStartAttempts = 3

// RIEOptions configures StartRIE.
type RIEOptions struct {
	// Bootstrap is the path of the function's executable, as deployed on a
	// provided.al2023 runtime (built for linux with -tags lambda.norpc).
	Bootstrap string
	// Env holds extra KEY=VALUE entries for the function. They override
	// the defaults StartRIE sets (see StartRIE). The RIE reads its own
	// settings from the same environment, for example
	// AWS_LAMBDA_FUNCTION_TIMEOUT (seconds, default 300).
	Env []string
	// Stdout, when set, receives a copy of the RIE's stdout and stderr,
	// which carry the function's own output and the RIE's START, END and
	// REPORT lines.
	Stdout io.Writer
	// StartTimeout bounds the start; DefaultStartTimeout when zero.
	StartTimeout time.Duration
}

// RIE is a running aws-lambda-rie serving one function, like one Lambda
// execution environment: invocations run one at a time, and the bootstrap
// is started (the Lambda "init") by the first one.
type RIE struct {
	proc   *process
	url    string
	dir    string
	client *http.Client
	mu     sync.Mutex // serialises Invoke

	closeOnce sync.Once
	closeErr  error
}

// StartRIE runs aws-lambda-rie with opts.Bootstrap natively, the way
// `sam local invoke` runs it in a container, listening on 127.0.0.1 and
// with its Runtime API on another 127.0.0.1 port, and waits until it
// accepts connections. ctx bounds the start only.
//
// The RIE passes its whole environment to the function. It gets a minimal
// one, not the caller's (no AWS profile or credentials of the developer leak
// into the function): PATH, TZ=UTC, AWS_REGION and AWS_DEFAULT_REGION
// us-east-1, and static dummy AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,
// then opts.Env. The RIE adds the Lambda variables (AWS_LAMBDA_RUNTIME_API,
// AWS_LAMBDA_FUNCTION_NAME=test_function, ...); the working directory is
// the bootstrap's directory.
func StartRIE(ctx context.Context, opts RIEOptions) (*RIE, error) {
	if opts.Bootstrap == "" {
		return nil, errors.New("start Lambda RIE: no bootstrap")
	}
	bootstrap, err := filepath.Abs(opts.Bootstrap)
	if err != nil {
		return nil, fmt.Errorf("start Lambda RIE: %w", err)
	}
	if fi, err := os.Stat(bootstrap); err != nil {
		return nil, fmt.Errorf("start Lambda RIE: bootstrap: %w", err)
	} else if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return nil, fmt.Errorf("start Lambda RIE: bootstrap %s is not an executable file", bootstrap)
	}
	bin, err := ToolPath(RIETool)
	if err != nil {
		return nil, fmt.Errorf("start Lambda RIE: %w", err)
	}
	dir, err := os.MkdirTemp("", "localaws-rie-")
	if err != nil {
		return nil, fmt.Errorf("start Lambda RIE: %w", err)
	}
	env := mergeEnv(nil, append([]string{
		"PATH=" + os.Getenv("PATH"),
		"TZ=UTC",
		"AWS_REGION=us-east-1",
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=" + localAccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + localSecretAccessKey,
	}, opts.Env...)...)

	var errs []error
	for attempt := 1; attempt <= rieStartAttempts; attempt++ {
		r, err := startRIEOnce(ctx, bin, bootstrap, dir, env, opts, attempt)
		if err == nil {
			return r, nil
		}
		errs = append(errs, err)
		if !strings.Contains(err.Error(), "address already in use") || ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(append(errs, os.RemoveAll(dir))...)
}

// startRIEOnce starts the RIE on two ports that were free a moment ago.
func startRIEOnce(ctx context.Context, bin, bootstrap, dir string, env []string, opts RIEOptions, attempt int) (*RIE, error) {
	apiPort, err := FreePort()
	if err != nil {
		return nil, fmt.Errorf("start Lambda RIE: %w", err)
	}
	runtimePort, err := FreePort()
	if err != nil {
		return nil, fmt.Errorf("start Lambda RIE: %w", err)
	}
	// The Runtime API port cannot be 0: the RIE hands the bootstrap the
	// configured address, not the bound one.
	addr := hostPort(apiPort)
	p, _, err := startProcess(ctx, procSpec{
		name: "aws-lambda-rie",
		path: bin,
		args: []string{
			"--runtime-interface-emulator-address", addr,
			"--runtime-api-address", hostPort(runtimePort),
			bootstrap,
		},
		env:     env,
		dir:     filepath.Dir(bootstrap),
		logFile: filepath.Join(dir, fmt.Sprintf("rie-%d.log", attempt)),
		output:  opts.Stdout,
		timeout: opts.StartTimeout,
		probe:   dialProbe(addr),
	})
	if err != nil {
		return nil, err
	}
	return &RIE{
		proc:   p,
		url:    "http://" + addr,
		dir:    dir,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}},
	}, nil
}

// URL returns the RIE's base URL, http://127.0.0.1:PORT.
func (r *RIE) URL() string { return r.url }

// InvokeURL returns the URL Invoke posts to: URL + InvokePath.
func (r *RIE) InvokeURL() string { return r.url + InvokePath }

// Invoke sends payload to the function, as the Lambda Invoke API does, and
// returns the RIE's HTTP status and body. Calls run one at a time.
//
// How outcomes look, as the RIE reports them:
//   - success: 200 and the handler's JSON result;
//   - the handler returned an error: 200 too, with the body
//     {"errorMessage":"...","errorType":"..."}; there is no
//     X-Amz-Function-Error header, and Content-Type is text/plain;
//   - the handler panicked: aws-lambda-go reports the panic and exits, so
//     502 with {"errorMessage":"...","errorType":"...","stackTrace":[...]};
//   - the bootstrap failed to start or exited without reporting: 502 with
//     an empty body;
//   - the function ran over its timeout (AWS_LAMBDA_FUNCTION_TIMEOUT in
//     RIEOptions.Env, 300 seconds by default): 200 with the plain-text body
//     "Task timed out after N.00 seconds".
//
// After a 502 the next Invoke starts the bootstrap again (a new init).
//
// err is set only when no response came back (the RIE is down, or ctx
// ended); cancelling ctx does not stop the handler inside the RIE.
func (r *RIE) Invoke(ctx context.Context, payload []byte) (status int, body []byte, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.InvokeURL(), bytes.NewReader(payload))
	if err != nil {
		return 0, nil, fmt.Errorf("invoke %s: %w", r.InvokeURL(), err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err == nil {
		defer resp.Body.Close()
		body, err = io.ReadAll(resp.Body)
		if err == nil {
			return resp.StatusCode, body, nil
		}
	}
	if !r.proc.alive() {
		return 0, nil, fmt.Errorf("invoke %s: %w (the RIE exited: %s)\n%s", r.InvokeURL(), err, r.proc.exitDescription(), r.proc.tailSection())
	}
	return 0, nil, fmt.Errorf("invoke %s: %w", r.InvokeURL(), err)
}

// Close stops the RIE (the bootstrap exits once the Runtime API is gone)
// and removes its log. It is safe to call more than once.
func (r *RIE) Close() error {
	r.closeOnce.Do(func() {
		var errs []error
		r.client.CloseIdleConnections()
		errs = append(errs, r.proc.stop())
		if err := os.RemoveAll(r.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove Lambda RIE files: %w", err))
		}
		r.closeErr = errors.Join(errs...)
	})
	return r.closeErr
}
