// Package trailarchive finds the creation records of KMS keys older than
// CloudTrail's 90-day event history in a trail's log files in S3: the
// CreateKey and ReplicateKey records of an organization trail (or an
// account's own trail), where CloudTrail delivers them as
//
//	[PREFIX/]AWSLogs/[o-ORGID/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHmmZ_ID.json.gz
//
// each file a gzip-compressed JSON object {"Records": [...]} of CloudTrail
// records in the same format as the event history's CloudTrailEvent.
//
// A search is bounded in time: it lists only the day folders of the window
// around the key's CreationDate (from Window before to DeliveryLag after),
// and within each day starts after the file name of the window's start
// (ListObjectsV2 StartAfter: file names sort by their timestamp) and stops
// at the first file past its end. Each file is streamed: the gzip reader
// feeds a json.Decoder that decodes one record at a time (Token and More),
// so a file is never held in memory, and a single record may not exceed
// MaxRecordBytes. Only CreateKey and ReplicateKey records of
// kms.amazonaws.com are decoded, with events.DecodeRecord (the Lambda's own
// decoder); the records of each file read are kept (only those), so that
// keys created around the same time share the reads.
//
// The archive is evidence, not truth: a record is taken only when its
// recipient account and region are those of the folder it was delivered
// to, when it is the only creation record of the key in the window (two
// different ones are a ConflictError), and the caller checks it against
// the key with tagger.CheckKey as the handler does. A bucket that others
// than CloudTrail can write to could hold forged records: the bucket
// policy of an organization trail's bucket should allow s3:PutObject to
// cloudtrail.amazonaws.com only.
package trailarchive
