// Package cfn holds the tests of the stack templates: template.yaml (AWS SAM)
// and the plain CloudFormation templates of deploy/. It has no code of its
// own; the tests check the templates with the ecosystem's implementations
// rather than with a reading of CloudFormation written here:
//
//   - The real SAM transform: tools/samtransform.py runs the pinned
//     aws-sam-translator (the library behind `sam validate`, `sam build` and
//     `sam deploy`) offline and gives the CloudFormation it makes of a
//     template for the parameter values given.
//   - moto's CloudFormation: the translated templates are deployed with
//     CreateStack and those parameter values into a moto server
//     (localaws.StartMoto), which evaluates the conditions and intrinsic
//     functions and creates the resources; the tests read what was created
//     back through the services' APIs (IAM, Lambda, EventBridge, SQS, ...).
//     moto_test.go says what moto cannot create or gets wrong and how the
//     tests make up for it.
//   - moto's EventBridge: every sample in events/, and crafted variations,
//     is put on a bus whose rule has the deployed rule's event pattern, so
//     which events reach the function is decided by an implementation of
//     EventBridge's pattern matching written elsewhere.
//   - The real handler: TestMetricLinesSurviveEveryLogLevel runs
//     app.NewHandler with the environment a deployed stack gives its
//     function, against local-kms and the SQS stand-in, and puts its output
//     through Lambda's documented log-level filter.
//
// The stand-ins enforce no IAM, key, queue or service control policy, so
// the attack tests on the policies (a case variant of a governance tag, a
// role of the tagger's name in another account or off its path, a message
// sent to a queue by another principal) evaluate the deployed statements
// with iameval_test.go's evalPolicy: a reading of IAM's documented
// evaluation (explicit deny wins) for the statement shapes the templates
// use, itself checked on IAM's documented cases. loglevel_test.go's
// lambdaKeeps is likewise a reading of Lambda's documented log-level
// filter. They are the only readings of a service's behaviour written here.
//
// cfn-lint checks the same templates in `make lint`, and the service
// control policy's statements as an IAM policy in
// TestGovernanceSCPPassesCfnLint (cfn-lint does not look inside an
// AWS::Organizations::Policy's Content).
package cfn
