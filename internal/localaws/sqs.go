package localaws

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// sqsListeningLine is the line scripts/sqsserver.mjs prints once listening.
var sqsListeningLine = regexp.MustCompile(`^\{"event":"listening".*"port":(\d+)`)

// SQSOptions configures StartSQS.
type SQSOptions struct {
	// Region is the region in queue ARNs and of Client; us-east-1 when
	// empty. local-aws-sqs serves every region alike.
	Region string
	// Account is the account ID in queue URLs and ARNs; DefaultAccount when
	// empty.
	Account string
	// Output, when set, receives a copy of the server's stdout and stderr.
	Output io.Writer
	// StartTimeout bounds the start; DefaultStartTimeout when zero.
	StartTimeout time.Duration
}

// SQS is a running SQS stand-in: local-aws-sqs under node on 127.0.0.1,
// speaking the AWS JSON 1.0 protocol aws-sdk-go-v2 uses. Queues live in its
// memory and are lost when it stops.
type SQS struct {
	proc    *process
	url     string
	region  string
	account string
	dir     string

	closeOnce sync.Once
	closeErr  error
}

// StartSQS runs `node scripts/sqsserver.mjs` on a port the kernel picks and
// waits until it accepts connections. ctx bounds the start only; the server
// runs until Stop or Close.
func StartSQS(ctx context.Context, opts SQSOptions) (*SQS, error) {
	region, account := opts.Region, opts.Account
	if region == "" {
		region = "us-east-1"
	}
	if account == "" {
		account = DefaultAccount
	}
	if !regionPattern.MatchString(region) {
		return nil, fmt.Errorf("start SQS stand-in: region %q is not a region name such as us-east-1", region)
	}
	if !accountPattern.MatchString(account) {
		return nil, fmt.Errorf("start SQS stand-in: account %q is not 12 digits", account)
	}
	node, script, err := sqsServerCommand()
	if err != nil {
		return nil, fmt.Errorf("start SQS stand-in: %w", err)
	}
	dir, err := os.MkdirTemp("", "localaws-sqs-")
	if err != nil {
		return nil, fmt.Errorf("start SQS stand-in: %w", err)
	}
	var out io.Writer
	if opts.Output != nil {
		out = &prefixWriter{mu: new(sync.Mutex), w: opts.Output, prefix: "[local-aws-sqs] "}
	}
	p, match, err := startProcess(ctx, procSpec{
		name:      "local-aws-sqs",
		path:      node,
		args:      []string{script, "--port", "0", "--region", region, "--account-id", account},
		env:       os.Environ(),
		dir:       filepath.Dir(script),
		logFile:   filepath.Join(dir, "sqsserver.log"),
		output:    out,
		timeout:   opts.StartTimeout,
		readyLine: sqsListeningLine,
		probe: func(ctx context.Context, m []string) error {
			return dialProbe(hostPort(atoiOrZero(m[1])))(ctx, m)
		},
	})
	if err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	return &SQS{
		proc:    p,
		url:     "http://" + hostPort(atoiOrZero(match[1])),
		region:  region,
		account: account,
		dir:     dir,
	}, nil
}

// URL returns the server's base URL, http://127.0.0.1:PORT, the value for
// AWS_ENDPOINT_URL_SQS (or a client's BaseEndpoint).
func (s *SQS) URL() string { return s.url }

// Region returns the region of Client and of queue ARNs.
func (s *SQS) Region() string { return s.region }

// Account returns the account ID in queue URLs and ARNs.
func (s *SQS) Account() string { return s.account }

// Client returns an aws-sdk-go-v2 SQS client that signs with static
// credentials for Region and sends to URL; optFns may change its options.
func (s *SQS) Client(optFns ...func(*sqs.Options)) *sqs.Client {
	return sqs.New(sqs.Options{
		Region:       s.region,
		Credentials:  credentials.NewStaticCredentialsProvider(localAccessKeyID, localSecretAccessKey, ""),
		BaseEndpoint: aws.String(s.url),
	}, optFns...)
}

// CreateQueue creates the standard queue name and returns its URL, which
// has the form http://127.0.0.1:PORT/ACCOUNT/NAME.
func (s *SQS) CreateQueue(ctx context.Context, name string) (string, error) {
	out, err := s.Client().CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		return "", fmt.Errorf("create queue %s: %w", name, err)
	}
	return aws.ToString(out.QueueUrl), nil
}

// Stop stops the server, losing its queues, so that tests can see how
// callers cope with SQS being down: later requests fail to connect. It is
// safe to call more than once.
func (s *SQS) Stop() error { return s.proc.stop() }

// Close stops the server and removes its log. It is safe to call more than
// once, and after Stop.
func (s *SQS) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		errs = append(errs, s.Stop())
		if err := os.RemoveAll(s.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove SQS stand-in files: %w", err))
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}
