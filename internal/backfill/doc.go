// Package backfill tags the KMS keys created before kms-autotagger was
// deployed. It reads the CreateKey and ReplicateKey events of CloudTrail
// event history (cloudtrail:LookupEvents, the last 90 days), decodes each
// with the Lambda's decoder (events.DecodeRecord) and tags each key with the
// Lambda's policy (tagger.Policy), reporting one row per key in the
// Lambda's vocabulary: tagged, skipped with a reason, failed with an error
// code and class, and the states only a backfill meets (up-to-date,
// not-found, pending-deletion, no-creation-event).
//
// Event lookups and tagging run as a pipeline within client-side rate
// limits (golang.org/x/time/rate), so a run takes as long as CloudTrail's
// LookupEvents quota and the chosen TagResource rate require, and no
// longer. A key that already carries the right tags gets no TagResource
// call, so a run can be interrupted and run again.
package backfill
