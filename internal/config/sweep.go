package config

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// Environment variable names of the scheduled sweep's settings and of the
// trail archive.
const (
	EnvSweepQueueURL      = "SWEEP_QUEUE_URL"
	EnvSweepAccounts      = "SWEEP_ACCOUNTS"
	EnvSweepRegions       = "SWEEP_REGIONS"
	EnvSweepRepair        = "SWEEP_REPAIR"
	EnvSweepLookupRate    = "SWEEP_LOOKUP_RATE"
	EnvSweepTagRate       = "SWEEP_TAG_RATE"
	EnvTrailArchiveBucket = "TRAIL_ARCHIVE_BUCKET"
	EnvTrailArchivePrefix = "TRAIL_ARCHIVE_PREFIX"
)

// Defaults of the sweep's rates: its shares of the quotas it shares with
// the live handler in every account and region (see docs of SweepLookupRate
// and SweepTagRate).
const (
	// DefaultSweepLookupRate is half of CloudTrail's LookupEvents quota of
	// 2 per second per account and region, which cannot be raised: the
	// other half is left to the handler's tamper repair and to people
	// reading the event history.
	DefaultSweepLookupRate = 1.0
	// DefaultSweepTagRate is a fifth of KMS's TagResource quota of 10 per
	// second (TagResource and UntagResource together, the UntagResource
	// quota being 5): the handler, TAG_RATE_LIMIT per instance, keeps the
	// rest.
	DefaultSweepTagRate = 2.0
	// MaxSweepLookupRate is CloudTrail's LookupEvents quota.
	MaxSweepLookupRate = 2.0
	// MaxSweepTagRate is KMS's default TagResource quota.
	MaxSweepTagRate = 10.0
)

// sweepSettings are the sweep's rows of Settings.
var sweepSettings = []Setting{
	{EnvSweepQueueURL, "", "URL of the SQS FIFO queue of the scheduled sweep, the audit-and-repair of every key in SWEEP_ACCOUNTS and SWEEP_REGIONS: the schedule's event puts one message per account and region on it, and each message is one invocation. Empty switches the sweep off: a scheduled event or an SQS message is then handled like any other event."},
	{EnvSweepAccounts, "", "Accounts the sweep audits: empty for the function's own, \"org\" for every ACTIVE account of the organization (organizations:ListAccounts), or a comma-separated list of account IDs. Other accounts are reached through MEMBER_ROLE_NAME."},
	{EnvSweepRegions, "", "Regions the sweep audits in every account: empty for the function's own, \"all\" for every region enabled in each account (account:ListRegions through the member role), or a comma-separated list."},
	{EnvSweepRepair, "true", "true or false. When true the sweep repairs what it finds from CloudTrail's record of each key's creation (the exact-set rule), else it only reports."},
	{EnvSweepLookupRate, "1", "Most cloudtrail:LookupEvents requests per second the sweep sends to one account and region, at most 2 (CloudTrail's quota, shared with the handler's tamper repair and the console's event history)."},
	{EnvSweepTagRate, "2", "Most kms:TagResource and kms:UntagResource requests per second, together, the sweep sends to one account and region when it repairs, at most 10 (KMS's TagResource quota; UntagResource's is 5); the rest is the live handler's."},
	{EnvTrailArchiveBucket, "", "S3 bucket of the organization trail's log files, where the sweep (and autotagger audit and backfill, as --trail-bucket) look for the creation of keys older than the event history's 90 days. Empty reads no archive."},
	{EnvTrailArchivePrefix, "", "The trail's S3 key prefix in TRAIL_ARCHIVE_BUCKET, before AWSLogs/ (--trail-prefix)."},
}

func init() { Settings = append(Settings, sweepSettings...) }

var (
	// regionPattern is the form of a region name: us-east-1, us-gov-west-1.
	regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d{1,2}$`)
	// bucketPattern is the form of a general purpose S3 bucket name.
	bucketPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
)

// Sweep is the configuration of the scheduled sweep.
type Sweep struct {
	// QueueURL is the sweep's queue; empty means the sweep is off.
	QueueURL string
	// Org is true for every ACTIVE account of the organization; else
	// Accounts lists the accounts, nil for the function's own.
	Org      bool
	Accounts []string
	// AllRegions is true for every enabled region of each account; else
	// Regions lists the regions, nil for the function's own.
	AllRegions bool
	Regions    []string
	// Repair repairs what the sweep finds.
	Repair bool
	// LookupRate and TagRate are the sweep's requests per second per
	// account and region.
	LookupRate, TagRate float64
	// TrailBucket and TrailPrefix are the trail archive; an empty bucket
	// reads none.
	TrailBucket, TrailPrefix string
}

// On reports whether the sweep is configured.
func (s Sweep) On() bool { return s.QueueURL != "" }

// SweepFromEnv reads the sweep's settings with getenv; an unset or empty
// variable takes its default. Every error is reported, not only the first.
func SweepFromEnv(getenv func(string) string) (Sweep, error) {
	get := func(env string) string {
		if v := strings.TrimSpace(getenv(env)); v != "" {
			return v
		}
		for _, s := range sweepSettings {
			if s.Env == env {
				return s.Default
			}
		}
		return ""
	}
	var errs []error
	s := Sweep{QueueURL: get(EnvSweepQueueURL), TrailBucket: get(EnvTrailArchiveBucket), TrailPrefix: strings.Trim(get(EnvTrailArchivePrefix), "/")}
	if s.QueueURL != "" && !strings.HasPrefix(s.QueueURL, "https://") && !strings.HasPrefix(s.QueueURL, "http://") {
		errs = append(errs, fmt.Errorf("%s: %q is not a queue URL", EnvSweepQueueURL, s.QueueURL))
	}
	switch v := get(EnvSweepAccounts); v {
	case "":
	case "org":
		s.Org = true
	default:
		for _, a := range SplitList(v) {
			if !accountIDPattern.MatchString(a) {
				errs = append(errs, fmt.Errorf("%s: %q is not a 12-digit account ID", EnvSweepAccounts, a))
				continue
			}
			s.Accounts = append(s.Accounts, a)
		}
	}
	switch v := get(EnvSweepRegions); v {
	case "":
	case "all":
		s.AllRegions = true
	default:
		for _, r := range SplitList(v) {
			if !regionPattern.MatchString(r) {
				errs = append(errs, fmt.Errorf("%s: %q is not a region name such as us-east-1", EnvSweepRegions, r))
				continue
			}
			s.Regions = append(s.Regions, r)
		}
	}
	switch v := strings.ToLower(get(EnvSweepRepair)); v {
	case "true", "false":
		s.Repair = v == "true"
	default:
		errs = append(errs, fmt.Errorf("%s: %q is not true or false", EnvSweepRepair, get(EnvSweepRepair)))
	}
	rate := func(env string, limit float64) float64 {
		r, err := strconv.ParseFloat(get(env), 64)
		if err != nil || !(r > 0) || r > limit || math.IsInf(r, 0) {
			errs = append(errs, fmt.Errorf("%s: %q is not a number of requests per second above 0 and at most %g", env, get(env), limit))
		}
		return r
	}
	s.LookupRate = rate(EnvSweepLookupRate, MaxSweepLookupRate)
	s.TagRate = rate(EnvSweepTagRate, MaxSweepTagRate)
	if b := s.TrailBucket; b != "" && (!bucketPattern.MatchString(b) || strings.Contains(b, "..")) {
		errs = append(errs, fmt.Errorf("%s: %q is not an S3 bucket name", EnvTrailArchiveBucket, b))
	}
	if strings.Contains(s.TrailPrefix, "//") {
		errs = append(errs, fmt.Errorf("%s: %q is not an S3 key prefix", EnvTrailArchivePrefix, s.TrailPrefix))
	}
	return s, errors.Join(errs...)
}
