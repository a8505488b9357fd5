package localaws

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// SQSOptions configures StartSQS.
type SQSOptions struct {
	// Region is the region of Client and CreateQueue's queues; us-east-1
	// when empty. moto keeps each region's queues apart, as SQS does: a
	// client reaches a queue only when it signs for the queue's region.
	Region string
	// Account is the account ID in queue URLs and ARNs; DefaultAccount when
	// empty.
	Account string
	// Output, when set, receives a copy of the server's stdout and stderr.
	Output io.Writer
	// StartTimeout bounds the start; DefaultStartTimeout when zero.
	StartTimeout time.Duration
}

// SQS is a running SQS stand-in: a moto server of its own serving one
// account (MotoOptions.SingleAccount), so that a request acts in Account
// whatever credentials sign it, as the SDK's default credentials of a test
// and of the Lambda emulator do. It speaks the AWS JSON 1.0 protocol
// aws-sdk-go-v2 uses. Queues live in its memory and are lost when it stops.
type SQS struct {
	moto   *Moto
	region string
}

// StartSQS starts moto for SQS (see StartMoto) and waits until it answers.
// ctx bounds the start only; the server runs until Stop or Close.
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
	m, err := StartMoto(ctx, MotoOptions{Account: account, SingleAccount: true, Output: opts.Output, StartTimeout: opts.StartTimeout})
	if err != nil {
		return nil, fmt.Errorf("start SQS stand-in: %w", err)
	}
	return &SQS{moto: m, region: region}, nil
}

// URL returns the server's base URL, http://127.0.0.1:PORT, the value for
// AWS_ENDPOINT_URL_SQS (or a client's BaseEndpoint).
func (s *SQS) URL() string { return s.moto.URL() }

// Region returns the region of Client.
func (s *SQS) Region() string { return s.region }

// Account returns the account ID in queue URLs and ARNs.
func (s *SQS) Account() string { return s.moto.Account() }

// Moto returns the moto server, for its record of requests and its hook.
func (s *SQS) Moto() *Moto { return s.moto }

// Client returns an aws-sdk-go-v2 SQS client that signs with static
// credentials for Region and sends to URL; optFns may change its options.
func (s *SQS) Client(optFns ...func(*sqs.Options)) *sqs.Client {
	return sqs.NewFromConfig(s.moto.Config(s.region), optFns...)
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
func (s *SQS) Stop() error { return s.moto.Stop() }

// Close stops the server and removes its log. It is safe to call more than
// once, and after Stop.
func (s *SQS) Close() error { return s.moto.Close() }
