package audit

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kms-autotagger/kms-autotagger/internal/tagger"
)

// Output formats.
const (
	FormatTable = "table"
	FormatJSON  = "json"
	FormatCSV   = "csv"
)

// Formats lists the output formats.
var Formats = []string{FormatTable, FormatJSON, FormatCSV}

// Write writes rep in format, with runErr (the error Run returned, if any).
func Write(w io.Writer, format string, rep *Report, runErr error) error {
	switch format {
	case FormatTable:
		return WriteTable(w, rep, runErr)
	case FormatJSON:
		return WriteJSON(w, rep, runErr)
	case FormatCSV:
		return WriteCSV(w, rep)
	}
	return fmt.Errorf("output format %q is not one of %s", format, strings.Join(Formats, ", "))
}

// JSONReport is the document WriteJSON writes: the report, and the run's
// error if any.
type JSONReport struct {
	*Report
	Error string `json:"error,omitempty"`
}

// WriteJSON writes the report as one indented JSON document.
func WriteJSON(w io.Writer, rep *Report, runErr error) error {
	doc := JSONReport{Report: rep}
	if runErr != nil {
		doc.Error = runErr.Error()
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// CSVHeader is the header line of WriteCSV.
var CSVHeader = []string{"account", "region", "key_arn", "key_id", "key_state", "status", "action",
	"event_id", "event_name", "evidence", "missing", "wrong", "forged", "dropped", "written", "removed", "reason", "error_code"}

// WriteCSV writes one line per key under CSVHeader (the partitions'
// figures are in the table and JSON outputs). Lists of tags are
// "Key=Value" joined by ";", which KMS does not allow in tags; a wrong tag
// is "Key=Value (want True)". A field that a spreadsheet would take for a
// formula (starting with = + - @, tab or CR: tag values are data anyone
// allowed to tag a key wrote) is prefixed with a single quote.
func WriteCSV(w io.Writer, rep *Report) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	for _, r := range rep.Keys {
		wrong := make([]string, len(r.Wrong))
		for i, m := range r.Wrong {
			wrong[i] = m.Key + "=" + m.Value + " (want " + m.Want + ")"
		}
		rec := []string{r.Account, r.Region, r.KeyARN, r.KeyID, r.KeyState, string(r.Status), string(r.Action),
			r.EventID, r.EventName, r.Evidence, joinTags(r.Missing), strings.Join(wrong, ";"), joinTags(r.Forged), joinTags(r.Dropped),
			joinTags(r.Written), strings.Join(r.Removed, ";"), r.Reason, r.ErrorCode}
		for i, f := range rec {
			rec[i] = defuse(f)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// defuse keeps a spreadsheet from taking a field for a formula.
func defuse(f string) string {
	if f != "" && strings.ContainsRune("=+-@\t\r", rune(f[0])) {
		return "'" + f
	}
	return f
}

func joinTags(tags []tagger.Tag) string {
	parts := make([]string, len(tags))
	for i, t := range tags {
		parts[i] = t.Key + "=" + t.Value
	}
	return strings.Join(parts, ";")
}

// WriteTable writes the summary table per account and region, a line per
// key, and what is left to do.
func WriteTable(w io.Writer, rep *Report, runErr error) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "ACCOUNT\tREGION\tKEYS")
	for _, s := range Statuses {
		fmt.Fprint(tw, "\t"+strings.ToUpper(string(s)))
	}
	if rep.Summary.Repair {
		fmt.Fprint(tw, "\tREPAIRED")
	}
	fmt.Fprint(tw, "\tCOVERAGE")
	if rep.Summary.Repair {
		fmt.Fprint(tw, "\tAFTER REPAIR")
	}
	fmt.Fprintln(tw, "\tELAPSED\tLOOKUPS/S")
	line := func(account, region string, keys int, statuses map[Status]int, repaired int, coverage, after *float64, elapsed time.Duration, lookups string) {
		fmt.Fprintf(tw, "%s\t%s\t%d", account, region, keys)
		for _, s := range Statuses {
			fmt.Fprintf(tw, "\t%d", statuses[s])
		}
		if rep.Summary.Repair {
			fmt.Fprintf(tw, "\t%d", repaired)
		}
		fmt.Fprintf(tw, "\t%s", pct(coverage))
		if rep.Summary.Repair {
			fmt.Fprintf(tw, "\t%s", pct(after))
		}
		fmt.Fprintf(tw, "\t%s\t%s\n", elapsed.Round(time.Millisecond), lookups)
	}
	for _, p := range rep.Partitions {
		lookups := fmt.Sprintf("%.2f of %g", p.LookupEventsPerSecond, p.LookupEventsLimit)
		if p.Error != "" {
			lookups += " (error)"
		}
		line(p.Account, p.Region, p.Keys, p.Statuses, p.Repaired, p.Coverage, p.CoverageAfterRepair, p.Elapsed, lookups)
	}
	s := rep.Summary
	line("TOTAL", fmt.Sprintf("%d partitions", s.Partitions), s.Keys, s.Statuses, s.Repaired, s.Coverage, s.CoverageAfterRepair, s.Elapsed, "-")
	if err := tw.Flush(); err != nil {
		return err
	}

	if len(rep.Keys) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ACCOUNT\tREGION\tKEY\tSTATUS\tACTION\tDETAIL")
		for _, r := range rep.Keys {
			action := string(r.Action)
			if action == "" {
				action = "-"
			}
			detail := r.Reason
			if r.ErrorCode != "" {
				detail = r.ErrorCode + ": " + detail
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Account, r.Region, r.KeyID, r.Status, action, oneLine(detail))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "\n%d customer managed keys (%d AWS managed left out) in %d accounts and %d regions: coverage %s",
		s.Keys, s.AWSManagedKeys, len(s.Accounts), len(s.Regions), pct(s.Coverage))
	if s.Repair {
		fmt.Fprintf(&b, ", %s after repairing %d", pct(s.CoverageAfterRepair), s.Repaired)
	}
	fmt.Fprintf(&b, ".\nTook %s, up to %d accounts-and-regions at once (the slowest %s, all added up %s).\n",
		s.Elapsed.Round(time.Millisecond), min(s.Parallel, s.Partitions), seconds(s.SlowestPartitionSeconds), seconds(s.SumPartitionSeconds))
	switch {
	case s.NonCompliant == 0:
		b.WriteString("Every key is compliant.\n")
	case s.Repair:
		fmt.Fprintf(&b, "%d keys are still not compliant.\n", s.NonCompliant)
	default:
		fmt.Fprintf(&b, "%d keys are not compliant; --repair fixes those whose creation event CloudTrail's history holds.\n", s.NonCompliant)
	}
	if len(s.Unattributable) > 0 {
		fmt.Fprintf(&b, "Unattributable (no creation event in CloudTrail's event history; never tagged from nothing): %s\n", strings.Join(s.Unattributable, ", "))
	}
	for _, e := range s.Errors {
		fmt.Fprintf(&b, "Error: %s\n", oneLine(e))
	}
	if s.Interrupted {
		b.WriteString("Interrupted: the rows are what was audited by then.\n")
	} else if runErr != nil && len(s.Errors) == 0 {
		fmt.Fprintf(&b, "Error: %v\n", runErr)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func pct(p *float64) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatFloat(*p, 'f', 1, 64) + "%"
}

func seconds(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Millisecond).String()
}

// oneLine keeps a detail on one table line.
func oneLine(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Join(strings.Fields(s), " ")
}
