// Command demo runs kms-autotagger end to end on this machine with no AWS
// account and no Docker (see package internal/demo). `make demo` builds the
// bootstrap and runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/kms-autotagger/kms-autotagger/internal/demo"
)

func main() {
	bootstrap := flag.String("bootstrap", "bin/bootstrap", "the function binary, built for this machine")
	eventsDir := flag.String("events", "events", "folder of sample events")
	verbose := flag.Bool("v", false, "show the function's and the stand-ins' logs")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var logs io.Writer
	if *verbose {
		logs = os.Stderr
	}
	fmt.Fprintln(os.Stderr, "starting local-kms (us-east-1, eu-west-1) behind the region router, the SQS stand-in and the Lambda runtime interface emulator on 127.0.0.1 ...")
	report, err := demo.Run(ctx, demo.Options{
		Bootstrap: *bootstrap,
		EventsDir: *eventsDir,
		Env:       []string{"STATIC_TAGS=ManagedBy=kms-autotagger"},
		Logs:      logs,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("posted %d sample events from %s to the real bootstrap, as `sam local invoke` would:\n\n", len(report.Rows), *eventsDir)
	if err := report.Print(os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
	if err := report.Check(); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
	fmt.Println("\nstopped everything the demo started.")
}
