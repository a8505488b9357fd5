package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/kms-autotagger/kms-autotagger/internal/app"
	"github.com/kms-autotagger/kms-autotagger/internal/config"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// invoke runs the Lambda handler on one event, with the same environment,
// and prints the Result as one JSON object on the last line of stdout.
func invoke(ctx context.Context, args []string, stdio IO) int {
	fs := flag.NewFlagSet("invoke", flag.ContinueOnError)
	fs.SetOutput(stdio.Stderr)
	eventPath := fs.String("event", "", "`FILE` holding the EventBridge event as JSON; - reads stdin")
	timeout := fs.Duration("timeout", 30*time.Second, "deadline of the invocation, as the function's timeout would set it")
	fs.Usage = func() {
		fmt.Fprintf(stdio.Stderr, "usage: autotagger invoke --event FILE [--timeout 30s]\n\n"+
			"Runs exactly the Lambda handler on one event. Logs go to stderr as JSON; the result\n"+
			"is the last line of stdout: {\"outcome\": \"tagged\"|\"skipped\"|\"dead-lettered\"|\"error\", ...}.\n"+
			"Exits 1 when the handler returns an error (Lambda would retry the event).\n\n")
		fs.PrintDefaults()
		fmt.Fprint(stdio.Stderr, "\nSettings:\n"+config.Help()+awsHelp)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if *eventPath == "" || fs.NArg() > 0 {
		fs.Usage()
		return ExitUsage
	}
	raw, err := readEvent(*eventPath, stdio.Stdin)
	if err != nil {
		fmt.Fprintf(stdio.Stderr, "autotagger invoke: %v\n", err)
		return ExitUsage
	}
	cfg, err := config.FromEnv(stdio.Getenv)
	if err != nil {
		fmt.Fprintf(stdio.Stderr, "autotagger invoke: configuration: %v\n", err)
		return ExitUsage
	}
	log := slog.New(slog.NewJSONHandler(stdio.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Fprintf(stdio.Stderr, "autotagger invoke: loading AWS configuration: %v\n", err)
		return ExitFailure
	}
	h, err := app.NewHandler(cfg, awsCfg, log)
	if err != nil {
		fmt.Fprintf(stdio.Stderr, "autotagger invoke: %v\n", err)
		return ExitFailure
	}
	// Metrics go to stderr with the logs: stdout ends with the result.
	if h.Metrics, err = app.NewMetrics(stdio.Stderr, cfg); err != nil {
		fmt.Fprintf(stdio.Stderr, "autotagger invoke: %v\n", err)
		return ExitFailure
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res, herr := h.Handle(ctx, raw)
	out := struct {
		tagger.Result
		Error string `json:"error,omitempty"`
	}{Result: res}
	if herr != nil {
		out.Outcome = tagger.OutcomeError
		out.Error = herr.Error()
	}
	line, err := json.Marshal(out)
	if err != nil {
		fmt.Fprintf(stdio.Stderr, "autotagger invoke: encoding result: %v\n", err)
		return ExitFailure
	}
	fmt.Fprintln(stdio.Stdout, string(line))
	if herr != nil {
		return ExitFailure
	}
	return ExitOK
}

func readEvent(path string, stdin io.Reader) ([]byte, error) {
	if path == "-" {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("reading event from stdin: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading event: %w", err)
	}
	if strings.TrimSpace(string(b)) == "" {
		return nil, fmt.Errorf("event file %s is empty", path)
	}
	return b, nil
}
