// Package awscfn finds the CloudFormation stack that created a KMS key,
// and who ran the stack operation, for the CreatedByStack and CreatedByUser
// tags: it serves the tagger.StackFinder port.
//
// For a key whose creating call CloudFormation made (userIdentity.invokedBy
// cloudformation.amazonaws.com), in the key's own account and region and
// with the credentials that tag the key there (awskms.ConfigSource: the
// function's own, or the member role's in another account):
//
//  1. cloudformation:DescribeStackResources by the key's id as
//     PhysicalResourceId names the stack that holds the key as a resource
//     (while the stack is still being created too, and for 90 days after
//     it was deleted);
//  2. cloudtrail:LookupEvents by the stack's ARN (then its name) finds the
//     CreateStack, UpdateStack or ExecuteChangeSet of that stack that
//     started the operation (history.FindStackOperation), whose caller the
//     policy then names by the rule of tagger.UserOf.
//
// A StackSet instance (a stack named StackSet-…) is found, but its
// operator is recorded in the StackSet's administrator account, which is
// not searched. Every client is the SDK's, with the standard retryer
// (awskms.NewLookupRetryer) and a client-side rate limit per account and
// Region (awskms.NewRateLimit); a lookup that fails, is throttled past its
// retries or outlasts its deadline leaves the tags pending, for the
// handler to write the others and try again later.
package awscfn
