// Package history finds a KMS key's creation event (CreateKey, or the
// ReplicateKey of a replica) in CloudTrail's event history with
// cloudtrail:LookupEvents, and decodes it with the same decoder the Lambda
// uses. The tamper repair derives a key's governance tags again from it.
package history
