//go:build lambdaonly

package main

import (
	"context"
	"fmt"
	"os"
)

// runCLI refuses: this build (tag lambdaonly, the Lambda artifact) serves
// only the Lambda runtime. `make build` makes the full autotagger binary.
func runCLI(context.Context, []string) int {
	fmt.Fprintln(os.Stderr, "autotagger: this binary was built for AWS Lambda only (tag lambdaonly) and has no CLI; build the full one with `make build`")
	return 2
}
