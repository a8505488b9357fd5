package metrics

import (
	"encoding/json"
	"fmt"
	"regexp"
	"time"
)

// DimensionAccount is the account dimension of the coverage metrics.
const DimensionAccount = "Account"

// Coverage metric names: what the scheduled sweep found in one account and
// region (one line per partition, or per shard of a partition too large
// for one invocation: the Sum of the counts over a period adds them up).
const (
	// MetricCoverageKeys counts the customer managed keys audited, those
	// pending deletion included.
	MetricCoverageKeys = "CoverageKeys"
	// MetricCoverageCompliant counts the keys compliant after the run
	// (repaired ones included; pending deletion counts as compliant).
	MetricCoverageCompliant = "CoverageCompliant"
	// MetricCoverageRepaired counts the keys the run repaired.
	MetricCoverageRepaired = "CoverageRepaired"
	// MetricCoverageUnattributable counts the keys without a creation
	// record (event history, trail archive).
	MetricCoverageUnattributable = "CoverageUnattributable"
	// MetricCoverageForged counts the keys found carrying forged governance
	// tags (case variants, owned keys without a true value), before any
	// repair.
	MetricCoverageForged = "CoverageForged"
	// MetricCoverageNonCompliant counts the keys still not compliant after
	// the run.
	MetricCoverageNonCompliant = "CoverageNonCompliant"
	// MetricCoveragePercent is the percentage of compliant keys after the
	// run among those not pending deletion (100 with none): its Minimum
	// over a period below 100 means a key somewhere is not compliant.
	MetricCoveragePercent = "CoveragePercent"
	// MetricCoverageFailed is 1 for a partition that could not be read
	// (no coverage figures then), 0 otherwise.
	MetricCoverageFailed = "CoverageFailed"
)

// coverageDimensionSets are those of every coverage line: per account and
// region, and none (the organization as a whole). With A accounts and R
// regions that is A*R+1 series per metric name, 8 metric names.
var coverageDimensionSets = [][]string{{DimensionAccount, DimensionRegion}, {}}

// Coverage is what one sweep of an account and region found.
type Coverage struct {
	// Account and Region are the partition's (dimensions Account and
	// Region; "unknown" when not an account ID or a region name).
	Account, Region string
	// Keys, Compliant, Repaired, Unattributable, Forged and NonCompliant
	// feed the metrics of their names.
	Keys, Compliant, Repaired, Unattributable, Forged, NonCompliant int
	// Percent is MetricCoveragePercent; nil writes 100 when Keys is zero
	// and the partition did not fail, and no value when it failed.
	Percent *float64
	// Failed is true when the partition could not be read.
	Failed bool
	// Time is when the sweep ran (the EMF Timestamp); zero means now.
	Time time.Time
}

// accountID is the form of an AWS account ID.
var accountID = regexp.MustCompile(`^\d{12}$`)

// RecordCoverage writes c as one EMF line, in one Write, under the
// Emitter's namespace. A nil *Emitter records nothing.
func (e *Emitter) RecordCoverage(c Coverage) error {
	if e == nil {
		return nil
	}
	t := c.Time
	if t.IsZero() {
		t = time.Now()
	}
	account := c.Account
	if !accountID.MatchString(account) {
		account = Unknown
	}
	failed := 0.0
	if c.Failed {
		failed = 1
	}
	root := map[string]any{
		DimensionAccount:             account,
		DimensionRegion:              regionValue(c.Region),
		MetricCoverageKeys:           float64(max(c.Keys, 0)),
		MetricCoverageCompliant:      float64(max(c.Compliant, 0)),
		MetricCoverageRepaired:       float64(max(c.Repaired, 0)),
		MetricCoverageUnattributable: float64(max(c.Unattributable, 0)),
		MetricCoverageForged:         float64(max(c.Forged, 0)),
		MetricCoverageNonCompliant:   float64(max(c.NonCompliant, 0)),
		MetricCoverageFailed:         failed,
	}
	d := directive{Namespace: e.directives[0].Namespace, Dimensions: coverageDimensionSets}
	for _, m := range []string{MetricCoverageKeys, MetricCoverageCompliant, MetricCoverageRepaired, MetricCoverageUnattributable,
		MetricCoverageForged, MetricCoverageNonCompliant, MetricCoverageFailed} {
		d.Metrics = append(d.Metrics, definition{Name: m, Unit: "Count"})
	}
	switch {
	case c.Percent != nil && !c.Failed && *c.Percent == *c.Percent: // not NaN
		root[MetricCoveragePercent] = min(max(*c.Percent, 0), 100)
	case c.Keys == 0 && !c.Failed:
		root[MetricCoveragePercent] = 100.0
	}
	if _, ok := root[MetricCoveragePercent]; ok {
		d.Metrics = append(d.Metrics, definition{Name: MetricCoveragePercent, Unit: "Percent"})
	}
	root["_aws"] = metadata{Timestamp: t.UnixMilli(), CloudWatchMetrics: []directive{d}}
	line, err := json.Marshal(root)
	if err != nil {
		return fmt.Errorf("encoding EMF coverage line: %w", err)
	}
	line = append(line, '\n')
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.w.Write(line); err != nil {
		return fmt.Errorf("writing EMF coverage line: %w", err)
	}
	return nil
}
