// Package doctor tells a team, before they rely on the tagger, whether it can
// work in their accounts and regions: each check calls the AWS APIs the
// tagger depends on, read-only, and says pass or fail and what to do about a
// failure.
//
// The checks:
//
//   - settings: the function's environment variables parse (config.FromEnv).
//   - identity: sts:GetCallerIdentity; the credentials belong to the expected
//     account and principal when those are given.
//   - cloudtrail, one per region: a trail covers the region (its home region
//     or a multi-Region or organization trail homed elsewhere, found with
//     DescribeTrails including shadow trails), is logging (GetTrailStatus),
//     and records management write events from kms.amazonaws.com
//     (GetEventSelectors, basic or advanced). EventBridge receives the "AWS
//     API Call via CloudTrail" events the tagger reacts to only then.
//   - dead-letter-queue: DEAD_LETTER_QUEUE_URL is set and the queue answers
//     sqs:GetQueueAttributes for its QueueArn.
//
// Each check is a function over a small interface holding the one to three
// SDK calls it makes (TrailAPI, QueueAPI, IdentityAPI), satisfied by the
// aws-sdk-go-v2 clients. The checks never return an error: a failed call is a
// failed check whose text says which permission or setting to look at.
package doctor
