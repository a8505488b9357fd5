package doctor

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// IdentityAPI is the STS call the identity check makes. It needs no IAM
// permission.
type IdentityAPI interface {
	GetCallerIdentity(ctx context.Context, in *sts.GetCallerIdentityInput, optFns ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

var _ IdentityAPI = (*sts.Client)(nil)

// Expectation is what the credentials should be; empty fields are not
// checked.
type Expectation struct {
	// Account is the 12-digit account ID.
	Account string
	// RoleARN is an IAM role ARN (arn:aws:iam::ACCOUNT:role/PATH/NAME) the
	// credentials must be a session of, or any principal ARN they must be.
	RoleARN string
	// Principal is text the caller's ARN must contain.
	Principal string
}

// CheckIdentity asks STS who the credentials are and compares the answer
// with expect.
func CheckIdentity(ctx context.Context, api IdentityAPI, expect Expectation) Check {
	c := Check{Name: CheckNameIdentity}
	out, err := api.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		c.Status, c.Summary = Fail, fmt.Sprintf("cannot tell who the credentials are: %v", err)
		c.Fix = "Make credentials available the standard way (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, " +
			"aws sso login, or the role of the machine); sts:GetCallerIdentity needs no permission."
		if unreachable(err) {
			c.Fix = callAdvice(err, "sts:GetCallerIdentity")
		}
		return c
	}
	account, arn := aws.ToString(out.Account), aws.ToString(out.Arn)
	c.Summary = fmt.Sprintf("account %s as %s", account, arn)
	var problems, fixes []string
	if expect.Account != "" && account != expect.Account {
		problems = append(problems, fmt.Sprintf("the credentials are for account %s, not the expected %s", account, expect.Account))
		fixes = append(fixes, fmt.Sprintf("use credentials of account %s (AWS_PROFILE, or assume a role there)", expect.Account))
	}
	if expect.RoleARN != "" && !MatchesRole(arn, expect.RoleARN) {
		problems = append(problems, fmt.Sprintf("%s is not %s or a session of it", arn, expect.RoleARN))
		fixes = append(fixes, fmt.Sprintf("assume %s (e.g. a profile with role_arn = %s)", expect.RoleARN, expect.RoleARN))
	}
	if expect.Principal != "" && !strings.Contains(arn, expect.Principal) {
		problems = append(problems, fmt.Sprintf("%s does not contain %q", arn, expect.Principal))
		fixes = append(fixes, fmt.Sprintf("use the credentials of a principal whose ARN contains %q", expect.Principal))
	}
	if len(problems) > 0 {
		c.Status, c.Details = Fail, problems
		c.Fix = "The checks below ran with the wrong credentials and may not say what the tagger can do: " +
			strings.Join(fixes, "; ") + "."
		return c
	}
	c.Status = Pass
	return c
}

// MatchesRole reports whether callerARN, as returned by GetCallerIdentity,
// is roleARN itself or a session of that IAM role: for the role
// arn:aws:iam::123456789012:role/path/Name, a session is
// arn:aws:sts::123456789012:assumed-role/Name/SESSION (STS drops the path).
// Any other roleARN, e.g. an IAM user's, must equal callerARN.
func MatchesRole(callerARN, roleARN string) bool {
	if callerARN == roleARN {
		return true
	}
	rp := strings.SplitN(roleARN, ":", 6)
	cp := strings.SplitN(callerARN, ":", 6)
	if len(rp) != 6 || len(cp) != 6 || rp[0] != "arn" || cp[0] != "arn" || rp[2] != "iam" || cp[2] != "sts" {
		return false
	}
	if rp[1] != cp[1] || rp[4] != cp[4] {
		return false // another partition or account
	}
	rolePath, ok := strings.CutPrefix(rp[5], "role/")
	if !ok {
		return false
	}
	roleName := rolePath[strings.LastIndex(rolePath, "/")+1:]
	session, ok := strings.CutPrefix(cp[5], "assumed-role/")
	if !ok {
		return false
	}
	name, sessionName, ok := strings.Cut(session, "/")
	return ok && sessionName != "" && name == roleName
}
