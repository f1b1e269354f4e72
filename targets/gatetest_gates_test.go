package targets_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lanectl/lanectl/gates/gatetest"
	"github.com/lanectl/lanectl/targets"
)

// TestBuiltinGateFiles runs the gates test files of both built-in targets
// (testdata/gates/*.yml, the same files 'lanectl gates test' runs), so CI
// holds every gate to its written behaviour.
func TestBuiltinGateFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/gates/*.yml")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, err := gatetest.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			seen[f.Target] = true
			rs, err := gatetest.Run(context.Background(), f, resolveTarget)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				if !r.Passed() {
					var b strings.Builder
					gatetest.Report(&b, []gatetest.Result{r})
					t.Error(b.String())
				}
			}
			covered := map[string]bool{}
			for _, tc := range f.Tests {
				for g := range tc.Expect.Gates {
					covered[g] = true
				}
			}
			tg, err := targets.Lookup(f.Target)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range tg.Gates().Names() {
				if !covered[g] {
					t.Errorf("gate %s of target %s has no test in %s", g, f.Target, path)
				}
			}
		})
	}
	for _, n := range targets.Names() {
		if !seen[n] {
			t.Errorf("target %s has no gates test file in testdata/gates", n)
		}
	}
}

func resolveTarget(name string) (gatetest.Target, error) {
	t, err := targets.Lookup(name)
	if err != nil {
		return gatetest.Target{}, err
	}
	return gatetest.Target{Gates: t.Gates(), PresenceMetric: t.PresenceMetric, ReplicaLabel: t.ReplicaLabel}, nil
}
