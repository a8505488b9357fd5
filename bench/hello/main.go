// Command hello is the smallest aws-lambda-go function, built like the
// bootstrap (CGO_ENABLED=0 -trimpath -tags lambda.norpc -ldflags="-s -w"):
// the baseline the cold-start and memory benchmarks in package bench
// compare the bootstrap with.
package main

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(context.Context, json.RawMessage) (string, error) { return "hello", nil })
}
