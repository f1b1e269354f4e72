package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
	"github.com/spf13/cobra"
)

// Output formats accepted by -o.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// addOutputFlag registers -o/--output on cmd, defaulting to a table.
func addOutputFlag(cmd *cobra.Command, target *string) {
	cmd.Flags().StringVarP(target, "output", "o", outputTable, "output format: table or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{outputTable, outputJSON}, cobra.ShellCompDirectiveNoFileComp))
}

// checkOutput rejects an -o value other than table or json.
func checkOutput(cmd *cobra.Command, output string) error {
	if output != outputTable && output != outputJSON {
		return usageErrorf(cmd, "invalid -o %q: want table or json", output)
	}
	return nil
}

// writeJSON writes v as indented JSON followed by a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	// Thresholds such as ">= 0.9" must read as written, not as \u003e=.
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// writeTable renders rows under header as a plain ASCII table, which reads
// the same in a terminal, a log file and a test's golden output. On a
// terminal (a writer that reports its width) the table is fitted to that
// width: long cells wrap within their column instead of the whole row
// wrapping across the screen. Pipes and files get full rows.
func writeTable(w io.Writer, header []string, rows [][]string) error {
	return renderTable(w, header, rows, fitColumnsFor(w, header, rows))
}

// notedTable is a table whose last column is prose (a reason, an
// explanation) that an operator reads in full.
type notedTable struct {
	header []string
	rows   [][]string
	// key are the columns that name a row in a note, e.g. gate and replica.
	key []int
	// skip, when set, leaves a row's note out once notes move under the
	// table (a passing gate's reason repeats its value and limit).
	skip func(row []string) bool
}

// writeNotedTable is writeTable for a table whose last column is prose. On
// a terminal too narrow for that column even wrapped (its longest words do
// not fit beside the others), the column moves under the table as one
// "key: note" paragraph per row, wrapped to the terminal's width.
func writeNotedTable(w io.Writer, t notedTable) error {
	widths := fitColumnsFor(w, t.header, t.rows)
	screen, ok := w.(terminalWidther)
	if !ok || widths == nil || tableWidth(widths) <= screen.TerminalWidth() || len(t.header) < 2 {
		return renderTable(w, t.header, t.rows, widths)
	}
	last := len(t.header) - 1
	short := make([][]string, len(t.rows))
	for i, r := range t.rows {
		short[i] = r[:min(last, len(r))]
	}
	if err := renderTable(w, t.header[:last], short, fitColumnsFor(w, t.header[:last], short)); err != nil {
		return err
	}
	wrote := false
	for _, r := range t.rows {
		if len(r) <= last || r[last] == "" || (t.skip != nil && t.skip(r)) {
			continue
		}
		var key []string
		for _, k := range t.key {
			if k < len(r) && r[k] != "" {
				key = append(key, r[k])
			}
		}
		if !wrote {
			fmt.Fprintf(w, "\n%s:\n", t.header[last])
			wrote = true
		}
		fmt.Fprintln(w, wrapParagraph(strings.Join(key, " ")+": "+r[last], screen.TerminalWidth(), "  "))
	}
	return nil
}

func renderTable(w io.Writer, header []string, rows [][]string, widths map[int]int) error {
	opts := []tablewriter.Option{
		tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{Symbols: tw.NewSymbols(tw.StyleASCII)})),
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
	}
	if widths != nil {
		opts = append(opts, fitted(widths))
	}
	t := tablewriter.NewTable(w, opts...)
	t.Header(header)
	if err := t.Bulk(rows); err != nil {
		return fmt.Errorf("render table: %w", err)
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("render table: %w", err)
	}
	return nil
}
