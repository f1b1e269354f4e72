package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/lanectl/lanectl/gates"
	"github.com/lanectl/lanectl/internal/atomicfile"
	"github.com/lanectl/lanectl/targets"
)

func progress(opts *SoakOptions, run *soakRun, res gates.Result) {
	total := run.soak.Request.Window.Duration()
	elapsed := res.Window.Duration()
	var states []string
	for _, g := range res.Gates {
		states = append(states, g.Name+" "+string(g.Verdict))
	}
	line := fmt.Sprintf("%s of %s (%.0f%%), %s left, %s so far: %s", soakDuration(elapsed), soakDuration(total),
		100*elapsed.Seconds()/total.Seconds(), soakDuration(total-elapsed), res.Verdict, strings.Join(states, ", "))
	if opts.Streams.IsTTY {
		fmt.Fprintf(opts.Streams.ErrOut, "\r\033[K%s", line)
		return
	}
	fmt.Fprintf(opts.Streams.ErrOut, "%s %s\n", opts.Now().UTC().Format(time.RFC3339), line)
}

// soakJSON is what -o json prints: the gates result plus who and where.
type soakJSON struct {
	gates.Result
	Canaries    []string `json:"canaries"`
	Baselines   []string `json:"baselines"`
	Source      string   `json:"source"`
	Interrupted bool     `json:"interrupted,omitempty"`
}

func finishSoak(opts *SoakOptions, run *soakRun, res gates.Result, interrupted bool) error {
	canaries, baselines := targetNames(run.soak.Request.Canaries), targetNames(run.soak.Request.Baselines)
	if opts.Output == outputJSON {
		if err := writeJSON(opts.Streams.Out, soakJSON{Result: res, Canaries: canaries, Baselines: baselines, Source: run.source, Interrupted: interrupted}); err != nil {
			return err
		}
	} else if err := writeSoakTable(opts.Streams.Out, run, res, canaries, baselines); err != nil {
		return err
	}
	if opts.Record != "" {
		if err := writeSoakRecord(opts.Record, gates.NewRecord(run.target.Name, run.soak.Set, run.soak.Request, res, opts.Now())); err != nil {
			return err
		}
		fmt.Fprintf(opts.Streams.ErrOut, "recorded the evidence in %s ('lanectl judge %s' decides it again)\n", opts.Record, opts.Record)
	}
	who := "soak of " + strings.Join(canaries, ", ")
	switch {
	case res.Verdict == gates.Fail:
		return fmt.Errorf("%s %w: %s", who, ErrFailed, res.Reason)
	case interrupted:
		return fmt.Errorf("%s interrupted, %w so far: %s", who, ErrInconclusive, res.Reason)
	case res.Verdict != gates.Pass:
		return fmt.Errorf("%s %w: %s", who, ErrInconclusive, res.Reason)
	}
	return nil
}

func writeSoakTable(w io.Writer, run *soakRun, res gates.Result, canaries, baselines []string) error {
	base := strings.Join(baselines, ", ")
	if base == "" {
		base = "none"
	}
	fmt.Fprintf(w, "canary %s, baselines %s\n", strings.Join(canaries, ", "), base)
	win := run.soak.Request.Window
	fmt.Fprintf(w, "window %s .. %s (%s, start from %s)", formatTime(win.Start), formatTime(win.End), soakDuration(win.Duration()), run.soak.StartFrom)
	if !res.Complete {
		fmt.Fprintf(w, ", evaluated to %s", formatTime(res.Window.End))
	}
	fmt.Fprintf(w, "\nmetrics from %s\n\n", run.source)
	if len(res.Gates) > 0 {
		if err := writeSoakGates(w, res); err != nil {
			return err
		}
		writeBlind(w, run.target)
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "verdict: %s: %s\n", res.Verdict, res.Reason)
	return nil
}

// writeSoakGates prints one row per gate and replica. A replica a gate
// does not judge (a baseline under a canary-only limit) shows "-", so a
// failing gate's verdict is never printed next to a replica that did not
// cause it. The query of every gate that did not pass follows the table.
func writeSoakGates(w io.Writer, r gates.Result) error {
	var rows [][]string
	for _, g := range r.Gates {
		for _, v := range g.Values {
			val := strconv.FormatFloat(v.Value, 'g', 4, 64)
			if v.Missing {
				val = "missing"
			}
			verdict := string(v.Verdict)
			if verdict == "" {
				verdict = "-"
			}
			rows = append(rows, []string{g.Name, verdict, v.Replica + " (" + v.Role + ")", val, g.Threshold, v.Reason})
		}
	}
	passing := func(row []string) bool { return row[1] == string(gates.Pass) }
	if err := writeNotedTable(w, notedTable{header: []string{"GATE", "VERDICT", "REPLICA", "VALUE", "LIMIT", "REASON"}, rows: rows, key: []int{0, 2}, skip: passing}); err != nil {
		return err
	}
	for _, g := range r.Gates {
		if g.Verdict != gates.Pass {
			fmt.Fprintf(w, "\n%s %s: %s\n  %s\n", g.Name, g.Verdict, g.Reason, strings.ReplaceAll(g.Query, "\n", "\n  "))
		}
		for _, warn := range g.Warnings {
			fmt.Fprintf(w, "%s: warning from the metrics backend: %s\n", g.Name, warn)
		}
	}
	return nil
}

// writeSoakRecord writes rec as indented JSON, atomically.
func writeSoakRecord(path string, rec gates.Record) error {
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return fmt.Errorf("record: %w", err)
	}
	if err := atomicfile.Write(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("record: %w", err)
	}
	return nil
}

// soakDuration prints 24h rather than 24h0m0s.
func soakDuration(d time.Duration) string {
	s := formatDuration(d)
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func targetNames(ts []gates.Target) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Name
	}
	return out
}

type gateListJSON struct {
	Name      string `json:"name"`
	Help      string `json:"help"`
	Threshold string `json:"threshold"`
	Violation string `json:"on_violation"`
	Disabled  bool   `json:"disabled,omitempty"`
	Query     string `json:"query"`
	// DecidedFrom is what decides a gate that has no query.
	DecidedFrom string `json:"decided_from,omitempty"`
}

func writeGateList(opts *SoakOptions, target targets.Target, set gates.Set) error {
	var doc []gateListJSON
	for _, g := range set {
		doc = append(doc, gateListJSON{Name: g.Name, Help: g.Help, Threshold: g.Threshold(), Violation: string(g.Violation), Disabled: g.Disabled, Query: g.Query, DecidedFrom: g.External})
	}
	if opts.Output == outputJSON {
		return writeJSON(opts.Streams.Out, doc)
	}
	rows := make([][]string, 0, len(doc))
	for _, g := range doc {
		v := g.Violation
		if g.Disabled {
			v = "disabled"
		}
		rows = append(rows, []string{g.Name, g.Threshold, v, g.Help})
	}
	fmt.Fprintf(opts.Streams.Out, "target %s: %s\n\n", target.Name, target.Summary)
	if err := writeNotedTable(opts.Streams.Out, notedTable{header: []string{"GATE", "LIMIT", "BROKEN LIMIT IS", "CHECKS"}, rows: rows, key: []int{0}}); err != nil {
		return err
	}
	writeBlind(opts.Streams.Out, target)
	fmt.Fprintln(opts.Streams.Out, "\nOverride limits per gate in the plan file's soak.gates block (min, max, factor, slack, query, disabled);\n'-o json' shows each gate's PromQL template.")
	return nil
}
