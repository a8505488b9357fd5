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
//
// cfn-lint checks the same templates in `make lint`.
package cfn
