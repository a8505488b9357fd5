package tagger

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"

	"github.com/kms-autotagger/kms-autotagger/internal/events"
)

// RootUser is the CreatedByUser value of a key the root user created.
const RootUser = "root"

// Identity Center's roles: IAM Identity Center makes the role of each
// permission set in each account, named AWSReservedSSO_<permission
// set>_<hash>, on the IAM path /aws-reserved/sso.amazonaws.com/ (and, for
// newer instances, the instance's region below it). IAM reserves the path
// /aws-reserved/ for AWS: a customer's role may take the name, never the
// path. A session of such a role is made by Identity Center for the user
// who signed in, and its session name is that user's Identity Center user
// name.
const (
	identityCenterRolePath   = "/aws-reserved/sso.amazonaws.com/"
	identityCenterRolePrefix = "AWSReservedSSO_"
)

// UserOf returns the person behind a call, when AWS itself establishes
// one, or why there is none. The rule, in order:
//
//   - an IAM user (IAMUser): the user's name, from its ARN (and its
//     userName, which must agree);
//   - the root user (Root): RootUser;
//   - a session with an STS source identity
//     (userIdentity.sessionContext.sourceIdentity, set by the identity
//     provider or the first AssumeRole of a chain and kept through role
//     chaining): that value;
//   - a call made for an IAM Identity Center user (userIdentity.onBehalfOf,
//     as an IdentityCenterUser or an identity-enhanced role session):
//     "<identityStoreArn>/user/<userId>", the user id as the record gives
//     it, with its identity store;
//   - a session of an Identity Center role (AWSReservedSSO_..., on the
//     path /aws-reserved/sso.amazonaws.com/): the session name, which
//     Identity Center sets to the user's name;
//   - anything else names no person AWS establishes: an ordinary role
//     session (its session name is chosen by whoever assumed the role), a
//     federated user (named by the caller of GetFederationToken), an AWS
//     service, another account.
//
// A key CloudFormation made is attributed by the stack's operator when its
// own creation event names no person (see PlanWith); UserOf is the rule
// for both records.
func UserOf(c events.Creator) (user, why string) {
	switch {
	case c.Type == events.IdentityIAMUser:
		return iamUser(c)
	case c.Type == events.IdentityRoot:
		return RootUser, ""
	case c.SourceIdentity != "":
		return c.SourceIdentity, ""
	case c.IdentityStoreUser != "":
		return c.IdentityStoreUser, ""
	case c.Type == events.IdentityAssumedRole:
		return identityCenterSession(c)
	case c.Type == events.IdentityFederatedUser:
		return "", "a federated user session, named by the IAM user that called GetFederationToken, with no source identity"
	case c.Type == events.IdentityAWSService:
		return "", fmt.Sprintf("the AWS service %s, acting for no person the record names", c.InvokedBy)
	case c.Type == events.IdentityAWSAccount:
		return "", fmt.Sprintf("a principal of account %s that the record does not name (AWSAccount)", c.AccountID)
	case c.Type == "":
		return "", "an identity the record gives no type"
	default:
		return "", fmt.Sprintf("an identity of type %s, which names no person AWS establishes", c.Type)
	}
}

// iamUser is the name of an IAM user: the last part of its ARN
// (arn:aws:iam::111122223333:user/path/alice), or userName without an
// ARN. The two must agree.
func iamUser(c events.Creator) (string, string) {
	name := ""
	if c.PrincipalARN != "" {
		a, err := arn.Parse(c.PrincipalARN)
		if err != nil || a.Service != "iam" || !strings.HasPrefix(a.Resource, "user/") {
			return "", fmt.Sprintf("an IAM user whose ARN %q is not an IAM user's", c.PrincipalARN)
		}
		name = a.Resource[strings.LastIndex(a.Resource, "/")+1:]
	}
	switch {
	case name == "" && c.UserName == "":
		return "", "an IAM user with neither an ARN nor a userName"
	case name == "":
		return c.UserName, ""
	case c.UserName != "" && c.UserName != name:
		return "", fmt.Sprintf("an IAM user whose ARN names %q and userName %q", name, c.UserName)
	}
	return name, ""
}

// identityCenterSession is the user of a session of an Identity Center
// role: the session name, when the role is on Identity Center's path and
// the session's ARN is of that role in the same account (and its
// principalId ends with the same session name).
func identityCenterSession(c events.Creator) (string, string) {
	ordinary := "an ordinary role session, whose session name is chosen by whoever assumed the role (AWS does not establish it), with no source identity"
	issuer, err := arn.Parse(c.IssuerARN)
	if err != nil || issuer.Service != "iam" || !strings.HasPrefix(issuer.Resource, "role/") {
		return "", ordinary
	}
	rolePath := issuer.Resource[len("role"):] // /path/name
	roleName := rolePath[strings.LastIndex(rolePath, "/")+1:]
	if !strings.HasPrefix(roleName, identityCenterRolePrefix) {
		return "", ordinary
	}
	if !strings.HasPrefix(rolePath, identityCenterRolePath) {
		return "", fmt.Sprintf("a session of role %s, named like an IAM Identity Center role but not on Identity Center's path %s, "+
			"whose session name is chosen by whoever assumed it", c.IssuerARN, identityCenterRolePath)
	}
	session, err := arn.Parse(c.PrincipalARN)
	parts := strings.Split(session.Resource, "/")
	if err != nil || session.Service != "sts" || len(parts) != 3 || parts[0] != "assumed-role" || parts[1] != roleName ||
		parts[2] == "" || session.AccountID != issuer.AccountID {
		return "", fmt.Sprintf("a session %q that is not one of its issuer, the IAM Identity Center role %s", c.PrincipalARN, c.IssuerARN)
	}
	if _, name, ok := strings.Cut(c.PrincipalID, ":"); ok && name != parts[2] {
		return "", fmt.Sprintf("an IAM Identity Center session whose ARN names %q and principalId %q", parts[2], name)
	}
	return parts[2], ""
}

// madeByCloudFormation reports whether CloudFormation made ev's creating
// call (userIdentity.invokedBy): the key is a resource of a stack.
func madeByCloudFormation(ev *events.KeyEvent) bool {
	return ev.Creator.InvokedBy == events.InvokedByCloudFormation
}

// attribution is the value of one derived tag for a key: known (value ""
// meaning the tag has no true value, reason saying why where that is worth
// saying), or not known yet (reason saying why, retry whether a later
// attempt may know it).
type attribution struct {
	value  string
	known  bool
	reason string
	retry  bool
}

func known(v string) attribution                { return attribution{value: v, known: true} }
func none(why string) attribution               { return attribution{known: true, reason: why} }
func notYet(retry bool, why string) attribution { return attribution{retry: retry, reason: why} }

// PlanInput is what the tagger found of a key beyond its creation event,
// for PlanWith.
type PlanInput struct {
	// Stack is what a StackFinder found of the stack that created a key
	// CloudFormation made; nil when it was not looked up, which leaves
	// CreatedByStack (and CreatedByUser, when the creation event names no
	// person) pending.
	Stack *StackOrigin
	// Untrusted are owned tags as someone other than the tagger set them,
	// such as the TagResource a tamper repair answers: a pending tag whose
	// carried value is one of them is removed, not kept. The tags the
	// creator passed in the creation request (KeyEvent.RequestTags) are
	// untrusted always.
	Untrusted []Tag
}

// untrusted reports whether value, carried under the owned key key, is one
// someone other than the tagger set: passed in the creation request, or
// among in.Untrusted (keys compared ignoring case).
func untrusted(ev *events.KeyEvent, in *PlanInput, key, value string) bool {
	for _, set := range [][]Tag{ev.RequestTags, in.Untrusted} {
		for _, t := range set {
			if fold(t.Key) == fold(key) && t.Value == value {
				return true
			}
		}
	}
	return false
}

// StackOrigin is what CloudFormation and CloudTrail's event history say of
// the stack that created a key (StackFinder).
type StackOrigin struct {
	// StackARN is the ARN (stack id) of the stack that holds the key as a
	// resource; empty when it is not known.
	StackARN string `json:"stackArn,omitempty"`
	// StackSet says the stack is a StackSet instance (its name begins
	// StackSet-): its operator is recorded in the StackSet's administrator
	// account, and is not looked up.
	StackSet bool `json:"stackSet,omitempty"`
	// Operation is the CloudTrail record of the stack operation that
	// created the key (the stack's latest CreateStack, UpdateStack or
	// ExecuteChangeSet before the key's creation); nil when it was not
	// looked up or not found.
	Operation *events.StackOperation `json:"operation,omitempty"`
	// Pending says that what is not known may be found by a later attempt:
	// a lookup was throttled, failed in a way worth retrying, or ran out of
	// time, or the key is young enough for CloudFormation or CloudTrail's
	// history not to hold it yet.
	Pending bool `json:"pending,omitempty"`
	// Reason says, in a sentence, what is not known and why.
	Reason string `json:"reason,omitempty"`
	// Err is the failure behind Reason, when a lookup failed.
	Err error `json:"-"`
}

// StackFinder finds the CloudFormation stack that created a key, for
// CreatedByStack and CreatedByUser (internal/awscfn serves it).
type StackFinder interface {
	// FindStack looks up, in key's account and region, the stack that holds
	// key's key as a resource (cloudformation:DescribeStackResources by its
	// id) and, with operator, the CloudTrail record of the stack operation
	// that created it (cloudtrail:LookupEvents). It does not fail: what it
	// could not find, and why, is in the StackOrigin, which is never nil.
	FindStack(ctx context.Context, key *events.KeyEvent, operator bool) *StackOrigin
}

// StackLookup reports what a StackFinder must find for ev's key: stack is
// true when CloudFormation made the key and a tag the policy writes needs
// its stack (CreatedByStack; CreatedByUser when the creation event names
// no person), operator when CreatedByUser needs the stack operation's
// record.
func (p *Policy) StackLookup(ev *events.KeyEvent) (stack, operator bool) {
	if !madeByCloudFormation(ev) {
		return false, false
	}
	if p.user != "" {
		if user, _ := UserOf(ev.Creator); user == "" {
			operator = true
		}
	}
	return p.stack != "" || operator, operator
}

// createdByStack is the stack that created a key CloudFormation made; a key
// made otherwise has none.
func createdByStack(ev *events.KeyEvent, in *PlanInput) attribution {
	if !madeByCloudFormation(ev) {
		return none("")
	}
	switch o := in.Stack; {
	case o == nil:
		return notYet(false, "made by CloudFormation, and its stack was not looked up")
	case o.StackARN != "":
		return known(o.StackARN)
	default:
		return notYet(o.Pending, o.Reason)
	}
}

// createdByUser is the person behind a key (UserOf): for a key
// CloudFormation made whose creation event names no person, the person who
// started the stack operation.
func createdByUser(ev *events.KeyEvent, in *PlanInput) attribution {
	user, why := UserOf(ev.Creator)
	switch o := in.Stack; {
	case user != "":
		return known(user)
	case !madeByCloudFormation(ev):
		return none("the creator is " + why)
	case o == nil:
		return notYet(false, "made by CloudFormation with "+why+"; the stack's operator was not looked up")
	case o.StackSet:
		return none(fmt.Sprintf("made by the StackSet instance %s: its operator is recorded in the StackSet's administrator account, which is not searched", o.StackARN))
	case o.Operation != nil:
		op := o.Operation
		user, why := UserOf(op.Operator)
		if user != "" {
			return known(user)
		}
		if op.Operator.InvokedBy == events.InvokedByCloudFormation {
			why = "CloudFormation itself, for a nested stack (its parent stack's operator is not looked up), with the credentials of " + why
		}
		return none(fmt.Sprintf("made by stack %s, whose %s (event %s) was made by %s", o.StackARN, op.EventName, op.EventID, why))
	default:
		return notYet(o.Pending, o.Reason)
	}
}
