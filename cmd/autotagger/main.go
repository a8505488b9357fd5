// Command autotagger is the kms-autotagger Lambda function and its command
// line. Started by the Lambda runtime (AWS_LAMBDA_RUNTIME_API set) it serves
// the handler; otherwise it runs a CLI subcommand.
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/aws/aws-lambda-go/lambda"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/kms-autotagger/kms-autotagger/internal/app"
	"github.com/kms-autotagger/kms-autotagger/internal/config"
)

func main() {
	if os.Getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		serveLambda()
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runCLI(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// serveLambda wires the handler from the environment and hands it to the
// Lambda runtime. The AWS configuration is the SDK's default one
// (config.LoadDefaultConfig), as on the command line; in Lambda it reads the
// Region and the function role's credentials from the environment. A
// configuration error ends the init phase with a clear message, so Lambda
// reports it and keeps the event for a retry.
func serveLambda() {
	cfg, cfgErr := config.FromEnv(os.Getenv)
	log := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))
	if cfgErr != nil {
		log.Error("invalid configuration", slog.String("error", cfgErr.Error()))
		os.Exit(1)
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		log.Error("invalid AWS configuration", slog.String("error", err.Error()))
		os.Exit(1)
	}
	h, err := app.NewHandler(cfg, awsCfg, log)
	if err != nil {
		log.Error("cannot start", slog.String("error", err.Error()))
		os.Exit(1)
	}
	d, err := app.NewDispatcher(h, cfg, awsCfg, log, os.Getenv)
	if err != nil {
		log.Error("cannot start", slog.String("error", err.Error()))
		os.Exit(1)
	}
	lambda.Start(d.Handle)
}
