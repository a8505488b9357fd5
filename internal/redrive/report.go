package redrive

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"unicode/utf8"
)

// tableCellMax is the most characters of a free-text cell the table shows;
// the JSON report has them whole.
const tableCellMax = 100

// WriteTable writes the report as an aligned table, one message a line,
// followed by a summary line.
func (rep Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MESSAGE\tSHAPE\tEVENT ID\tEVENT\tKEY\tORIGINAL ERROR\tOUTCOME\tCODE\tREASON\tDELETED")
	for _, r := range rep.Rows {
		deleted := "no"
		if r.Deleted {
			deleted = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			cell(r.MessageID), cell(string(r.Shape)), cell(r.EventID), cell(r.EventName), cell(r.KeyARN),
			cell(shorten(r.OriginalError)), cell(string(r.Outcome)), cell(r.ErrorCode), cell(shorten(r.Reason)), deleted)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing the report table: %w", err)
	}
	if _, err := fmt.Fprintln(w, rep.Summary.sentence(rep.DryRun)); err != nil {
		return fmt.Errorf("writing the report summary: %w", err)
	}
	return nil
}

// sentence is the summary in words.
func (s Summary) sentence(dryRun bool) string {
	var parts []string
	add := func(n int, what string) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, what))
		}
	}
	add(s.Tagged, "tagged")
	add(s.Skipped, "skipped")
	add(s.WouldRedrive, "would be redriven")
	add(s.StillFailing, "still failing")
	add(s.Unrecognized, "unrecognized")
	add(s.Interrupted, "interrupted")
	add(s.Unconfirmed, "unconfirmed")
	msgs := plural(s.Messages, "message")
	if len(parts) > 0 {
		msgs += ": " + strings.Join(parts, ", ")
	}
	if dryRun {
		return fmt.Sprintf("Dry run, %s. Nothing was changed.", msgs)
	}
	return fmt.Sprintf("%s. %d deleted, %d left in the queue.", msgs, s.Deleted, s.Remaining)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// cell makes a value fit one table cell: "-" when empty, no tabs or line
// breaks.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(s)
}

func shorten(s string) string {
	if utf8.RuneCountInString(s) <= tableCellMax {
		return s
	}
	return string([]rune(s)[:tableCellMax-1]) + "…"
}
