// Package tagger is the domain of kms-autotagger: it turns a decoded key
// event into governance tags and applies them. It holds the tag policy
// (which tags, their names, what the tagger owns and how values are made to
// fit what KMS accepts), the checks of an event against its key, the
// sorting of errors into a small fixed set of classes, the dead-letter
// record, and the Handler that ties them together and decides, in one
// place, what Lambda sees.
//
// It reaches AWS only through small SDK-shaped ports declared beside their
// user: KMSClients and KMSAPI (served by internal/awskms), DeadLetterSink
// (internal/awssqs), CreationFinder and CreationConfirmer (internal/history,
// CloudTrail), StackFinder (internal/awscfn: CloudFormation and CloudTrail,
// for CreatedByStack and CreatedByUser). Those packages import this one;
// this one imports none of them.
//
// CreatedByUser names a person only where AWS establishes one (UserOf, the
// rule table); a derived tag whose value is not known yet (a stack lookup
// that failed) is pending: written by no one and removed from no key
// (PlanWith), and the handler returns the event for a retry once the
// other tags are on the key (CodeAttributionPending).
//
// Every event ends in exactly one Outcome: tagged, skipped for a stated
// reason, dead-lettered, or returned as an error so that Lambda retries it.
package tagger
