// Package awssqs is the SQS plumbing of the tagger: the dead-letter queue
// that keeps the record (tagger.DeadLetter) of every event that failed
// permanently, as one SQS message with its error code, event name and
// record version as message attributes.
package awssqs
