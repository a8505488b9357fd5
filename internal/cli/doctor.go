package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kms-autotagger/kms-autotagger/internal/doctor"
)

var accountPattern = regexp.MustCompile(`^\d{12}$`)

const doctorHelp = `usage: autotagger doctor [--regions us-east-1,eu-west-1] [--expect-account ID]
                         [--expect-role-arn ARN] [--expect-principal TEXT] [--output text|json]

Tells whether the tagger can work with these credentials, before you rely on it:
  settings           the function's environment variables are valid
  identity           sts:GetCallerIdentity: whose credentials these are, and whether
                     they are the expected account and role/principal
  cloudtrail REGION  for each region: a trail covers it (its own, or a multi-Region or
                     organization trail homed elsewhere), is logging, and records
                     management write events from kms.amazonaws.com. EventBridge receives
                     the "AWS API Call via CloudTrail" events the tagger reacts to only then.
  dead-letter-queue  DEAD_LETTER_QUEUE_URL is set and the queue answers for its QueueArn
  quotas REGION      for each region: the account's applied KMS TagResource and UntagResource
                     quotas and CloudTrail's LookupEvents quota (Service Quotas; the defaults
                     where none is applied), set against the rates of the sweep, the live
                     handler and autotagger audit/backfill. WARN when they cannot be read.

The rates, per account and region, and the room they leave the live handler:
  KMS TagResource (10/s; UntagResource 5/s):  the sweep 2 (SWEEP_TAG_RATE), the handler
    TAG_RATE_LIMIT (1) per instance, audit --repair and backfill 5 (--tag-rate) while they run
  CloudTrail LookupEvents (2/s, cannot be raised):  the sweep 1 (SWEEP_LOOKUP_RATE), audit and
    backfill 2 (--lookup-rate: give 1 while the sweep runs), the rest the handler's tamper repair

Each check prints PASS, FAIL or WARN, what it found, and for a failure what to do. Exits 0
when no check fails, 1 when any fails, 2 on a usage error.

Permissions the doctor's principal needs (read-only):
  cloudtrail:DescribeTrails, cloudtrail:GetTrailStatus, cloudtrail:GetEventSelectors
  servicequotas:ListServiceQuotas, servicequotas:ListAWSDefaultServiceQuotas (else WARN)
  sqs:GetQueueAttributes on the dead-letter queue (the function itself needs
    sqs:SendMessage there instead; the doctor sends nothing, so that is not checked)
  sts:GetCallerIdentity needs no permission.
Run it with the function's own role (e.g. a profile that assumes it) to see what the
function can reach; --expect-role-arn makes sure you did.

`

// doctorCmd checks the tagger's prerequisites and prints the report.
func doctorCmd(ctx context.Context, args []string, stdio IO) int {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stdio.Stderr)
	regions := fs.String("regions", "", "comma-separated `REGIONS` to check CloudTrail in (default the AWS configuration's region)")
	account := fs.String("expect-account", "", "12-digit account `ID` the credentials must belong to")
	roleARN := fs.String("expect-role-arn", "", "IAM role `ARN` the credentials must be a session of (or an exact principal ARN)")
	principal := fs.String("expect-principal", "", "`TEXT` the caller's ARN must contain")
	output := fs.String("output", "text", "`FORMAT` of the report: text, or json for machines")
	timeout := fs.Duration("timeout", 2*time.Minute, "deadline of all the checks together")
	fs.Usage = func() {
		fmt.Fprint(stdio.Stderr, doctorHelp)
		fs.PrintDefaults()
		fmt.Fprint(stdio.Stderr, awsHelp+"AWS_ENDPOINT_URL_CLOUDTRAIL, AWS_ENDPOINT_URL_STS and AWS_ENDPOINT_URL_SERVICE_QUOTAS likewise.\n")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stdio.Stderr, "autotagger doctor: "+format+"\n", a...)
		return ExitUsage
	}
	switch {
	case fs.NArg() > 0:
		return usageErr("unexpected argument %q; run autotagger doctor --help", fs.Arg(0))
	case *output != "text" && *output != "json":
		return usageErr("--output is %q, want text or json", *output)
	case *account != "" && !accountPattern.MatchString(*account):
		return usageErr("--expect-account %q is not a 12-digit account ID", *account)
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Fprintf(stdio.Stderr, "autotagger doctor: loading AWS configuration: %v\n", err)
		return ExitFailure
	}
	list := splitRegions(*regions)
	if len(list) == 0 && awsCfg.Region != "" {
		list = []string{awsCfg.Region}
	}
	if len(list) == 0 {
		return usageErr("no region to check: pass --regions or set AWS_REGION (or a profile's region)")
	}
	report := doctor.Run(ctx, doctor.Clients{
		Trails:   cloudtrail.NewFromConfig(awsCfg),
		Queue:    sqs.NewFromConfig(awsCfg),
		Identity: sts.NewFromConfig(awsCfg),
		Quotas:   servicequotas.NewFromConfig(awsCfg),
	}, doctor.Options{
		Regions: list,
		Getenv:  stdio.Getenv,
		Expect:  doctor.Expectation{Account: *account, RoleARN: *roleARN, Principal: *principal},
	})
	if *output == "json" {
		b, err := json.MarshalIndent(report, "", "  ")
		if err != nil {
			fmt.Fprintf(stdio.Stderr, "autotagger doctor: encoding report: %v\n", err)
			return ExitFailure
		}
		fmt.Fprintln(stdio.Stdout, string(b))
	} else if err := report.WriteText(stdio.Stdout); err != nil {
		fmt.Fprintf(stdio.Stderr, "autotagger doctor: writing report: %v\n", err)
		return ExitFailure
	}
	if !report.OK {
		return ExitFailure
	}
	return ExitOK
}

// splitRegions splits "a, b,,a" into [a b]: trimmed, without empties or
// repeats, in the order given.
func splitRegions(s string) []string {
	var out []string
	for r := range strings.SplitSeq(s, ",") {
		if r = strings.TrimSpace(r); r != "" && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}
