package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTablesFitTheTerminal runs lanectl in a real terminal (tmux, 80 and
// 120 columns wide) and reads the screen back: the gate table must fit
// without a row wrapping across the screen, and no cell may lose a word.
// Through a pipe the same command prints full rows.
func TestTablesFitTheTerminal(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Fatalf("tmux is needed to test the terminal output (apt-get install tmux): %v", err)
	}
	bin := lanectlBinary(t)

	piped, err := exec.Command(bin, "soak", "--list-gates").Output()
	if err != nil {
		t.Fatalf("soak --list-gates: %v", err)
	}
	full := parseTable(strings.Split(string(piped), "\n"))
	if len(full) < 2 {
		t.Fatalf("piped output has no table:\n%s", piped)
	}
	if w := widest(tableLines(strings.Split(string(piped), "\n"))); w <= 120 {
		t.Fatalf("piped table is %d columns wide; the test needs one wider than 120 to show fitting", w)
	}

	for _, cols := range []int{80, 120} {
		t.Run(fmt.Sprintf("%d columns", cols), func(t *testing.T) {
			screen := runInTerminal(t, tmux, cols, bin, "soak", "--list-gates")
			lines := tableLines(strings.Split(screen, "\n"))
			if w := widest(lines); w > cols {
				t.Errorf("a line is %d columns wide on a %d-column terminal:\n%s", w, cols, screen)
			}
			got := parseTable(lines)
			if len(got) != len(full) {
				t.Fatalf("got %d rows on the terminal, want %d as piped:\n%s", len(got), len(full), screen)
			}
			// A prose column too wide to wrap beside the others moves
			// under the table, one "key: text" paragraph per row.
			if last := len(full[0]) - 1; len(got[0]) == last {
				notes := parseNotes(strings.Split(screen, "\n"), full[0][last])
				for i := range got {
					if i == 0 {
						got[i] = append(got[i], full[0][last])
						continue
					}
					got[i] = append(got[i], notes[got[i][0]])
				}
			}
			for i := range full {
				for j := range full[i] {
					if j >= len(got[i]) || got[i][j] != full[i][j] {
						t.Errorf("row %d column %d: got %q on the terminal, want %q", i, j, cell(got[i], j), full[i][j])
					}
				}
			}
		})
	}
}

// lanectlBinary is this test binary under the name lanectl, which
// testscript.Main (see TestMain) runs as the lanectl command.
func lanectlBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "lanectl")
	if err := os.Symlink(self, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// runInTerminal runs the command in a detached tmux session of the given
// width and returns the screen once the command has finished, with lines
// that the terminal wrapped joined again (capture-pane -J), so a too-wide
// line shows as one long line.
func runInTerminal(t *testing.T, tmux string, cols int, args ...string) string {
	t.Helper()
	socket := fmt.Sprintf("lanectl-test-%d-%d", os.Getpid(), cols)
	const done = "--lanectl-done--"
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	shell := strings.Join(quoted, " ") + "; echo " + done + "; sleep 600"
	start := exec.Command(tmux, "-L", socket, "-f", "/dev/null", "new-session", "-d",
		"-x", fmt.Sprint(cols), "-y", "200", "sh", "-c", shell)
	start.Env = append(os.Environ(), "TERM=xterm")
	if out, err := start.CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command(tmux, "-L", socket, "kill-server").Run() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := exec.Command(tmux, "-L", socket, "capture-pane", "-p", "-J", "-S", "-", "-E", "-").Output()
		if err != nil {
			t.Fatalf("tmux capture-pane: %v", err)
		}
		screen := string(bytes.TrimRight(out, "\n "))
		if i := strings.Index(screen, done); i >= 0 {
			return strings.TrimRight(screen[:i], "\n ")
		}
		if time.Now().After(deadline) {
			t.Fatalf("command did not finish in 30s; screen:\n%s", screen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tableLines keeps the lines that draw the table: borders and rows.
func tableLines(lines []string) []string {
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, "+") || strings.HasPrefix(l, "|") {
			out = append(out, l)
		}
	}
	return out
}

func widest(lines []string) int {
	w := 0
	for _, l := range lines {
		w = max(w, len([]rune(strings.TrimRight(l, " "))))
	}
	return w
}

// parseTable reads an ASCII table back into rows of cells: a row's wrapped
// continuation lines (first cell empty) are joined to it, words separated
// by one space.
func parseTable(lines []string) [][]string {
	var rows [][]string
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "|") {
			continue
		}
		parts := strings.Split(strings.Trim(l, "|"), "|")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		if len(rows) > 0 && parts[0] == "" {
			last := rows[len(rows)-1]
			for i := range parts {
				if i < len(last) && parts[i] != "" {
					last[i] = strings.TrimSpace(last[i] + " " + parts[i])
				}
			}
			continue
		}
		rows = append(rows, parts)
	}
	return rows
}

// parseNotes reads the paragraphs printed under a table after the line
// "<title>:", keyed by the text before their first ": ".
func parseNotes(lines []string, title string) map[string]string {
	notes := map[string]string{}
	in, key := false, ""
	for _, l := range lines {
		switch {
		case strings.TrimSpace(l) == title+":":
			in = true
		case !in || strings.TrimSpace(l) == "":
			in = in && key == ""
		case strings.HasPrefix(l, "  ") && key != "":
			notes[key] += " " + strings.TrimSpace(l)
		default:
			k, text, ok := strings.Cut(l, ": ")
			if !ok {
				in = false
				continue
			}
			key = k
			notes[key] = strings.TrimSpace(text)
		}
	}
	return notes
}

func cell(row []string, i int) string {
	if i < len(row) {
		return row[i]
	}
	return "<missing>"
}
