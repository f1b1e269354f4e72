package rollout

import (
	"slices"
	"testing"
	"time"

	"github.com/lanectl/lanectl/gates"
)

// soak --config and advance ask the same question of the last fleet batch
// and must get the same answer: no baselines, so only absolute limits.
func TestDecideSoakSameForSoakAndAdvance(t *testing.T) {
	p := testPlan(t)
	d := &Driver{Plan: p, Now: func() time.Time { return at(100) }}
	st := enabled(t, p, []string{"s1"}, []string{"c1"}, []string{"f1", "f2"}, []string{"f3"})
	set, req, noBaseline, err := d.SoakRequest(st, []string{"f3"}, at(31))
	if err != nil {
		t.Fatal(err)
	}
	// What 'lanectl soak --config plan --canary f3' asks: no start, no
	// window, no baselines.
	cli, err := p.DecideSoak(st, SoakQuestion{Canaries: []string{"f3"}}, at(100))
	if err != nil {
		t.Fatal(err)
	}
	if !noBaseline || !cli.NoBaseline {
		t.Errorf("noBaseline: advance %v, soak %v; want both true", noBaseline, cli.NoBaseline)
	}
	if !cli.Request.Window.Start.Equal(req.Window.Start) || !cli.Request.Window.End.Equal(req.Window.End) {
		t.Errorf("window: soak %v, advance %v", cli.Request.Window, req.Window)
	}
	if !slices.EqualFunc(set, cli.Set, func(a, b gates.Spec) bool {
		return a.Name == b.Name && a.Disabled == b.Disabled && (a.Factor == nil) == (b.Factor == nil)
	}) {
		t.Errorf("gate sets differ:\nadvance %+v\nsoak    %+v", set, cli.Set)
	}
	for _, g := range cli.Set {
		if g.Factor != nil {
			t.Errorf("soak keeps the relative limit of %s with no baseline", g.Name)
		}
	}
}
