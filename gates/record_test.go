package gates_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/lanectl/lanectl/gates"
	"github.com/lanectl/lanectl/targets"
)

// TestRecordJudge records a failing soak and decides it again offline:
// with the same gates the verdict is the same; with a looser limit the
// failing gate passes; a gate whose query changed cannot be judged from
// the recording and is inconclusive.
func TestRecordJudge(t *testing.T) {
	s := cluster()
	// n2 drops 3 heartbeats in the window.
	s.set("n2", "elastickv_raft_dispatch_dropped_total", `lane="heartbeat", peer="9"`, "0x100 1x20 2x20 3x40")
	e := engineOver(t, s)
	req := gates.Request{
		PresenceMetric: targets.LanectlLanesEnabled,
		Canaries:       replicaTargets("n2"), Baselines: replicaTargets("n1", "n3"),
		Window: gates.Window{Start: at(60), End: at(180)}, Now: at(180),
	}
	set := targets.Lanectl().Gates()
	res, err := gates.Evaluate(context.Background(), e, set, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != gates.Fail {
		t.Fatalf("recorded soak: got %s (%s), want fail", res.Verdict, res.Reason)
	}
	data, err := json.Marshal(gates.NewRecord("lanectl", set, req, res, at(181)))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := gates.ReadRecord(data)
	if err != nil {
		t.Fatalf("ReadRecord: %v", err)
	}

	same, err := rec.Judge(set)
	if err != nil {
		t.Fatal(err)
	}
	if same.Verdict != res.Verdict || same.Reason != res.Reason {
		t.Errorf("same gates: got %s (%s), want %s (%s)", same.Verdict, same.Reason, res.Verdict, res.Reason)
	}
	if ch := gates.Changes(res, same); len(ch) != 0 {
		t.Errorf("same gates: got changes %+v, want none", ch)
	}

	five := 5.0
	looser, err := set.With(gates.Overrides{"heartbeat_drops": {Max: &five}})
	if err != nil {
		t.Fatal(err)
	}
	relaxed, err := rec.Judge(looser)
	if err != nil {
		t.Fatal(err)
	}
	if relaxed.Verdict != gates.Pass {
		t.Errorf("heartbeat_drops max 5: got %s (%s), want pass", relaxed.Verdict, relaxed.Reason)
	}
	ch := gates.Changes(res, relaxed)
	if len(ch) != 1 || ch[0].Gate != "heartbeat_drops" || ch[0].Before != gates.Fail || ch[0].After != gates.Pass {
		t.Errorf("heartbeat_drops max 5: got changes %+v, want heartbeat_drops fail -> pass", ch)
	}

	q := `max by ({{.By}}) (max_over_time(elastickv_raft_last_contact_seconds{{sel}}[{{.Window}}])) * 2`
	changed, err := looser.With(gates.Overrides{"last_contact": {Query: &q}})
	if err != nil {
		t.Fatal(err)
	}
	redone, err := rec.Judge(changed)
	if err != nil {
		t.Fatal(err)
	}
	if redone.Verdict != gates.Inconclusive || !strings.Contains(redone.Reason, "last_contact: its query changed since the recording") {
		t.Errorf("changed query: got %s (%s), want inconclusive naming last_contact", redone.Verdict, redone.Reason)
	}
}

func TestReadRecordRejects(t *testing.T) {
	tests := []struct{ name, data, want string }{
		{"not JSON", `{`, "not JSON"},
		{"not a record", `{"verdict": "pass"}`, "not a file written by 'lanectl soak --record'"},
		{"another format", `{"lanectl_soak_record": 7}`, "format 7, this lanectl reads format 1"},
		{"unknown replica", `{"lanectl_soak_record": 1, "window": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"},
			"canaries": [{"Name": "n2", "Selector": "node_id=\"n2\""}],
			"gates": [{"name": "flag", "values": [{"replica": "n9", "value": "1"}]}]}`, `value for "n9"`},
		{"value not a number", `{"lanectl_soak_record": 1, "window": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"},
			"canaries": [{"Name": "n2", "Selector": "node_id=\"n2\""}],
			"gates": [{"name": "flag", "values": [{"replica": "n2", "value": "lots"}]}]}`, `value "lots" is not a number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := gates.ReadRecord([]byte(tt.data))
			if !errors.Is(err, gates.ErrBadRecord) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want ErrBadRecord containing %q", err, tt.want)
			}
		})
	}
}

// TestJudgeKeepsWarnings: a recorded answer that came with warnings
// (partial data) is no more a pass when judged again than it was.
func TestJudgeKeepsWarnings(t *testing.T) {
	rec := gates.Record{
		Format:    gates.RecordFormat,
		Window:    gates.Window{Start: at(0), End: at(60)},
		Requested: gates.Window{Start: at(0), End: at(60)},
		Complete:  true,
		Canaries:  replicaTargets("n2"),
		Baselines: replicaTargets("n1"),
	}
	set := targets.Lanectl().Gates()
	for _, g := range set {
		rg := gates.RecordedGate{Name: g.Name, Template: g.Query, Values: []gates.RecordedValue{{Replica: "n2", Value: "1"}, {Replica: "n1", Value: "1"}}}
		if g.Name == "last_contact" {
			rg.Values = []gates.RecordedValue{{Replica: "n2", Value: "0.2"}, {Replica: "n1", Value: "0.2"}}
			rg.Warnings = []string{"remote read of one shard failed"}
		}
		rec.Gates = append(rec.Gates, rg)
	}
	got, err := rec.Judge(set)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range got.Gates {
		if g.Name == "last_contact" && (g.Verdict != gates.Inconclusive || !strings.Contains(g.Reason, "remote read of one shard failed")) {
			t.Errorf("last_contact: got %s (%s), want inconclusive with the warning", g.Verdict, g.Reason)
		}
	}
}
