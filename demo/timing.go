package demo

import (
	"errors"
	"fmt"
	"time"
)

// Limits and default of Config.Duration.
const (
	DefaultDuration = 2 * time.Minute
	// MinDuration leaves each of the three soaks about 5s: at a 500ms
	// coverage step that is ten samples per replica, enough for the
	// coverage gate's 90% to mean something.
	MinDuration = 20 * time.Second
	// MaxDuration: a demo longer than a day is a typo.
	MaxDuration = 24 * time.Hour
)

// ErrDuration is returned by TimingFor (and Run) when the duration is
// outside [MinDuration, MaxDuration].
var ErrDuration = errors.New("bad demo duration")

// Timing is how a demo of a given duration spends it. The duration is the
// measured part: the legacy baseline plus the three soaks; starting the
// cluster and each restart add a few seconds.
type Timing struct {
	Duration time.Duration
	// Baseline is how long every replica is measured on the legacy layout,
	// under load, before the first enable: the "before" of the summary.
	Baseline time.Duration
	// Soak is each replica's soak window (the plan's soak.window).
	Soak time.Duration
	// Step is the gates' coverage resolution (the plan's soak.interval).
	Step time.Duration
	// Scrape is the embedded store's scrape interval: half a Step, so one
	// late scrape never leaves a Step without a sample.
	Scrape time.Duration
	// SnapshotEvery is how often a snapshot transfer is forced (one at a
	// time: a transfer still in flight delays the next), at least twice per
	// soak.
	SnapshotEvery time.Duration
	// Progress is how often an open soak is evaluated for display.
	Progress time.Duration
}

// TimingFor splits d: a sixth for the legacy baseline, the rest in three
// equal soaks.
func TimingFor(d time.Duration) (Timing, error) {
	switch {
	case d < MinDuration:
		return Timing{}, fmt.Errorf("%w: %v is too short to soak: the demo needs at least %v (a legacy baseline and three soaks of about 5s, each with enough scrapes for the coverage gate)", ErrDuration, d, MinDuration)
	case d > MaxDuration:
		return Timing{}, fmt.Errorf("%w: %v is longer than %v", ErrDuration, d, MaxDuration)
	}
	t := Timing{Duration: d, Baseline: (d / 6).Round(100 * time.Millisecond)}
	t.Soak = ((d - t.Baseline) / replicas).Round(100 * time.Millisecond)
	t.Step = min(max((t.Soak/16).Round(100*time.Millisecond), 500*time.Millisecond), time.Minute)
	t.Scrape = t.Step / 2
	t.SnapshotEvery = min(max(t.Soak/8, 3*time.Second), 5*time.Minute)
	t.Progress = max(time.Second, t.Soak/10)
	return t, nil
}
