package main

import (
	"path/filepath"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/lanectl/lanectl/internal/testport"
	"github.com/lanectl/lanectl/query/promtest"
)

// soakHistoryStart is where the scripts' backfilled history begins: a fixed
// date, so tables and JSON compare exactly. Samples sit 7s past the minute
// so none lies on a window edge.
var soakHistoryStart = time.Date(2026, 1, 10, 0, 0, 7, 0, time.UTC)

// soakScriptCmds are the commands soak*.txtar scripts use.
func soakScriptCmds() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	return map[string]func(ts *testscript.TestScript, neg bool, args []string){
		// promhistory backfills 25h of history (2026-01-10T00:00:07Z on,
		// one sample a minute) into a real Prometheus and starts it; $PROM
		// is its URL. n1 and n3 never get the flag; n2, n4, n5 get it at
		// 00:50 (restarting): n2 behaves, n4 drops 4 heartbeats inside
		// 2026-01-10T01:00Z .. +24h, n5 drops 5% of its replication
		// messages against the baselines' 1%.
		"promhistory": func(ts *testscript.TestScript, neg bool, args []string) {
			if neg || len(args) != 0 {
				ts.Fatalf("usage: promhistory")
			}
			const steps = 25 * 60
			flagOn := 50
			rs := []promtest.ReplicaHistory{
				{Name: "n1", FlagOn: -1, DropEvery: 100},
				{Name: "n2", FlagOn: flagOn, DropEvery: 120},
				{Name: "n3", FlagOn: -1, DropEvery: 100},
				{Name: "n4", FlagOn: flagOn, DropEvery: 120, HeartbeatDrops: []int{300, 700, 700, 1400}},
				{Name: "n5", FlagOn: flagOn, DropEvery: 20},
			}
			hist := ts.MkAbs("history.om")
			ts.Check(promtest.WriteHistory(hist, soakHistoryStart, time.Minute, steps, rs))
			srv, stop, err := promtest.Launch(filepath.Join(ts.Getenv("WORK"), "prometheus"), promtest.Options{Backfill: hist})
			ts.Check(err)
			ts.Defer(stop)
			ts.Setenv("PROM", srv.URL)
		},
		// deadurl sets $DEAD to a loopback URL nothing listens on: a port
		// reserved for the script and never bound.
		"deadurl": func(ts *testscript.TestScript, neg bool, args []string) {
			p, err := testport.Reserve()
			ts.Check(err)
			ts.Defer(func() { _ = p.Release() })
			ts.Setenv("DEAD", "http://"+p.Addr())
		},
	}
}
