// Package tagger turns a decoded key event into governance tags and applies
// them: the tag policy (which tags, their names and how values are made to fit
// what KMS accepts), the per-region KMS clients and their retryer, the sorting
// of errors into a small fixed set of classes, the dead-letter record, and the
// Handler that ties them together and decides, in one place, what Lambda sees.
//
// Every event ends in exactly one Outcome: tagged, skipped for a stated
// reason, dead-lettered, or returned as an error so that Lambda retries it.
package tagger
