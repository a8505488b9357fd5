// Package cli is the autotagger command line: the subcommands that run when
// the binary is not started by the Lambda runtime.
package cli
