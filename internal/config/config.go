package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/arn"

	"github.com/kms-autotagger/kms-autotagger/internal/awskms"
	"github.com/kms-autotagger/kms-autotagger/internal/metrics"
	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// Environment variable names of the settings.
const (
	EnvDeadLetterQueueURL = "DEAD_LETTER_QUEUE_URL"
	EnvTagKeyPrefix       = "TAG_KEY_PREFIX"
	EnvCreatedBy          = "TAG_NAME_CREATED_BY"
	EnvCreatedByRole      = "TAG_NAME_CREATED_BY_ROLE"
	EnvCreatedAt          = "TAG_NAME_CREATED_AT"
	EnvCreatedVia         = "TAG_NAME_CREATED_VIA"
	EnvCreationEventID    = "TAG_NAME_CREATION_EVENT_ID"
	EnvReplicaOf          = "TAG_NAME_REPLICA_OF"
	EnvEvidence           = "TAG_NAME_CREATED_BY_EVIDENCE"
	EnvCreatedByUser      = "TAG_NAME_CREATED_BY_USER"
	EnvCreatedByStack     = "TAG_NAME_CREATED_BY_STACK"
	EnvStackLookupTimeout = "STACK_LOOKUP_TIMEOUT"
	EnvStackLookupRate    = "STACK_LOOKUP_RATE_LIMIT"
	EnvStaticTags         = "STATIC_TAGS"
	EnvMaxAttempts        = "MAX_ATTEMPTS"
	EnvMaxBackoff         = "MAX_BACKOFF"
	EnvNotFoundAttempts   = "NOT_FOUND_ATTEMPTS"
	EnvDeadLetterReserve  = "DEAD_LETTER_RESERVE"
	EnvTagRateLimit       = "TAG_RATE_LIMIT"
	EnvLogLevel           = "LOG_LEVEL"
	EnvMemberRoleName     = "MEMBER_ROLE_NAME"
	EnvMemberRolePath     = "MEMBER_ROLE_PATH"
	EnvMemberExternalID   = "MEMBER_ROLE_EXTERNAL_ID"
	EnvHomeAccountID      = "HOME_ACCOUNT_ID"
	EnvTamperRepair       = "TAMPER_REPAIR"
	EnvTaggerRoleARN      = "TAGGER_ROLE_ARN"
	EnvTaggerRolePath     = "TAGGER_ROLE_PATH"
	EnvMetricsNamespace   = "METRICS_NAMESPACE"
)

// Off, as the value of a TAG_NAME_* variable, switches that tag off.
const Off = "-"

// Setting describes one environment variable.
type Setting struct {
	Env     string
	Default string
	Help    string
}

// Settings lists every environment variable the tagger reads, in the order
// the help text shows them.
var Settings = []Setting{
	{EnvDeadLetterQueueURL, "", "URL of the SQS queue that receives a record of every event that failed permanently. Without it, such events are returned as errors for Lambda to retry."},
	{EnvTagKeyPrefix, "", "Prefix put before every governance tag name, e.g. \"governance:\"."},
	{EnvCreatedBy, tagger.DefaultCreatedBy, "Tag holding the principal ARN that created the key. \"-\" switches it off (likewise for every TAG_NAME_*)."},
	{EnvCreatedByRole, tagger.DefaultCreatedByRole, "Tag holding the role that issued an AssumedRole session (or the IAM user of a FederatedUser session)."},
	{EnvCreatedAt, tagger.DefaultCreatedAt, "Tag holding the creation time, RFC 3339 in UTC."},
	{EnvCreatedVia, tagger.DefaultCreatedVia, "Tag holding the AWS service that made the call for the principal (userIdentity.invokedBy)."},
	{EnvCreationEventID, tagger.DefaultCreationEventID, "Tag holding the CloudTrail event id of the creating call."},
	{EnvReplicaOf, tagger.DefaultReplicaOf, "Tag holding the primary key ARN of a multi-Region replica."},
	{EnvCreatedByUser, tagger.DefaultCreatedByUser, "Tag holding the person behind the key, only where AWS itself establishes one: an IAM user's name, root, an STS source identity, an IAM Identity Center user (a session of an AWSReservedSSO_ role on /aws-reserved/sso.amazonaws.com/, or onBehalfOf); for a key CloudFormation made, the person who started the stack operation (CloudTrail's CreateStack, UpdateStack or ExecuteChangeSet). Never a name the caller chose, such as a role session's: the result says why a key has none."},
	{EnvCreatedByStack, tagger.DefaultCreatedByStack, "Tag holding the ARN of the CloudFormation stack that created the key (cloudformation:DescribeStackResources by the key's id), for a key whose CreateKey CloudFormation made."},
	{EnvEvidence, tagger.DefaultEvidence, "Tag saying where the governance tags were derived from: event (the EventBridge event), history (CloudTrail's event history), trail-archive (the trail's S3 log files) or creation-date-only (backfill --tag-unknown)."},
	{EnvStaticTags, "", "Extra tags written on every key, as Key=Value pairs separated by commas, e.g. \"ManagedBy=platform,DataClass=internal\"."},
	{EnvMaxAttempts, "5", "Most attempts per TagResource call, the first included (KMSInternalException, throttling, 5xx and network faults are retried)."},
	{EnvMaxBackoff, "2s", "Longest wait between attempts (exponential backoff with jitter), a Go duration."},
	{EnvNotFoundAttempts, "3", "Most attempts when KMS does not find a key it just created (eventual consistency)."},
	{EnvDeadLetterReserve, "3s", "Time kept before the invocation deadline to write a dead letter; retries stop that much earlier. A Go duration."},
	{EnvTagRateLimit, "1", "Most TagResource requests per second, retries included, that one instance of the function sends to one account and Region, and as many UntagResource requests (the reads before a write are not limited); 0 means no limit. Lambda runs up to the reserved concurrency of instances at once, so set it to the share of the account's KMS TagResource request quota the tagger may use divided by the reserved concurrency (1 for 10 per second with 10 instances). A call waits for its turn within the invocation deadline."},
	{EnvStackLookupTimeout, "10s", "Longest time the CloudFormation and CloudTrail lookups of one event may take for CreatedByStack and CreatedByUser (at most half of the time left for the KMS calls). When they cannot finish, the other governance tags are written anyway and the event is returned as an error (AttributionPending) for Lambda to try again. A Go duration."},
	{EnvStackLookupRate, "1", "Most cloudformation:DescribeStackResources requests per second, and as many cloudtrail:LookupEvents requests, retries included, that one instance of the function sends to one account and Region for CreatedByStack and CreatedByUser; 0 means no limit. CloudTrail's LookupEvents quota is 2 per second per account and Region, shared with the tamper repair."},
	{EnvLogLevel, "INFO", "DEBUG, INFO, WARN or ERROR. Falls back to AWS_LAMBDA_LOG_LEVEL."},
	{EnvMemberRoleName, "", "Name of the role the tagger assumes in another account to tag that account's keys (see docs/MULTIACCOUNT.md). Empty turns cross-account tagging off: keys of other accounts are dead-lettered."},
	{EnvMemberRolePath, "/kms-autotagger/", "Path of that role: /kms-autotagger/, the path of every kms-autotagger role, which the service control policy in deploy/ protects."},
	{EnvMemberExternalID, "", "External ID passed when assuming the member role, if its trust policy requires one."},
	{EnvHomeAccountID, "", "The tagger's own account, whose keys it tags with its own credentials. Empty means it is asked of sts:GetCallerIdentity once."},
	{EnvTamperRepair, "true", "true or false. When true, TagResource and UntagResource events that changed or removed a governance tag are repaired: the tags are derived again from the key's creation event in CloudTrail's event history and written back."},
	{EnvTaggerRoleARN, "", "The tagger's own IAM role ARN: tag changes made with it are its own and are skipped without any call."},
	{EnvTaggerRolePath, "/kms-autotagger/", "IAM path of every kms-autotagger role (function and member roles of every deployment): tag changes made with a role on it, in any account, are another tagger's and are skipped, so deployments never repair each other. Protect the path with the service control policy in deploy/. \"-\" recognises no other tagger."},
	{EnvMetricsNamespace, metrics.DefaultNamespace, "CloudWatch namespace of the Embedded Metric Format lines written for every event. \"-\" writes none."},
}

// Config is the tagger's configuration.
type Config struct {
	DeadLetterQueueURL string
	TagKeyPrefix       string
	Names              tagger.Names
	StaticTags         []tagger.Tag
	Retry              awskms.RetryOptions
	DeadLetterReserve  time.Duration
	// TagRateLimit is the most TagResource requests per second of one
	// instance in one account and Region; 0 means no limit.
	TagRateLimit float64
	LogLevel     slog.Level
	// MemberRoleName is the role assumed in other accounts; empty means
	// cross-account tagging is off.
	MemberRoleName string
	// MemberRolePath is that role's path, "/" by default.
	MemberRolePath string
	// MemberExternalID is the external ID passed to AssumeRole, if any.
	MemberExternalID string
	// HomeAccountID is the tagger's own account; empty means it is found
	// with sts:GetCallerIdentity.
	HomeAccountID string
	// TamperRepair switches the repair of tampered governance tags on.
	TamperRepair bool
	// TaggerRoleARN is the tagger's own role, whose tag changes are skipped.
	TaggerRoleARN string
	// TaggerRolePath is the IAM path of every kms-autotagger role; empty
	// recognises no other tagger.
	TaggerRolePath string
	// MetricsNamespace is the CloudWatch namespace of the metrics; empty
	// means no metrics.
	MetricsNamespace string
	// StackLookupTimeout bounds the stack lookups of one event.
	StackLookupTimeout time.Duration
	// StackLookupRateLimit is the most DescribeStackResources, and as many
	// LookupEvents, requests per second of one instance in one account and
	// Region; 0 means no limit.
	StackLookupRateLimit float64
}

// CrossAccount reports whether the handler needs to tell accounts apart:
// a member role is set (keys of other accounts are tagged through it), or
// the home account is set (keys of other accounts are refused by name).
func (c Config) CrossAccount() bool {
	return c.MemberRoleName != "" || c.HomeAccountID != ""
}

// Patterns IAM and STS accept for the cross-account settings. The lengths
// of role names and paths are checked apart from their patterns: a counted
// repetition such as {1,510} makes a regular expression slow to compile,
// which every cold start would pay.
var (
	externalIDPattern = regexp.MustCompile(`^[\w+=,.@:/-]+$`)
	accountIDPattern  = regexp.MustCompile(`^\d{12}$`)
	roleNamePattern   = regexp.MustCompile(`^[\w+=,.@-]+$`)
	// rolePathPattern allows the characters of IAM names between the
	// slashes. IAM itself accepts any printable character in a path, but *
	// and ? there would be wildcards in the role ARN of a policy: a path with
	// them would grant more than the one path it names.
	rolePathPattern = regexp.MustCompile(`^/([\w+=,.@-]+/)*$`)
)

// isRoleName reports whether s is an IAM role name: 1 to 64 of ASCII
// letters, digits and _+=,.@-.
func isRoleName(s string) bool {
	return len(s) <= 64 && roleNamePattern.MatchString(s)
}

// isRolePath reports whether s is "/", or "/" and segments of the
// characters of IAM names each ending in "/", 512 characters at most.
func isRolePath(s string) bool {
	return len(s) <= 512 && rolePathPattern.MatchString(s)
}

// FromEnv reads the configuration with getenv (os.Getenv in production).
// An unset or empty variable takes its default. Every error is reported, not
// only the first.
func FromEnv(getenv func(string) string) (Config, error) {
	get := func(env string) string {
		if v := strings.TrimSpace(getenv(env)); v != "" {
			return v
		}
		for _, s := range Settings {
			if s.Env == env {
				return s.Default
			}
		}
		return ""
	}
	name := func(env string) string {
		if v := get(env); v != Off {
			return v
		}
		return ""
	}
	var errs []error
	c := Config{
		DeadLetterQueueURL: get(EnvDeadLetterQueueURL),
		TagKeyPrefix:       getenv(EnvTagKeyPrefix),
		Names: tagger.Names{
			CreatedBy:       name(EnvCreatedBy),
			CreatedByRole:   name(EnvCreatedByRole),
			CreatedAt:       name(EnvCreatedAt),
			CreatedVia:      name(EnvCreatedVia),
			CreationEventID: name(EnvCreationEventID),
			ReplicaOf:       name(EnvReplicaOf),
			CreatedByUser:   name(EnvCreatedByUser),
			CreatedByStack:  name(EnvCreatedByStack),
			Evidence:        name(EnvEvidence),
		},
	}
	var err error
	if c.StaticTags, err = ParseTags(get(EnvStaticTags)); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", EnvStaticTags, err))
	}
	positive := func(env string) int {
		n, err := strconv.Atoi(get(env))
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("%s: %q is not a whole number of at least 1", env, get(env)))
		}
		return n
	}
	duration := func(env string) time.Duration {
		d, err := time.ParseDuration(get(env))
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s: %q is not a positive duration such as 2s or 500ms", env, get(env)))
		}
		return d
	}
	c.Retry = awskms.RetryOptions{
		MaxAttempts:      positive(EnvMaxAttempts),
		MaxBackoff:       duration(EnvMaxBackoff),
		NotFoundAttempts: positive(EnvNotFoundAttempts),
	}
	c.DeadLetterReserve = duration(EnvDeadLetterReserve)
	c.StackLookupTimeout = duration(EnvStackLookupTimeout)
	if v := get(EnvTagRateLimit); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r < 0 || math.IsInf(r, 0) || math.IsNaN(r) {
			errs = append(errs, fmt.Errorf("%s: %q is not a number of requests per second of 0 (no limit) or more, such as 1 or 2.5", EnvTagRateLimit, v))
		}
		c.TagRateLimit = r
	}
	if v := get(EnvStackLookupRate); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r < 0 || math.IsInf(r, 0) || math.IsNaN(r) {
			errs = append(errs, fmt.Errorf("%s: %q is not a number of requests per second of 0 (no limit) or more, such as 1 or 2.5", EnvStackLookupRate, v))
		}
		c.StackLookupRateLimit = r
	}
	level := getenv(EnvLogLevel)
	if strings.TrimSpace(level) == "" {
		// Lambda's own levels, as it sets them from ApplicationLogLevel:
		// TRACE and FATAL, which slog lacks, are its nearest.
		level = getenv("AWS_LAMBDA_LOG_LEVEL")
		switch strings.ToUpper(strings.TrimSpace(level)) {
		case "TRACE":
			level = "DEBUG"
		case "FATAL":
			level = "ERROR"
		}
	}
	if strings.TrimSpace(level) == "" {
		level = get(EnvLogLevel)
	}
	if err := c.LogLevel.UnmarshalText([]byte(strings.TrimSpace(level))); err != nil {
		errs = append(errs, fmt.Errorf("%s: %q is not DEBUG, INFO, WARN or ERROR", EnvLogLevel, level))
	}
	c.MemberRoleName = get(EnvMemberRoleName)
	c.MemberRolePath = get(EnvMemberRolePath)
	c.MemberExternalID = get(EnvMemberExternalID)
	c.HomeAccountID = get(EnvHomeAccountID)
	if c.MemberRoleName != "" && !isRoleName(c.MemberRoleName) {
		errs = append(errs, fmt.Errorf("%s: %q is not an IAM role name (1 to 64 of letters, digits and +=,.@_-)", EnvMemberRoleName, c.MemberRoleName))
	}
	if !isRolePath(c.MemberRolePath) {
		errs = append(errs, fmt.Errorf("%s: %q is not an IAM path such as / or /governance/", EnvMemberRolePath, c.MemberRolePath))
	}
	if c.MemberExternalID != "" && (len(c.MemberExternalID) < 2 || len(c.MemberExternalID) > 1224 || !externalIDPattern.MatchString(c.MemberExternalID)) {
		// The External ID is a shared secret: never quoted.
		errs = append(errs, fmt.Errorf("%s is not an external ID (2 to 1224 of letters, digits and +=,.@:/_-); its value is not shown", EnvMemberExternalID))
	}
	if c.MemberExternalID != "" && c.MemberRoleName == "" {
		errs = append(errs, fmt.Errorf("%s is set but %s is empty: no role would be assumed with it", EnvMemberExternalID, EnvMemberRoleName))
	}
	if c.HomeAccountID != "" && !accountIDPattern.MatchString(c.HomeAccountID) {
		errs = append(errs, fmt.Errorf("%s: %q is not a 12-digit account ID", EnvHomeAccountID, c.HomeAccountID))
	}
	switch v := strings.ToLower(get(EnvTamperRepair)); v {
	case "true", "false":
		c.TamperRepair = v == "true"
	default:
		errs = append(errs, fmt.Errorf("%s: %q is not true or false", EnvTamperRepair, get(EnvTamperRepair)))
	}
	c.TaggerRoleARN = get(EnvTaggerRoleARN)
	if c.TaggerRolePath = get(EnvTaggerRolePath); c.TaggerRolePath == Off {
		c.TaggerRolePath = ""
	} else if !isRolePath(c.TaggerRolePath) || c.TaggerRolePath == "/" {
		errs = append(errs, fmt.Errorf("%s: %q is not an IAM path of its own such as /kms-autotagger/ (\"/\" would make every role a tagger's)", EnvTaggerRolePath, c.TaggerRolePath))
	}
	if a, err := arn.Parse(c.TaggerRoleARN); c.TaggerRoleARN != "" && (err != nil || a.Service != "iam" || !strings.HasPrefix(a.Resource, "role/")) {
		errs = append(errs, fmt.Errorf("%s: %q is not an IAM role ARN", EnvTaggerRoleARN, c.TaggerRoleARN))
	}
	if ns := get(EnvMetricsNamespace); ns != Off {
		if err := metrics.CheckNamespace(ns); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvMetricsNamespace, err))
		}
		c.MetricsNamespace = ns
	}
	if _, err := c.Policy(); err != nil {
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}

// Policy returns the tag policy the configuration describes.
func (c Config) Policy() (*tagger.Policy, error) {
	return tagger.NewPolicy(c.Names, c.TagKeyPrefix, c.StaticTags)
}

// ParseTags reads "Key=Value,Key2=Value2". Spaces around keys and values are
// trimmed; an empty string is no tags; a value may be empty ("Key=").
func ParseTags(s string) ([]tagger.Tag, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var tags []tagger.Tag
	for pair := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(pair, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not Key=Value", strings.TrimSpace(pair))
		}
		tags = append(tags, tagger.Tag{Key: k, Value: v})
	}
	return tags, nil
}

// Help returns the settings as text for the CLI's --help.
func Help() string {
	var b strings.Builder
	for _, s := range Settings {
		def := s.Default
		if def == "" {
			def = "(empty)"
		}
		fmt.Fprintf(&b, "  %s (default %s)\n      %s\n", s.Env, def, s.Help)
	}
	return b.String()
}

// SplitList reads a comma-separated list, as the settings and flags that
// take one are written: each item trimmed, empty items and repeats dropped,
// the rest in their order.
func SplitList(s string) []string {
	var items []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" && !slices.Contains(items, item) {
			items = append(items, item)
		}
	}
	return items
}
