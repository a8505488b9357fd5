// Package awsenv builds the AWS SDK configuration of the Lambda function
// from the environment variables AWS Lambda sets, without the SDK's config
// package.
//
// config.LoadDefaultConfig links in every source it can chain: shared files
// and profiles, IAM Identity Center (the sso, ssooidc and signin clients),
// credential processes, web identity, container and instance metadata. In
// Lambda none of them applies: the runtime puts the execution role's
// credentials and the Region in the environment. Linked in, they cost the
// function's linux/arm64 bootstrap 1.4 MB and every cold start about 1 ms of
// package initialisation (docs/PERFORMANCE.md). Load reads the variables the
// SDK's own environment source reads, by the same rules, and leaves their
// resolution (endpoints, FIPS, dual-stack, retries) to the SDK clients, as
// LoadDefaultConfig does; its test compares the two, variable by variable.
//
// The command line, run by people with profiles and SSO sessions, keeps
// config.LoadDefaultConfig.
package awsenv
