package doctor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/aws/smithy-go"

	"github.com/kms-autotagger/kms-autotagger/internal/audit"
	"github.com/kms-autotagger/kms-autotagger/internal/config"
)

// Status is the verdict of one check.
type Status string

// The verdicts.
const (
	Pass Status = "pass"
	Fail Status = "fail"
	// Warn is a check that could not tell, and does not fail the report:
	// the quotas check when Service Quotas cannot be read.
	Warn Status = "warn"
)

// Check names.
const (
	CheckNameSettings   = "settings"
	CheckNameIdentity   = "identity"
	CheckNameCloudTrail = "cloudtrail"
	CheckNameQueue      = "dead-letter-queue"
)

// Check is the result of one check.
type Check struct {
	// Name is one of the CheckName constants.
	Name string `json:"name"`
	// Region is the region checked, for the cloudtrail check.
	Region string `json:"region,omitempty"`
	Status Status `json:"status"`
	// Summary says in one line what was found.
	Summary string `json:"summary"`
	// Details are further findings, e.g. one line per trail looked at.
	Details []string `json:"details,omitempty"`
	// Fix says what to do about a failure; empty when the check passed.
	Fix string `json:"fix,omitempty"`
}

// Report is the result of Run.
type Report struct {
	// OK is true when every check passed.
	OK bool `json:"ok"`
	// Failed counts the checks that failed; Warned those that warned.
	Failed int     `json:"failed"`
	Warned int     `json:"warned,omitempty"`
	Checks []Check `json:"checks"`
}

// NewReport returns the report of checks.
func NewReport(checks []Check) Report {
	r := Report{Checks: checks}
	for _, c := range checks {
		switch c.Status {
		case Pass:
		case Warn:
			r.Warned++
		default:
			r.Failed++
		}
	}
	r.OK = r.Failed == 0
	return r
}

// Clients are the AWS APIs the checks call.
type Clients struct {
	Trails   TrailAPI
	Queue    QueueAPI
	Identity IdentityAPI
	// Quotas, when set, adds the quotas check of every region.
	Quotas QuotaAPI
}

// Options say what Run checks.
type Options struct {
	// Regions are the regions whose CloudTrail coverage is checked.
	Regions []string
	// Getenv reads the function's settings (DEAD_LETTER_QUEUE_URL, ...);
	// os.Getenv in the CLI.
	Getenv func(string) string
	// Expect is what the credentials should be.
	Expect Expectation
	// Demand is what the tools send to an account and region, for the
	// quotas check; zero values are read from the settings and the tools'
	// defaults.
	Demand *Demand
}

// Run runs every check, in the order settings, identity, cloudtrail for
// each region, dead-letter queue, and returns their report.
func Run(ctx context.Context, c Clients, o Options) Report {
	settings, cfg := CheckSettings(o.Getenv)
	checks := []Check{settings, CheckIdentity(ctx, c.Identity, o.Expect)}
	for _, region := range o.Regions {
		checks = append(checks, CheckTrails(ctx, c.Trails, region))
	}
	checks = append(checks, CheckQueue(ctx, c.Queue, cfg.DeadLetterQueueURL))
	if c.Quotas != nil {
		d := DemandOf(cfg, o.Getenv)
		if o.Demand != nil {
			d = *o.Demand
		}
		for _, region := range o.Regions {
			checks = append(checks, CheckQuotas(ctx, c.Quotas, region, d))
		}
	}
	return NewReport(checks)
}

// DemandOf returns the rates of the function's settings (TAG_RATE_LIMIT,
// the sweep's) and the CLI's defaults.
func DemandOf(cfg config.Config, getenv func(string) string) Demand {
	d := Demand{HandlerTagRate: cfg.TagRateLimit, CLITagRate: audit.DefaultTagRate, CLILookupRate: audit.DefaultLookupRate,
		SweepTagRate: config.DefaultSweepTagRate, SweepLookupRate: config.DefaultSweepLookupRate}
	if sw, err := config.SweepFromEnv(getenv); err == nil {
		d.SweepOn, d.SweepTagRate, d.SweepLookupRate = sw.On(), sw.TagRate, sw.LookupRate
	}
	return d
}

// CheckSettings reads the function's settings with getenv and fails when
// any is invalid. It returns the configuration read, as far as it could be.
func CheckSettings(getenv func(string) string) (Check, config.Config) {
	cfg, err := config.FromEnv(getenv)
	if _, serr := config.SweepFromEnv(getenv); serr != nil {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return Check{
			Name:    CheckNameSettings,
			Status:  Fail,
			Summary: "the function's settings are invalid",
			Details: strings.Split(err.Error(), "\n"),
			Fix:     "Correct the environment variables named above; `autotagger --help` lists every setting and its default.",
		}, cfg
	}
	return Check{Name: CheckNameSettings, Status: Pass, Summary: "the function's settings are valid"}, cfg
}

// WriteText writes the report for people: one line per check, its details
// and fix indented below it, and a closing line.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, c := range r.Checks {
		name := c.Name
		if c.Region != "" {
			name += " " + c.Region
		}
		fmt.Fprintf(&b, "%-4s  %-28s %s\n", strings.ToUpper(string(c.Status)), name, c.Summary)
		for _, d := range c.Details {
			fmt.Fprintf(&b, "      - %s\n", d)
		}
		if c.Fix != "" {
			fmt.Fprintf(&b, "      fix: %s\n", c.Fix)
		}
	}
	switch {
	case r.OK && r.Warned > 0:
		fmt.Fprintf(&b, "\n%d of %d checks passed, %d could not tell.\n", len(r.Checks)-r.Warned, len(r.Checks), r.Warned)
	case r.OK:
		fmt.Fprintf(&b, "\nAll %d checks passed.\n", len(r.Checks))
	default:
		fmt.Fprintf(&b, "\n%d of %d checks failed.\n", r.Failed, len(r.Checks))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// errorCode returns the AWS error code of err, or "" when it has none.
func errorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// accessDenied reports whether err is a refusal for lack of permission.
func accessDenied(err error) bool {
	switch errorCode(err) {
	case "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError":
		return true
	}
	return false
}

// badCredentials reports whether err says the credentials themselves are
// not accepted.
func badCredentials(err error) bool {
	switch errorCode(err) {
	case "InvalidClientTokenId", "UnrecognizedClientException", "ExpiredToken", "ExpiredTokenException",
		"SignatureDoesNotMatch", "IncompleteSignature", "InvalidSignatureException":
		return true
	}
	return false
}

// unreachable reports whether err is a failure to reach the endpoint at all.
func unreachable(err error) bool {
	var netErr net.Error
	var opErr *net.OpError
	var dnsErr *net.DNSError
	return errors.As(err, &opErr) || errors.As(err, &dnsErr) || (errors.As(err, &netErr) && netErr.Timeout())
}

// callAdvice is the advice for a failed call of api (e.g.
// "cloudtrail:DescribeTrails") whose cause is not specific to the check.
func callAdvice(err error, api string) string {
	switch {
	case accessDenied(err):
		return fmt.Sprintf("Allow %s to the principal running the doctor (see `autotagger doctor --help` for the whole list).", api)
	case badCredentials(err):
		return "The credentials are not accepted: refresh them (aws sso login, a new session token) or choose others with AWS_PROFILE."
	case unreachable(err):
		return "The endpoint cannot be reached: check the network, the region name, and any AWS_ENDPOINT_URL_* variable."
	}
	return fmt.Sprintf("%s failed; run again, and if it keeps failing look at the error above.", api)
}
