package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/kms-autotagger/kms-autotagger/internal/config"
)

// Exit codes of the CLI.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// IO is where a command reads and writes, and how it sees its environment.
type IO struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdio IO) int
}

// commands lists the subcommands in the order --help shows them. Each lives
// in its own file.
var commands = []command{
	{"invoke", "run the Lambda handler on one event (--event FILE, - for stdin)", invoke},
	{"backfill", "tag the keys created before deployment, from CloudTrail event history", runBackfill},
	{"doctor", "check that the tagger can work here: CloudTrail, dead-letter queue, credentials", doctorCmd},
	{"redrive", "try the dead-letter queue's events again once the cause is fixed (--dry-run, --max N)", redriveCmd},
	{"audit", "check every customer managed key's governance tags per account and region (--repair fixes them)", auditCmd},
}

func usage() string {
	var b strings.Builder
	b.WriteString("autotagger tags every new KMS key with who created it, when and how.\n\n" +
		"In AWS Lambda (AWS_LAMBDA_RUNTIME_API set) it runs as the function's handler.\n" +
		"Elsewhere it is a command line:\n\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  autotagger %-9s %s\n", c.name, c.summary)
	}
	b.WriteString("\nRun \"autotagger COMMAND --help\" for a command's flags.\n\n" +
		"Settings (environment variables, the same for the function and the CLI):\n")
	return b.String()
}

// Run runs the command line with args (without the program name) and
// returns the exit code.
func Run(ctx context.Context, args []string, stdio IO) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdio.Stdout, usage()+config.Help()+awsHelp)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdio)
		}
	}
	fmt.Fprintf(stdio.Stderr, "autotagger: unknown command %q; run autotagger --help\n", args[0])
	return ExitUsage
}

const awsHelp = `
AWS credentials, region and endpoints come from the standard sources:
AWS_REGION, AWS_PROFILE, AWS_ACCESS_KEY_ID..., and AWS_ENDPOINT_URL_KMS,
AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL_STS and AWS_ENDPOINT_URL_CLOUDTRAIL to
use other implementations of those APIs.
`
