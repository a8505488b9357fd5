// Package metrics writes the tagger's CloudWatch metrics as Embedded Metric
// Format (EMF) log lines: one JSON object per handled event, which CloudWatch
// Logs turns into metrics when the line reaches a Lambda function's log group.
// No CloudWatch API is called and no agent is needed.
//
// # Metrics
//
// Every line carries, under the namespace given to New (DefaultNamespace
// when empty):
//
//   - Events (Count): 1. Summed by the Outcome dimension it counts the events
//     tagged, skipped, dead-lettered and returned as errors.
//   - Retries (Count): the TagResource attempts beyond the first.
//   - TagsWritten (Count): the governance tags written on the key.
//   - Repairs (Count): 1 for a tamper repair that restored governance tags.
//   - Duration (Milliseconds): the time the handler spent on the event.
//
// # Dimensions
//
// One metric directive applies three dimension sets to every metric:
// [Outcome], [Outcome, EventName] and [Region]. Each set is a separate
// CloudWatch metric per combination of values, and each is billed, so every
// dimension value comes from a small closed set:
//
//   - Outcome: tagged, skipped, dead-lettered or error (the tagger.Outcome
//     values); anything else is reported as "unknown".
//   - EventName: one of the events the events package handles
//     (events.CreationEventNames and events.TagChangeEventNames: CreateKey,
//     ReplicateKey, TagResource, UntagResource); anything else, including an
//     event too malformed to have a name, as "Other".
//   - Region: the key's region when it has the form of a region name, else
//     "unknown".
//
// With R regions in use, and counting "unknown" and "Other", that is at
// most 5 + 5*5 + R+1 series per metric name, 5 metric names. [Outcome]
// answers "how many dead letters"; [Outcome, EventName] separates replicas
// from new keys and tag changes; [Region] shows where retries and latency
// come from. Finer questions (which key, which creator) belong to
// the handler's log line, not to metric dimensions: a key ARN or event ID as
// a dimension would create a metric per event.
//
// # Adding a metric
//
// A metric is an explicit field of Event plus one row of the metric table in
// emf.go (name, unit, how its value is read from the Event); the directive
// and the line are built from that table, and the tests check every row
// against the EMF specification. A future "Repaired" count, for example, is a
// Repaired int field and a {"Repaired", "Count", ...} row.
package metrics
