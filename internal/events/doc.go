// Package events decodes the EventBridge events that deliver KMS API calls
// recorded by CloudTrail ("AWS API Call via CloudTrail") into what the tagger
// acts on: a KeyEvent, the one key that was created, where, when and by
// whom; or a TagChange, a change of a key's tags.
//
// Decoding happens in two steps. The EventBridge envelope is read into
// events.EventBridgeEvent from aws-lambda-go with its Detail kept as raw JSON;
// the detail is then read by the parser of its kind, which the table in
// parsers.go picks by source, detail-type and eventName, into Record, a
// CloudTrail model this package owns, and the kind's own models of
// requestParameters and responseElements (one file per kind: createkey.go,
// replicatekey.go, tagresource.go, untagresource.go). An event that is not
// in the table is a no-op with a stated reason rather than an error.
//
// An event is acted on only when its fields agree on where the call was
// made. Its accounts must be equal: the envelope's account, the record's
// recipientAccountId, the account of every key ARN it names (the key,
// requestParameters.keyId, a replica's primary) and keyMetadata's
// AWSAccountId; and so must its regions: the envelope's region, awsRegion and
// the key ARN's, where for ReplicateKey, logged in the primary's region, that
// is the primary key ARN's, and the replica ARN's region must instead equal
// requestParameters.replicaRegion. The envelope's account and region and the
// record's awsRegion are required (a *MalformedError without them), every
// other field is compared when present, DecodeRecord (no envelope) compares
// the record's own, and a disagreement is an *InconsistentError.
//
// The table is the one list of the events the product handles;
// CreationEventNames and TagChangeEventNames read it for the packages that
// need the list.
//
// DecodeStackOperation reads, apart from the table, the CloudTrail record
// of a CloudFormation call that starts a stack operation (CreateStack,
// UpdateStack, ExecuteChangeSet) or creates a change set, whose caller the
// tagger names as the person behind a key the stack made; ParseStackARN
// reads a stack's ARN.
//
// The package makes no AWS calls and holds no clients.
package events
