package rollout

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/lanectl/lanectl/gates"
)

// Journal flag states shown by Status.
const (
	FlagOn        = "on"
	FlagOff       = "off"
	FlagEnabling  = "enabling (interrupted)"
	FlagDisabling = "disabling (interrupted)"
)

// ReplicaStatus is one row of 'lanectl status'.
type ReplicaStatus struct {
	Name  string
	Stage string
	// Journal is the flag state the journal records: FlagOn, FlagOff,
	// FlagEnabling or FlagDisabling.
	Journal string
	// Seen is the flag as its proof shows it on the replica (its metrics
	// or the read command): "on", "off", "other (VALUE)" or "unknown".
	Seen string
	// Mismatch is true when the journal and the replica disagree.
	Mismatch bool
	Probe    Probe
	// EnabledAt is when the flag was verified on; zero when off.
	EnabledAt time.Time
	// Soak is the soak window of an enabled replica.
	Soak *SoakProgress
	// LastSoak is the latest recorded verdict naming the replica.
	LastSoak *Event
	// Drops are dropped messages over DropsWindow by DropsBy, the
	// target's breakdown label (lane, or group for elastickv); nil with
	// DropsErr set when they could not be read.
	Drops       map[string]float64
	DropsBy     string
	DropsWindow gates.Window
	DropsErr    error
}

// SoakProgress is how far a soak window has run.
type SoakProgress struct {
	Window    gates.Window
	Elapsed   time.Duration
	Remaining time.Duration
	// Fraction is Elapsed over the window length, capped at 1.
	Fraction float64
}

// StatusReport is the whole rollout at one instant.
type StatusReport struct {
	At       time.Time
	Replicas []ReplicaStatus
	// Pending are interrupted steps that the next advance will finish.
	Pending []Event
	// Next is the batch the next advance would enable.
	Next []string
}

// Status reads the journal and asks every replica and the metrics source
// for its view. It takes no lock and changes nothing: the journal is only
// ever replaced whole, so reading it is always consistent.
func (d *Driver) Status(ctx context.Context) (*StatusReport, error) {
	st, err := LoadJournal(d.Plan, d.Now())
	if err != nil {
		return nil, err
	}
	now := d.Now()
	rep := &StatusReport{At: now, Pending: st.Pending(), Next: names(d.nextBatch(st))}
	interrupted := map[string]string{}
	for _, p := range rep.Pending {
		for _, n := range p.Replicas {
			interrupted[n] = map[string]string{StepEnable: FlagEnabling, StepDisable: FlagDisabling}[p.Step]
		}
	}
	// One scrape of every replica serves every row.
	probes := d.Prober.probeAll(ctx, d.Plan.Order(), now)
	for _, r := range d.Plan.Order() {
		rs := st.Replica(r.Name)
		row := ReplicaStatus{Name: r.Name, Stage: r.Stage, Journal: FlagOff, LastSoak: rs.LastSoak}
		if rs.Enabled {
			row.Journal, row.EnabledAt = FlagOn, rs.EnabledAt
			w := gates.Window{Start: rs.EnabledAt, End: rs.EnabledAt.Add(d.Plan.Soak.Window)}
			elapsed := min(now.Sub(w.Start), w.Duration())
			row.Soak = &SoakProgress{Window: w, Elapsed: elapsed, Remaining: w.Duration() - elapsed, Fraction: math.Min(1, float64(elapsed)/float64(w.Duration()))}
		}
		if s, ok := interrupted[r.Name]; ok {
			row.Journal = s
		}
		row.Probe = probes[r.Name]
		row.Seen = "unknown"
		switch f := row.Probe.Flag; {
		case f.Is(true):
			row.Seen = FlagOn
		case f.Is(false):
			row.Seen = FlagOff
		case f.Known:
			row.Seen = fmt.Sprintf("other (%q)", f.Running)
		}
		if row.Seen != "unknown" {
			row.Mismatch = (row.Journal == FlagOn || row.Journal == FlagOff) && row.Seen != row.Journal
		}
		row.DropsWindow = gates.Window{Start: now.Add(-d.Plan.Soak.Window), End: now}
		if row.Soak != nil {
			row.DropsWindow = gates.Window{Start: row.Soak.Window.Start, End: row.Soak.Window.Start.Add(row.Soak.Elapsed)}
		}
		row.DropsBy = d.Plan.Target.Drops.Label
		row.Drops, row.DropsErr = d.drops(ctx, r, row.DropsWindow)
		rep.Replicas = append(rep.Replicas, row)
	}
	return rep, nil
}

// drops sums dropped messages by the target's breakdown label over w. A counter series that appears
// inside the window counts from zero, as the gates count it.
func (d *Driver) drops(ctx context.Context, r Replica, w gates.Window) (map[string]float64, error) {
	if d.Querier == nil {
		return nil, fmt.Errorf("no metrics source")
	}
	rng := w.Duration().Round(time.Second)
	if rng < time.Second {
		return map[string]float64{}, nil
	}
	by := d.Plan.Target.Drops.Label
	metric := d.Plan.Target.Drops.Metric + "{" + r.Selector + "}"
	// Series are told apart by every label but the value's, so a series
	// born in the window counts from zero whichever labels the target has.
	expr := fmt.Sprintf(`sum by (%[3]s) (
  (last_over_time(%[1]s[%[2]ds]) unless last_over_time(%[1]s[%[2]ds] offset %[2]ds))
  or increase(%[1]s[%[2]ds])
)`, metric, int64(rng.Seconds()), by)
	vec, _, err := d.Querier.Query(ctx, expr, w.End)
	if err != nil {
		return nil, fmt.Errorf("drops of %s: %w", r.Name, err)
	}
	out := map[string]float64{}
	for _, s := range vec {
		if !math.IsNaN(s.Value) {
			out[s.Labels[by]] += s.Value
		}
	}
	return out, nil
}

// Lanes returns the lanes of a drops map in a stable order: the four-lane
// layout's, then the legacy lane, then anything else.
func Lanes(drops map[string]float64) []string {
	order := []string{"heartbeat", "replication", "snapshot", "other", "normal"}
	var out []string
	for _, l := range order {
		if _, ok := drops[l]; ok {
			out = append(out, l)
		}
	}
	var rest []string
	for l := range drops {
		if !slices.Contains(order, l) {
			rest = append(rest, l)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}
