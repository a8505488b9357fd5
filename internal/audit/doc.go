// Package audit checks the governance tags of every customer managed KMS
// key in a set of accounts and regions against what the tagger would have
// written, and, when asked, repairs what it can.
//
// For each account and region (a partition) it lists the keys (ListKeys,
// DescribeKey; AWS managed keys are left out), reads their tags
// (ListResourceTags), finds each key's creation event in CloudTrail's event
// history (LookupEvents by ResourceName, decoded with events.DecodeRecord,
// as the tamper repair's history.Finder does) and compares the tags with
// the plan of the Lambda's own tagger.Policy for that event. Each key gets
// one Status: compliant, missing, wrong, forged, unattributable (no
// creation event in the history) or pending-deletion (failed when its state
// could not be read).
//
// A repair applies the same exact-set rule as the handler, from the
// creation event CloudTrail's history holds and never from nothing:
// UntagResource of the owned keys that must go, TagResource of the tags
// missing or wrong. Unattributable keys are reported, never tagged.
//
// Partitions run concurrently in a bounded pool, each within its own
// client-side rate limits (golang.org/x/time/rate): LookupEvents at
// CloudTrail's quota of 2 per second per account and region, TagResource
// and UntagResource at a share of KMS's quota that leaves room for the live
// handler, and the read calls at a fixed rate. So a run takes about as long
// as its slowest partition, not the sum of all of them.
package audit
