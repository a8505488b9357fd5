// Package history finds a KMS key's creation event (CreateKey, or the
// ReplicateKey of a replica) in CloudTrail's event history with
// cloudtrail:LookupEvents, and decodes it with the same decoder the Lambda
// uses. The tamper repair derives a key's governance tags again from it.
//
// FindStackOperation finds, in a stack's account and region, the
// CreateStack, UpdateStack or ExecuteChangeSet that started the operation
// that created a resource of the stack: its caller is the person behind a
// key CloudFormation made (CreatedByUser).
package history
