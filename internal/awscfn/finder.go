package awscfn

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/smithy-go"

	"github.com/kms-autotagger/kms-autotagger/internal/awskms"
	"github.com/kms-autotagger/kms-autotagger/internal/events"
	"github.com/kms-autotagger/kms-autotagger/internal/history"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// DescribeAPI is the part of the CloudFormation API the finder calls.
type DescribeAPI interface {
	DescribeStackResources(ctx context.Context, in *cloudformation.DescribeStackResourcesInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DescribeStackResourcesOutput, error)
}

var _ DescribeAPI = (*cloudformation.Client)(nil)

// Clients are the clients of one account and region.
type Clients struct {
	// CloudFormation describes the stack that holds a key.
	CloudFormation DescribeAPI
	// CloudTrail looks up the stack's operations in the event history.
	CloudTrail history.LookupAPI
}

// ClientsFunc returns the clients of account in region; an error (such as
// a *tagger.AccountError) fails the lookup of that account's keys.
type ClientsFunc func(ctx context.Context, account, region string) (Clients, error)

// Resource types whose physical id is a KMS key id.
const (
	ResourceTypeKey        = "AWS::KMS::Key"
	ResourceTypeReplicaKey = "AWS::KMS::ReplicaKey"
)

// StackSetPrefix begins the name of every stack CloudFormation makes for a
// StackSet instance: StackSet-<stack set name>-<id>.
const StackSetPrefix = "StackSet-"

// Finder finds the stack that created a key, and the stack operation's
// record. It is safe for concurrent use.
type Finder struct {
	// Clients returns the clients of an account and region.
	Clients ClientsFunc
	// Now returns the current time; nil means time.Now. A key younger than
	// tagger.YoungKeyAge that CloudFormation or CloudTrail's history does
	// not know yet is pending, not unattributable.
	Now func() time.Time
}

var _ tagger.StackFinder = (*Finder)(nil)

// Options configures New.
type Options struct {
	// Retry bounds the retries of every call (awskms.NewLookupRetryer).
	Retry awskms.RetryOptions
	// RateLimit is the most requests per second, retries included, that
	// each client sends: one CloudFormation and one CloudTrail client per
	// account and Region. 0 means no limit.
	RateLimit float64
	// CloudFormation and CloudTrail are further options of every client of
	// the service, applied last (endpoints, in tests).
	CloudFormation []func(*cloudformation.Options)
	CloudTrail     []func(*cloudtrail.Options)
}

// New returns a Finder whose clients are made on first use, one per
// account and region, from the configuration configs gives for the
// account (for another account, the member role's cached credentials): the
// SDK's clients, with the standard retryer of awskms.NewLookupRetryer and
// a rate limit of their own (awskms.NewRateLimit). Endpoint resolution,
// such as AWS_ENDPOINT_URL_CLOUDFORMATION and AWS_ENDPOINT_URL_CLOUDTRAIL,
// comes from the configuration as usual. It makes no network call.
func New(configs awskms.ConfigSource, opts Options) *Finder {
	retryer := awskms.NewLookupRetryer(opts.Retry)
	type scope struct{ account, region string }
	var (
		mu      sync.Mutex
		clients = map[scope]Clients{}
	)
	return &Finder{Clients: func(ctx context.Context, account, region string) (Clients, error) {
		cfg, err := configs.AccountConfig(ctx, account, region)
		if err != nil {
			return Clients{}, err
		}
		mu.Lock()
		defer mu.Unlock()
		s := scope{account, region}
		if c, ok := clients[s]; ok {
			return c, nil
		}
		cfn := cloudformation.NewFromConfig(cfg, append([]func(*cloudformation.Options){func(o *cloudformation.Options) {
			o.Region = region
			o.Retryer = retryer
			o.APIOptions = append(o.APIOptions, awskms.NewRateLimit("CloudFormation", opts.RateLimit))
		}}, opts.CloudFormation...)...)
		trail := cloudtrail.NewFromConfig(cfg, append([]func(*cloudtrail.Options){func(o *cloudtrail.Options) {
			o.Region = region
			o.Retryer = retryer
			o.APIOptions = append(o.APIOptions, awskms.NewRateLimit("CloudTrail", opts.RateLimit))
		}}, opts.CloudTrail...)...)
		c := Clients{CloudFormation: cfn, CloudTrail: trail}
		clients[s] = c
		return c, nil
	}}
}

// FindStack implements tagger.StackFinder: in key's account and region,
// DescribeStackResources by the key's id, and with operator the stack
// operation's record in CloudTrail's history. A failure worth retrying
// (throttling past the retries, a 5xx, a network fault, the deadline) is
// pending; a key younger than tagger.YoungKeyAge that CloudFormation does
// not list yet, or whose stack operation the history does not hold yet,
// is pending too.
func (f *Finder) FindStack(ctx context.Context, key *events.KeyEvent, operator bool) *tagger.StackOrigin {
	young := f.now().Sub(key.EventTime) < tagger.YoungKeyAge
	c, err := f.Clients(ctx, key.Account, key.Region)
	if err != nil {
		return failed(fmt.Sprintf("no clients for account %s in %s", key.Account, key.Region), err)
	}
	stackARN, why, err := describe(ctx, c.CloudFormation, key)
	switch {
	case err != nil:
		return failed(fmt.Sprintf("DescribeStackResources of key %s in account %s %s failed", key.KeyID, key.Account, key.Region), err)
	case stackARN == "" && why != "":
		return &tagger.StackOrigin{Reason: why}
	case stackARN == "" && young:
		return &tagger.StackOrigin{Pending: true, Reason: fmt.Sprintf("CloudFormation does not list key %s as a resource of a stack in account %s %s yet", key.KeyID, key.Account, key.Region)}
	case stackARN == "":
		return &tagger.StackOrigin{Reason: fmt.Sprintf("no CloudFormation stack in account %s %s holds key %s as a resource "+
			"(the key was removed from its stack, or the stack was deleted more than 90 days ago)", key.Account, key.Region, key.KeyID)}
	}
	o := &tagger.StackOrigin{StackARN: stackARN}
	stack, _ := events.ParseStackARN(stackARN) // describe checked it
	if strings.HasPrefix(stack.Name, StackSetPrefix) {
		o.StackSet = true
		return o
	}
	if !operator {
		return o
	}
	op, err := history.FindStackOperation(ctx, c.CloudTrail, stackARN, key.EventTime)
	switch {
	case err != nil:
		lookup := failed(fmt.Sprintf("looking up the operation of stack %s in CloudTrail's event history failed", stackARN), err)
		o.Pending, o.Reason, o.Err = lookup.Pending, lookup.Reason, lookup.Err
	case op == nil && young:
		o.Pending = true
		o.Reason = fmt.Sprintf("CloudTrail's event history holds no CreateStack, UpdateStack or ExecuteChangeSet of stack %s before the key's creation yet", stackARN)
	case op == nil:
		o.Reason = fmt.Sprintf("CloudTrail's event history holds no CreateStack, UpdateStack or ExecuteChangeSet of stack %s in the %v before the key's creation at %s "+
			"(the history keeps 90 days)", stackARN, history.OperatorWindow, key.EventTime.UTC().Format(time.RFC3339))
	default:
		o.Operation = op
	}
	return o
}

// failed is the StackOrigin of a lookup that failed with err: pending when
// a later attempt may succeed (tagger.Classify calls err transient).
func failed(what string, err error) *tagger.StackOrigin {
	class, code := tagger.Classify(err)
	reason := what + ": " + code
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorMessage() != "" {
		reason += ": " + apiErr.ErrorMessage()
	}
	return &tagger.StackOrigin{Pending: class == tagger.Transient, Reason: reason, Err: err}
}

// describe returns the stack that holds key as a resource: its ARN, or ""
// with why when the answer names no single stack that created the key, or
// "" and "" when no stack holds it. CloudFormation answers ValidationError
// "Stack for <id> does not exist" when no stack holds the physical id.
func describe(ctx context.Context, client DescribeAPI, key *events.KeyEvent) (stackARN, why string, err error) {
	out, err := client.DescribeStackResources(ctx, &cloudformation.DescribeStackResourcesInput{PhysicalResourceId: aws.String(key.KeyID)})
	if err != nil {
		var apiErr smithy.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode() == "ValidationError" && strings.Contains(apiErr.ErrorMessage(), "does not exist") {
			return "", "", nil
		}
		return "", "", err
	}
	var stacks, imported, elsewhere, others []string
	for _, r := range out.StackResources {
		if id := aws.ToString(r.StackId); !slices.Contains(others, id) {
			others = append(others, id)
		}
		id := aws.ToString(r.PhysicalResourceId)
		if id != key.KeyID && id != key.KeyARN {
			continue
		}
		if t := aws.ToString(r.ResourceType); t != ResourceTypeKey && t != ResourceTypeReplicaKey {
			continue
		}
		stackID := aws.ToString(r.StackId)
		s, err := events.ParseStackARN(stackID)
		switch {
		case err != nil || s.Account != key.Account || s.Region != key.Region || s.Partition != key.Partition:
			elsewhere = append(elsewhere, stackID)
		case strings.HasPrefix(string(r.ResourceStatus), "IMPORT_"):
			imported = append(imported, stackID)
		case !slices.Contains(stacks, stackID):
			stacks = append(stacks, stackID)
		}
	}
	switch {
	case len(stacks) == 1:
		return stacks[0], "", nil
	case len(stacks) > 1:
		return "", fmt.Sprintf("CloudFormation lists key %s as a resource of %d stacks (%s)", key.KeyID, len(stacks), strings.Join(stacks, ", ")), nil
	case len(imported) > 0:
		return "", fmt.Sprintf("key %s was imported into stack %s, which did not create it", key.KeyID, imported[0]), nil
	case len(elsewhere) > 0:
		return "", fmt.Sprintf("CloudFormation lists key %s in %q, not a stack of the key's account %s and region %s", key.KeyID, elsewhere[0], key.Account, key.Region), nil
	case len(others) == 1 && len(out.StackResources) >= MaxDescribedResources:
		// DescribeStackResources answers the first 100 resources of the
		// stack that holds the physical id: the key's own entry may be past
		// them, and the stack is the one they all belong to.
		if s, err := events.ParseStackARN(others[0]); err == nil && s.Account == key.Account && s.Region == key.Region && s.Partition == key.Partition {
			return others[0], "", nil
		}
	}
	return "", "", nil
}

// MaxDescribedResources is how many resources DescribeStackResources
// answers at most.
const MaxDescribedResources = 100

func (f *Finder) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}
