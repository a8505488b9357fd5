package awskms

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/kms-autotagger/kms-autotagger/internal/regional"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

var _ tagger.KMSAPI = (*kms.Client)(nil)

var _ tagger.KMSClients = (*RegionalKMS)(nil)

// RegionalKMS keeps one KMS client per region, made on first use from one
// base configuration, so a replica is tagged in its own region. It serves
// the keys of the account its credentials belong to.
type RegionalKMS struct {
	clients *regional.Clients[*kms.Client]
}

// NewRegionalKMS returns clients made from cfg (endpoint resolution, such as
// AWS_ENDPOINT_URL_KMS, comes from cfg as usual) with optFns applied.
func NewRegionalKMS(cfg aws.Config, optFns ...func(*kms.Options)) *RegionalKMS {
	return &RegionalKMS{clients: regional.New(func(region string) *kms.Client {
		return kms.NewFromConfig(cfg, append([]func(*kms.Options){func(o *kms.Options) { o.Region = region }}, optFns...)...)
	})}
}

// KMSClient returns the client for region; account is not used, since one
// set of credentials serves one account.
func (r *RegionalKMS) KMSClient(_ context.Context, _, region string) (tagger.KMSAPI, error) {
	return r.Client(region), nil
}

// Client returns the *kms.Client for region, creating it on first use.
func (r *RegionalKMS) Client(region string) *kms.Client {
	return r.clients.Get(region)
}

// ConfigSource returns the AWS configuration whose credentials serve the
// keys of an account, for clients of other services that must act in the
// key's account as its KMS client does (the stack lookups of
// internal/awscfn): AccountKMS, with the member role for other accounts,
// or SingleAccount.
type ConfigSource interface {
	AccountConfig(ctx context.Context, account, region string) (aws.Config, error)
}

// SingleAccount serves every account with one configuration, as
// RegionalKMS serves every key with one set of credentials.
type SingleAccount struct {
	Config aws.Config
}

var _ ConfigSource = SingleAccount{}

// AccountConfig returns s.Config, whatever the account.
func (s SingleAccount) AccountConfig(context.Context, string, string) (aws.Config, error) {
	return s.Config, nil
}
