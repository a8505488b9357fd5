// Command echo is a minimal Lambda function for the localaws tests: it
// returns its input, and the values of environment variables the input names
// in "getenv"; it fails with the message in "fail", or panics with the one in
// "panic".
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
)

// request holds the fields of the input the function acts on.
type request struct {
	Fail   string   `json:"fail"`
	Panic  string   `json:"panic"`
	Getenv []string `json:"getenv"`
}

// reply is the function's result.
type reply struct {
	Input json.RawMessage   `json:"input"`
	Env   map[string]string `json:"env,omitempty"`
}

func handle(_ context.Context, in json.RawMessage) (reply, error) {
	var req request
	if err := json.Unmarshal(in, &req); err != nil {
		return reply{}, fmt.Errorf("decode input: %w", err)
	}
	if req.Fail != "" {
		return reply{}, errors.New(req.Fail)
	}
	if req.Panic != "" {
		panic(req.Panic)
	}
	out := reply{Input: in}
	for _, name := range req.Getenv {
		if out.Env == nil {
			out.Env = make(map[string]string)
		}
		out.Env[name] = os.Getenv(name)
	}
	fmt.Println("echo: handled", len(in), "bytes")
	return out, nil
}

func main() {
	lambda.Start(handle)
}
