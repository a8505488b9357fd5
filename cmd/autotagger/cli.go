//go:build !lambdaonly

package main

import (
	"context"
	"os"

	"github.com/kms-autotagger/kms-autotagger/internal/cli"
)

// runCLI runs a CLI subcommand. The Lambda artifact is built with the tag
// lambdaonly, which leaves the CLI (and the clients only it uses) out.
func runCLI(ctx context.Context, args []string) int {
	return cli.Run(ctx, args, cli.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
}
