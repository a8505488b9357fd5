// Package localaws starts real, independent stand-ins for the AWS services
// kms-autotagger talks to, for integration tests and `make demo`:
//
//   - KMS: one local-kms process per region, behind a RegionRouter that picks
//     the backend from the region in the SigV4 credential scope, so a single
//     AWS_ENDPOINT_URL_KMS serves every region (StartKMS); for several
//     accounts, one KMS each behind an AccountRouter that picks by the
//     account of the request's access key.
//   - moto (StartMoto): SQS, STS with AssumeRole's real account switching,
//     IAM, S3 and CloudTrail's trail APIs, among every service moto serves,
//     behind a proxy that records requests and lets tests inject faults.
//     StartSQS runs one for a single account's queues.
//   - CloudTrail LookupEvents, which moto lacks: a stand-in in this package
//     with CloudTrail's event history, validation and quota (StartCloudTrail);
//     for several accounts, one each behind an AccountMux.
//   - CloudFormation DescribeStackResources by a resource's physical id,
//     which moto does not look up that way: an http.Handler in this package
//     speaking the service's AWS Query protocol (NewCloudFormation), for
//     httptest.
//   - Lambda: aws-lambda-rie running a real bootstrap binary natively, the way
//     `sam local invoke` runs it in its container (StartRIE).
//
// They are test and demo stand-ins, never production code. Every stand-in is
// a real process (or, for CloudTrail LookupEvents, a server in the test's
// process) on 127.0.0.1 with a free port (local-kms itself listens on all
// interfaces; see StartKMS), whose output is kept in a log file and quoted in
// start errors, and which Close stops (SIGTERM, then SIGKILL) and cleans up
// after. The programs are pinned by the repository: local-kms and
// aws-lambda-rie are tools of tools/go.mod installed into .tools/bin, moto is
// pinned in tools/requirements.txt and installed into the venv .tools/venv;
// `make tools` installs them, and ToolPath, VenvPython and CheckTools say so
// when they are missing.
package localaws
