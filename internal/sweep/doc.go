// Package sweep is the scheduled audit-and-repair of every customer managed
// key in the organization, inside AWS, by the function that tags new keys.
//
// A run has two steps, each a Lambda invocation of the same binary
// (internal/app's Dispatcher tells them apart by the event's shape):
//
//   - Plan, on the schedule's EventBridge "Scheduled Event": it lists the
//     accounts (the function's own, a configured list, or every ACTIVE
//     account of the organization) and each one's regions (the function's,
//     a list, or every enabled region) and sends one SQS message per
//     account and region, a partition, to the sweep queue.
//   - Process, on an SQS event of that queue: each record is one partition
//     (or one shard of a partition), audited and, with SWEEP_REPAIR,
//     repaired by internal/audit within the sweep's rate limits, with one
//     coverage line of CloudWatch Embedded Metric Format per partition
//     (metrics.Coverage). A record that fails is reported in
//     batchItemFailures (ReportBatchItemFailures), so that SQS delivers it
//     again and, after the queue's maxReceiveCount, moves it to the
//     dead-letter queue; the others are deleted.
//
// No invocation exceeds Lambda's 15-minute limit, however large the
// organization: the work is one message per partition, and the messages
// left in the queue are the resume point. A partition too large for the
// time left (its keys, one LookupEvents each at SWEEP_LOOKUP_RATE) is cut
// into shards before any work (the keys whose FNV-1a hash of the key ID is
// i modulo n), each its own message; a shard cut short by the deadline all
// the same is cut in two and sent again, never left half done. A FIFO
// queue with the partition as MessageGroupId makes sure one account and
// region is never swept by two invocations at once, which would exceed its
// rate limits; the deduplication ID (run, partition, shard) drops the
// messages of a schedule delivered twice.
//
// Messages are untrusted input, like every event: a message is acted on
// only when it is of the sweep's own form (version, kind), names an
// account and region in the configured scope, and a shard that exists.
package sweep
