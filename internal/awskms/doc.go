// Package awskms is the KMS plumbing of the tagger: the SDK clients the
// handler's tagger.KMSClients port is served by, one per region
// (RegionalKMS) and per account through a member role assumed with STS,
// its credentials cached until they expire (AccountKMS); the retryer on
// top of the SDK's standard one (NewRetryer); and the client-side rate
// limit (WithRateLimit).
//
// The same credentials serve the other lookups made in a key's account
// (ConfigSource: AccountKMS.AccountConfig, SingleAccount), with the
// lookups' retryer (NewLookupRetryer) and a rate limit for a client of any
// service (NewRateLimit): the stack lookups of internal/awscfn.
//
// The tag policy, the outcomes and the classification of failures are the
// domain, in internal/tagger, which this package serves and imports; it
// never imports this one.
package awskms
