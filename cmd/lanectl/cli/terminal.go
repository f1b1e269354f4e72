package cli

import (
	"io"
	"slices"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/pkg/twwidth"
	"github.com/olekukonko/tablewriter/tw"
)

// terminalWidther is a writer that knows how many columns it shows.
type terminalWidther interface {
	TerminalWidth() int
}

// terminal is standard output when it is a terminal: tables are fitted to
// its width.
type terminal struct {
	io.Writer
	cols int
}

func (t terminal) TerminalWidth() int { return t.cols }

// fitColumnsFor is fitColumns for the width of w, when w is a terminal.
func fitColumnsFor(w io.Writer, header []string, rows [][]string) map[int]int {
	if screen, ok := w.(terminalWidther); ok {
		return fitColumns(screen.TerminalWidth(), header, rows)
	}
	return nil
}

// tableWidth is the width of a table drawn with these column widths.
func tableWidth(widths map[int]int) int {
	total := len(widths) + 1
	for _, w := range widths {
		total += w
	}
	return total
}

// wrapParagraph breaks text at spaces into lines of at most cols columns,
// indenting every line after the first; a word longer than a line stays
// whole.
func wrapParagraph(text string, cols int, indent string) string {
	var b strings.Builder
	line := 0
	for i, word := range strings.Fields(text) {
		ww := twwidth.Width(word)
		switch {
		case i == 0:
		case line+1+ww > cols:
			b.WriteString("\n" + indent)
			line = twwidth.Width(indent)
		default:
			b.WriteByte(' ')
			line++
		}
		b.WriteString(word)
		line += ww
	}
	return b.String()
}

// cellPadding is the space tablewriter puts on each side of a cell.
const cellPadding = 2

// fitColumns chooses a maximum width (content plus padding) for each column
// so the table fits in cols terminal columns, or returns nil when it fits as
// it is. A column never gets narrower than its longest word, so values are
// wrapped but never cut; a table whose words alone are too wide overflows.
// The width left over after the narrow columns have all they need is
// shared evenly among the wide ones.
func fitColumns(cols int, header []string, rows [][]string) map[int]int {
	n := len(header)
	if cols <= 0 || n == 0 {
		return nil
	}
	natural := make([]int, n)
	minimum := make([]int, n)
	measure := func(i int, cell string) {
		for _, line := range strings.Split(cell, "\n") {
			natural[i] = max(natural[i], twwidth.Width(line)+cellPadding)
			for _, word := range strings.Fields(line) {
				minimum[i] = max(minimum[i], twwidth.Width(word)+cellPadding)
			}
		}
		minimum[i] = max(minimum[i], 1+cellPadding)
	}
	for i, h := range header {
		measure(i, h)
	}
	for _, r := range rows {
		for i := 0; i < n && i < len(r); i++ {
			measure(i, r[i])
		}
	}
	borders := n + 1
	avail := cols - borders
	sum := func(xs []int) int {
		t := 0
		for _, x := range xs {
			t += x
		}
		return t
	}
	if sum(natural) <= avail {
		return nil
	}
	widths := slices.Clone(minimum)
	left := avail - sum(widths)
	for left > 0 {
		var growing []int
		for i := range widths {
			if widths[i] < natural[i] {
				growing = append(growing, i)
			}
		}
		if len(growing) == 0 {
			break
		}
		share := max(left/len(growing), 1)
		for _, i := range growing {
			give := min(share, natural[i]-widths[i], left)
			widths[i] += give
			left -= give
			if left == 0 {
				break
			}
		}
	}
	out := make(map[int]int, n)
	for i, w := range widths {
		out[i] = w
	}
	return out
}

// fitted makes header and rows wrap within the given column widths.
func fitted(widths map[int]int) tablewriter.Option {
	return func(t *tablewriter.Table) {
		t.Configure(func(c *tablewriter.Config) {
			per := tw.NewMapper[int, int]()
			for i, w := range widths {
				per.Set(i, w)
			}
			c.Header.Formatting.AutoWrap = tw.WrapNormal
			c.Row.Formatting.AutoWrap = tw.WrapNormal
			c.Header.ColMaxWidths.PerColumn = per
			c.Row.ColMaxWidths.PerColumn = per
		})
	}
}
