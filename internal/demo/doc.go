// Package demo runs the product end to end on one machine with no AWS
// account and no Docker: the real bootstrap under the Lambda runtime
// interface emulator, against local-kms in two regions (behind the region
// router) and the SQS stand-in. It seeds the keys the sample events name,
// posts every sample exactly as `sam local invoke` would, and reports what
// happened: the outcome of each event, the tags now on each key, and the
// dead letters. `make demo` prints the report; the end-to-end tests assert
// on it.
package demo
