package backfill

import "github.com/kms-autotagger/kms-autotagger/internal/audit"

// Operation names, as counted in Summary.Requests and
// PartitionReport.Requests: the audit's, whose rate limits (audit.Meter)
// the backfill keeps to.
const (
	OpLookupEvents     = audit.OpLookupEvents
	OpTagResource      = audit.OpTagResource
	OpUntagResource    = audit.OpUntagResource
	OpListResourceTags = audit.OpListResourceTags
	OpListKeys         = audit.OpListKeys
	OpDescribeKey      = audit.OpDescribeKey
)
