package rollout

import (
	"os"
	"strings"
	"testing"
)

// A journal edited by hand is refused by every command with exit 3, and
// nothing runs on a replica.
func TestE2EBadJournalExit3(t *testing.T) {
	r := newRig(t, rigOptions{noProm: true})
	ctx := t.Context()
	journal := `{"version": 1, "events": [
  {"id": 1, "time": "2026-01-01T00:00:00Z", "step": "enable", "phase": "started", "replicas": ["n1", "n1"]}
]}
`
	if err := os.WriteFile(r.statePath(), []byte(journal), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"status"}, {"advance"}, {"advance", "--dry-run"}, {"rollback", "--all"}} {
		res := r.lanectl(ctx, args...)
		if res.code != 3 || !strings.Contains(res.stderr, r.statePath()+":2: event 1: replica \"n1\" twice in one event") {
			t.Errorf("lanectl %v: %v\nwant exit 3 naming the journal line and the repeated replica", args, res)
		}
		if strings.Contains(res.stdout, "over ssh") {
			t.Errorf("lanectl %v ran a command despite the refused journal:\n%v", args, res)
		}
	}
	if got, _ := os.ReadFile(r.statePath()); string(got) != journal {
		t.Errorf("journal changed:\n%s", got)
	}
	r.requireFlags(ctx, false, false, false)
}
