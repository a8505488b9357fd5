package awskms

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// DefaultSessionName is the RoleSessionName of the tagger's sessions in
// member accounts; it shows in their CloudTrail records of TagResource.
const DefaultSessionName = "kms-autotagger"

// credentialsExpiryWindow is how long before they expire assumed-role
// credentials are refreshed, so that none expires during a call.
const credentialsExpiryWindow = time.Minute

// STSAPI is the part of the STS API AccountKMS calls: AssumeRole for the
// member accounts' credentials, GetCallerIdentity for the tagger's own
// account when it is not given.
type STSAPI interface {
	AssumeRole(ctx context.Context, in *sts.AssumeRoleInput, optFns ...func(*sts.Options)) (*sts.AssumeRoleOutput, error)
	GetCallerIdentity(ctx context.Context, in *sts.GetCallerIdentityInput, optFns ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

var _ STSAPI = (*sts.Client)(nil)

// AccountKMSOptions configures NewAccountKMS.
type AccountKMSOptions struct {
	// HomeAccount is the account of the base credentials. Empty means it is
	// asked of sts:GetCallerIdentity once, when first needed.
	HomeAccount string
	// RoleName is the name of the role the tagger assumes in every other
	// account. Empty turns cross-account tagging off: keys of other
	// accounts then fail with a *tagger.AccountError.
	RoleName string
	// RolePath is the path of that role, such as "/governance/"; "/" when
	// empty.
	RolePath string
	// ExternalID, when not empty, is passed to AssumeRole (the member
	// role's trust policy requires it with an sts:ExternalId condition).
	ExternalID string
	// SessionName is the RoleSessionName; DefaultSessionName when empty.
	SessionName string
}

// AccountKMS serves the keys of every account: the tagger's own account
// with the base credentials, every other account with the credentials of a
// role assumed in it (TagResource cannot be called across accounts). It
// keeps one RegionalKMS per account, made on first use; the assumed-role
// credentials are cached and refreshed before they expire. Making it calls
// no AWS API. It is safe for concurrent use.
type AccountKMS struct {
	cfg    aws.Config
	sts    STSAPI
	opts   AccountKMSOptions
	optFns []func(*kms.Options)
	home   *RegionalKMS

	homeMu      sync.Mutex
	homeAccount string

	mu       sync.Mutex
	accounts map[string]*memberAccount
}

// memberAccount is what AccountKMS keeps of another account: the
// configuration that signs with the member role's cached credentials, and
// the KMS clients made from it.
type memberAccount struct {
	cfg aws.Config
	kms *RegionalKMS
}

var _ tagger.KMSClients = (*AccountKMS)(nil)

// accountIDPattern is the form of an AWS account ID.
var accountIDPattern = regexp.MustCompile(`^\d{12}$`)

// NewAccountKMS returns clients made from cfg (the base credentials and
// endpoint resolution) with optFns applied to every KMS client; stsClient
// assumes the member roles and, when opts.HomeAccount is empty, tells the
// tagger's own account.
func NewAccountKMS(cfg aws.Config, stsClient STSAPI, opts AccountKMSOptions, optFns ...func(*kms.Options)) *AccountKMS {
	if opts.SessionName == "" {
		opts.SessionName = DefaultSessionName
	}
	return &AccountKMS{
		cfg:         cfg,
		sts:         stsClient,
		opts:        opts,
		optFns:      optFns,
		home:        NewRegionalKMS(cfg, optFns...),
		homeAccount: opts.HomeAccount,
		accounts:    make(map[string]*memberAccount),
	}
}

// KMSClient returns the client for a key of account in region: with the
// base credentials for the tagger's own account, with the member role's
// credentials for any other. Credentials are not fetched here but when the
// client signs its first request, so a failure to assume the role comes
// back from that call as a *tagger.AccountError inside the call's error.
func (a *AccountKMS) KMSClient(ctx context.Context, account, region string) (tagger.KMSAPI, error) {
	m, err := a.account(ctx, account, region)
	if err != nil {
		return nil, err
	}
	if m == nil {
		return a.home.Client(region), nil
	}
	return m.kms.Client(region), nil
}

var _ ConfigSource = (*AccountKMS)(nil)

// AccountConfig returns the AWS configuration whose credentials serve the
// keys of account, as KMSClient's clients do: the base configuration for
// the tagger's own account, one signing with the member role's cached
// credentials (the same cache as the account's KMS clients) for any other.
// Clients made from it, such as the stack lookups' CloudFormation and
// CloudTrail clients, set their own region. The errors are KMSClient's.
func (a *AccountKMS) AccountConfig(ctx context.Context, account, region string) (aws.Config, error) {
	m, err := a.account(ctx, account, region)
	if err != nil {
		return aws.Config{}, err
	}
	if m == nil {
		return a.cfg, nil
	}
	return m.cfg, nil
}

// account returns what serves the keys of account: nil for the tagger's
// own account (the base credentials), the member account otherwise, or a
// *tagger.AccountError when the account cannot be served.
func (a *AccountKMS) account(ctx context.Context, account, region string) (*memberAccount, error) {
	home, err := a.HomeAccount(ctx)
	if err != nil {
		return nil, err
	}
	if account == home {
		return nil, nil
	}
	if !accountIDPattern.MatchString(account) {
		return nil, &tagger.AccountError{Account: account, Err: errors.New("not a 12-digit account ID")}
	}
	if a.opts.RoleName == "" {
		return nil, &tagger.AccountError{Account: account,
			Err: fmt.Errorf("the tagger runs in account %s and cross-account tagging is off (no member role name is set)", home)}
	}
	return a.member(account, region), nil
}

// HomeAccount returns the account of the base credentials: the one given,
// or the one sts:GetCallerIdentity answers, asked once (a failed call is
// asked again next time).
func (a *AccountKMS) HomeAccount(ctx context.Context) (string, error) {
	a.homeMu.Lock()
	defer a.homeMu.Unlock()
	if a.homeAccount != "" {
		return a.homeAccount, nil
	}
	out, err := a.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("finding the tagger's own account with sts:GetCallerIdentity: %w", err)
	}
	account := aws.ToString(out.Account)
	if !accountIDPattern.MatchString(account) {
		return "", fmt.Errorf("sts:GetCallerIdentity answered account %q, not a 12-digit account ID", account)
	}
	a.homeAccount = account
	return account, nil
}

// RoleARN returns the ARN of the member role in account, in the partition
// of region.
func (a *AccountKMS) RoleARN(account, region string) string {
	path := a.opts.RolePath
	if path == "" {
		path = "/"
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	if !strings.HasSuffix(path, "/") {
		path += "/"
	}
	return fmt.Sprintf("arn:%s:iam::%s:role%s%s", partitionOf(region), account, path, a.opts.RoleName)
}

// member returns what AccountKMS keeps of account, signing with the member
// role's credentials, made on first use.
func (a *AccountKMS) member(account, region string) *memberAccount {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r, ok := a.accounts[account]; ok {
		return r
	}
	roleARN := a.RoleARN(account, region)
	provider := stscreds.NewAssumeRoleProvider(a.sts, roleARN, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = a.opts.SessionName
		if a.opts.ExternalID != "" {
			o.ExternalID = aws.String(a.opts.ExternalID)
		}
	})
	cfg := a.cfg.Copy()
	cfg.Credentials = aws.NewCredentialsCache(&accountCredentials{account: account, roleARN: roleARN, provider: provider},
		func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = credentialsExpiryWindow })
	m := &memberAccount{cfg: cfg, kms: NewRegionalKMS(cfg, a.optFns...)}
	a.accounts[account] = m
	return m
}

// accountCredentials names the account and the role in every failure of
// its provider.
type accountCredentials struct {
	account, roleARN string
	provider         aws.CredentialsProvider
}

// Retrieve implements aws.CredentialsProvider.
func (c *accountCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	creds, err := c.provider.Retrieve(ctx)
	if err != nil {
		return creds, &tagger.AccountError{Account: c.account, RoleARN: c.roleARN, Err: err}
	}
	return creds, nil
}

// partitionOf returns the partition of region, by the region name patterns
// of the AWS partitions; "aws" for anything else.
func partitionOf(region string) string {
	for _, p := range []struct{ prefix, partition string }{
		{"cn-", "aws-cn"},
		{"us-gov-", "aws-us-gov"},
		{"us-iso-", "aws-iso"},
		{"us-isob-", "aws-iso-b"},
		{"us-isof-", "aws-iso-f"},
		{"eu-isoe-", "aws-iso-e"},
		{"eusc-", "aws-eusc"},
	} {
		if strings.HasPrefix(region, p.prefix) {
			return p.partition
		}
	}
	return "aws"
}
