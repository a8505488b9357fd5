package demo

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// Print writes the report as readable tables: one row per event with the
// tags now on its key, one line per tag, then the dead letters.
func (r *Report) Print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT\tKEY\tOUTCOME\tTAGS NOW ON THE KEY / REASON")
	for _, row := range r.Rows {
		lines := tagLines(row.Tags)
		if row.Reason != "" {
			lines = append(lines, "("+shorten(row.Reason, 90)+")")
		}
		if len(lines) == 0 {
			lines = []string{"-"}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", row.Event, shortKey(row.KeyARN), row.Outcome, lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(tw, "\t\t\t%s\n", l)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nDEAD LETTERS (%d)\n", len(r.DeadLetters))
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(r.DeadLetters) > 0 {
		fmt.Fprintln(tw, "EVENT ID\tKEY\tERROR CODE\tMESSAGE")
	}
	for _, d := range r.DeadLetters {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.EventID, shortKey(d.KeyARN), d.Error.Code, shorten(d.Error.Message, 90))
	}
	return tw.Flush()
}

func tagLines(tags map[string]string) []string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	lines := make([]string, len(keys))
	for i, k := range keys {
		lines[i] = k + " = " + tags[k]
	}
	return lines
}

// shortKey turns a key ARN into REGION/KEY-ID.
func shortKey(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 {
		if arn == "" {
			return "-"
		}
		return arn
	}
	return parts[3] + "/" + strings.TrimPrefix(parts[5], "key/")
}

func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
