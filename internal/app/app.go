package app

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kms-autotagger/kms-autotagger/internal/awscfn"
	"github.com/kms-autotagger/kms-autotagger/internal/awskms"
	"github.com/kms-autotagger/kms-autotagger/internal/awssqs"
	"github.com/kms-autotagger/kms-autotagger/internal/config"
	"github.com/kms-autotagger/kms-autotagger/internal/history"
	"github.com/kms-autotagger/kms-autotagger/internal/metrics"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// NewHandler returns the handler cfg describes, with clients made from
// awsCfg, config.LoadDefaultConfig's in Lambda and on the command line. It
// leaves endpoints to the standard variables, so
// AWS_ENDPOINT_URL_KMS, AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL_STS,
// AWS_ENDPOINT_URL_CLOUDTRAIL and AWS_ENDPOINT_URL_CLOUDFORMATION point it at
// other implementations of the APIs. With
// MEMBER_ROLE_NAME or HOME_ACCOUNT_ID set, keys of other accounts are tagged
// with a role assumed in them (or refused by name); otherwise every key is
// tagged with the function's own credentials. The stack lookups of
// CreatedByStack and CreatedByUser (internal/awscfn) use the same
// credentials as the KMS clients of the key's account; they are made only
// when one of the two tags is on. It makes no network call.
func NewHandler(cfg config.Config, awsCfg aws.Config, log *slog.Logger) (*tagger.Handler, error) {
	policy, err := cfg.Policy()
	if err != nil {
		return nil, err
	}
	retryer := awskms.NewRetryer(cfg.Retry)
	withRetryer := func(o *kms.Options) { o.Retryer = retryer }
	rateLimit := awskms.WithRateLimit(cfg.TagRateLimit) // one bucket per client: per account and Region
	var clients tagger.KMSClients = awskms.NewRegionalKMS(awsCfg, withRetryer, rateLimit)
	var configs awskms.ConfigSource = awskms.SingleAccount{Config: awsCfg}
	if cfg.CrossAccount() {
		accounts := awskms.NewAccountKMS(awsCfg, sts.NewFromConfig(awsCfg), awskms.AccountKMSOptions{
			HomeAccount: cfg.HomeAccountID,
			RoleName:    cfg.MemberRoleName,
			RolePath:    cfg.MemberRolePath,
			ExternalID:  cfg.MemberExternalID,
		}, withRetryer, rateLimit)
		clients, configs = accounts, accounts
	}
	h := &tagger.Handler{
		Policy:            policy,
		KMS:               clients,
		Logger:            log,
		DeadLetterReserve: cfg.DeadLetterReserve,
	}
	if cfg.Names.CreatedByStack != "" || cfg.Names.CreatedByUser != "" {
		// The stack and its operator, in the key's account and region, with
		// the credentials that tag the key there.
		h.Stacks = awscfn.New(configs, awscfn.Options{Retry: cfg.Retry, RateLimit: cfg.StackLookupRateLimit})
		h.StackLookupTimeout = cfg.StackLookupTimeout
	}
	if cfg.DeadLetterQueueURL != "" {
		h.DeadLetters = &awssqs.DeadLetterQueue{SQS: sqs.NewFromConfig(awsCfg), URL: cfg.DeadLetterQueueURL}
	}
	if cfg.TamperRepair {
		// CloudTrail's event history finds the creation events of keys to
		// repair and settles which of two creation events of a key is real.
		finder := history.NewFinder(awsCfg, awskms.NewRegionalKMS(awsCfg, withRetryer))
		h.Tamper = tagger.TamperRepair{Creations: finder, SelfRoleARN: cfg.TaggerRoleARN, TaggerRolePath: cfg.TaggerRolePath}
		h.Confirmer = finder
	}
	if h.Metrics, err = NewMetrics(os.Stdout, cfg); err != nil {
		return nil, err
	}
	return h, nil
}

// NewMetrics returns the metrics emitter cfg describes, writing to w (the
// function's stdout, where CloudWatch Logs extracts them); nil when metrics
// are off.
func NewMetrics(w io.Writer, cfg config.Config) (*metrics.Emitter, error) {
	if cfg.MetricsNamespace == "" {
		return nil, nil
	}
	m, err := metrics.New(w, cfg.MetricsNamespace)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return m, nil
}
