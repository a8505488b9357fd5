// Package localaws starts real, independent stand-ins for the AWS services
// kms-autotagger talks to, for integration tests and `make demo`:
//
//   - KMS: one local-kms process per region, behind a RegionRouter that picks
//     the backend from the region in the SigV4 credential scope, so a single
//     AWS_ENDPOINT_URL_KMS serves every region (StartKMS).
//   - SQS: local-aws-sqs, run by node via scripts/sqsserver.mjs (StartSQS).
//   - Lambda: aws-lambda-rie running a real bootstrap binary natively, the way
//     `sam local invoke` runs it in its container (StartRIE).
//
// They are test and demo stand-ins, never production code. Every stand-in is
// a real process started on 127.0.0.1 with a free port (local-kms itself
// listens on all interfaces; see StartKMS), whose output is kept in a log file
// and quoted in start errors, and which Close stops (SIGTERM, then SIGKILL)
// and cleans up after. The binaries are pinned by the repository: local-kms
// and aws-lambda-rie are go.mod tools installed into .tools/bin, local-aws-sqs
// is an exact devDependency in package.json; `make tools` installs them, and
// ToolPath and CheckTools say so when they are missing.
package localaws
