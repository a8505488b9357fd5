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
// The table is the one list of the events the product handles;
// CreationEventNames and TagChangeEventNames read it for the packages that
// need the list.
//
// The package makes no AWS calls and holds no clients.
package events
