package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/kms-autotagger/kms-autotagger/internal/app"
	"github.com/kms-autotagger/kms-autotagger/internal/awskms"
	"github.com/kms-autotagger/kms-autotagger/internal/config"
	"github.com/kms-autotagger/kms-autotagger/internal/history"
	"github.com/kms-autotagger/kms-autotagger/internal/redrive"
)

const redriveHelp = `usage: autotagger redrive [--queue-url URL] [--dry-run] [--max N] [--output text|json]
                         [--timeout 30s] [--visibility-timeout D] [--wait 1s]

Tries the events in the dead-letter queue again through the handler, once the cause
is fixed (a key's deletion cancelled, a permission granted, the tag settings put
right). It reads the three kinds of message the queue holds: the handler's own
records, Lambda's on-failure records, and the events EventBridge could not deliver.

A message is deleted only when its event ends tagged or skipped. Every other message
stays in the queue, visible again when the run ends, and the report says why it still
fails. An event that was not JSON, and a message of no known kind, always stay.
Nothing is written back to the queue: a failure stays the message it was.

Interrupting (Ctrl-C) stops the run, cancelling the event being tried, and makes the
messages not deleted visible again; run it again to go on. Exits 0 when every message processed
was deleted (or, with --dry-run, when the queue could be read), 1 when any stays in
the queue or the queue failed, 2 on a usage error.

`

// redriveCmd redrives the dead-letter queue and prints the report.
func redriveCmd(ctx context.Context, args []string, stdio IO) int {
	fs := flag.NewFlagSet("redrive", flag.ContinueOnError)
	fs.SetOutput(stdio.Stderr)
	queueURL := fs.String("queue-url", "", "`URL` of the dead-letter queue (default $"+config.EnvDeadLetterQueueURL+")")
	dryRun := fs.Bool("dry-run", false, "decode and report what would be redriven; change nothing")
	maxMessages := fs.Int("max", 0, "most messages to process, `N`; 0 means every message visible")
	output := fs.String("output", "text", "`FORMAT` of the report: text, or json for machines")
	timeout := fs.Duration("timeout", redrive.DefaultHandlerTimeout, "deadline of each event's handler run, as the function's timeout")
	visibility := fs.Duration("visibility-timeout", 0, "how long received messages stay hidden if this process dies (default a batch of handler runs plus a minute; 30s for --dry-run)")
	wait := fs.Duration("wait", redrive.DefaultWaitTime, "long-poll wait of each receive; the run ends at the first receive with nothing new")
	fs.Usage = func() {
		fmt.Fprint(stdio.Stderr, redriveHelp)
		fs.PrintDefaults()
		fmt.Fprint(stdio.Stderr, "\nSettings (the handler's, as for invoke):\n"+config.Help()+awsHelp)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stdio.Stderr, "autotagger redrive: "+format+"\n", a...)
		return ExitUsage
	}
	if *queueURL == "" {
		*queueURL = strings.TrimSpace(stdio.Getenv(config.EnvDeadLetterQueueURL))
	}
	switch {
	case fs.NArg() > 0:
		return usageErr("unexpected argument %q; run autotagger redrive --help", fs.Arg(0))
	case *queueURL == "":
		return usageErr("no queue: pass --queue-url or set %s", config.EnvDeadLetterQueueURL)
	case *output != "text" && *output != "json":
		return usageErr("--output is %q, want text or json", *output)
	case *maxMessages < 0:
		return usageErr("--max is %d, want 0 (all) or more", *maxMessages)
	case *timeout <= 0:
		return usageErr("--timeout is %s, want a positive duration", *timeout)
	case *visibility < 0 || *wait < 0:
		return usageErr("--visibility-timeout and --wait must not be negative")
	}

	cfg, err := config.FromEnv(stdio.Getenv)
	if err != nil {
		return usageErr("configuration: %v", err)
	}
	log := slog.New(slog.NewJSONHandler(stdio.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Fprintf(stdio.Stderr, "autotagger redrive: loading AWS configuration: %v\n", err)
		return ExitFailure
	}
	if awsCfg.Region == "" {
		awsCfg.Region = regionOfQueueURL(*queueURL)
	}
	h, err := app.NewHandler(cfg, awsCfg, log)
	if err != nil {
		fmt.Fprintf(stdio.Stderr, "autotagger redrive: %v\n", err)
		return ExitFailure
	}
	// The redrive handler must not dead-letter: its permanent failures would
	// go back into the queue being read, as a second copy of a message that
	// stays anyway. Without a queue, Handle returns them as errors and the
	// redrive leaves the message where it is, with the reason.
	h.DeadLetters = nil
	// Metrics go to stderr with the logs: stdout holds the report.
	if h.Metrics, err = app.NewMetrics(stdio.Stderr, cfg); err != nil {
		fmt.Fprintf(stdio.Stderr, "autotagger redrive: %v\n", err)
		return ExitFailure
	}

	rep, runErr := redrive.Run(ctx, sqs.NewFromConfig(awsCfg), h, redrive.Options{
		QueueURL:          *queueURL,
		DryRun:            *dryRun,
		Max:               *maxMessages,
		HandlerTimeout:    *timeout,
		VisibilityTimeout: *visibility,
		WaitTime:          *wait,
		Logger:            log,
		// A creation event is acted on only once CloudTrail's own record
		// confirms it: a message someone put into the queue cannot plant
		// tags.
		Confirmer: history.NewFinder(awsCfg, awskms.NewRegionalKMS(awsCfg)),
	})
	if *output == "json" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			fmt.Fprintf(stdio.Stderr, "autotagger redrive: encoding the report: %v\n", err)
			return ExitFailure
		}
		fmt.Fprintln(stdio.Stdout, string(b))
	} else if err := rep.WriteTable(stdio.Stdout); err != nil {
		fmt.Fprintf(stdio.Stderr, "autotagger redrive: %v\n", err)
		return ExitFailure
	}
	if runErr != nil {
		fmt.Fprintf(stdio.Stderr, "autotagger redrive: %v\n", runErr)
		return ExitFailure
	}
	if !rep.DryRun && rep.Summary.Remaining > 0 {
		return ExitFailure
	}
	return ExitOK
}

// regionOfQueueURL returns the region in an SQS queue URL such as
// https://sqs.us-east-1.amazonaws.com/111122223333/dlq (or the legacy
// https://us-east-1.queue.amazonaws.com/...), or "" when it names none.
func regionOfQueueURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	labels := strings.Split(u.Hostname(), ".")
	if len(labels) >= 3 && labels[0] == "sqs" {
		return labels[1]
	}
	if len(labels) >= 3 && labels[1] == "queue" {
		return labels[0]
	}
	return ""
}
