// Package events decodes the EventBridge events that deliver KMS API calls
// recorded by CloudTrail ("AWS API Call via CloudTrail") into a KeyEvent: the
// one key that was created, where, when and by whom.
//
// Decoding happens in two steps. The EventBridge envelope is read into
// events.EventBridgeEvent from aws-lambda-go with its Detail kept as raw JSON;
// the detail is then read into Record, a CloudTrail model this package owns.
// The parser for the detail is chosen from a table keyed by source,
// detail-type and eventName, so an event that is not ours is a no-op with a
// stated reason rather than an error.
//
// Because those steps read most of the event four times, Decode first tries
// one pass over the whole event into the union of every parser's models
// (onepass.go); only an event that does not decode whole, and so will end in
// an error or a stated reason, takes the steps. Both give the same result
// for every input (TestOnePassAgreesWithTwoSteps, FuzzOnePass).
//
// The package makes no AWS calls and holds no clients.
package events
