// Package localawstest starts the localaws stand-ins for a test and points
// the AWS SDK at them through the environment, the way net/http/httptest
// serves HTTP for tests: Start runs local-kms (us-east-1 and eu-west-1 by
// default) behind its region router, the SQS stand-in with a dead-letter
// queue and, when asked, the CloudTrail stand-in, registers their Cleanup,
// and sets with tb.Setenv the variables that make config.LoadDefaultConfig
// (the function's configuration, FunctionConfig, and the CLI's) use them:
// AWS_ENDPOINT_URL_KMS,
// AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL_CLOUDTRAIL, AWS_REGION=us-east-1,
// dummy static credentials, AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE
// set to os.DevNull, and DEAD_LETTER_QUEUE_URL. Options.Env adds or
// overrides variables after those.
//
// A stand-in that does not start fails the test (its tools are installed by
// `make tools`); it never skips it. Because Start uses tb.Setenv, a test
// that calls it cannot run in parallel.
//
// The Stack's helpers do what the integration tests do around the handler:
// create a key, read and put a key's tags, and drain the dead-letter queue
// into tagger.DeadLetter records with their message attributes.
package localawstest
