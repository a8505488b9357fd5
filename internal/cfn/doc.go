// Package cfn reads CloudFormation and AWS SAM templates so that tests can
// check what a template deploys without deploying it.
//
// Load and Parse read a YAML (or JSON) template into a generic tree of
// map[string]any, []any and scalars, with CloudFormation's short-form tags
// (!Ref, !GetAtt, !Sub, !If, ...) rewritten to their long form ({"Ref": ...},
// {"Fn::GetAtt": [...]}, ...), so that a template reads the same whichever form
// it was written in. Template gives typed access to the sections, finds every
// reference a template makes (References, Undefined) and evaluates intrinsic
// functions for given parameter values (Evaluate, Condition), so that what a
// stack would receive can be checked for several configurations.
//
// MatchPattern matches an event against an EventBridge event pattern, for the
// subset of the pattern language this project's templates use. Patterns that
// use anything outside it are rejected with an error, never guessed at.
//
// The package makes no AWS calls.
package cfn
