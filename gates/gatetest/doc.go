// Package gatetest runs unit tests for soak gates, in the manner of
// promtool test rules: synthetic input series in promtool's expanding
// notation ("0+1x100", "_" for a missing sample), a window, canary and
// baseline replicas, and the verdict (and optionally the value) expected
// of each gate and replica. The series are loaded with Prometheus' own
// promqltest loader and the gates evaluated with its engine
// (query.Engine), exactly as a soak evaluates them.
//
// A test file:
//
//	target: lanectl              # whose gate set: a built-in target
//	gates:                       # as a plan's soak.gates, for every test
//	  heartbeat_drops: {max: 2}
//	input_series:                # shared by every test
//	  - series: 'elastickv_raft_dispatcher_lanes_enabled{node_id="n2"}'
//	    values: '1x180'
//	tests:
//	  - name: heartbeat drops on the canary fail
//	    interval: 1m             # between samples; default 1m
//	    input_series:            # added to, or replacing, the shared ones
//	      - series: 'elastickv_raft_dispatch_dropped_total{node_id="n2", lane="heartbeat"}'
//	        values: '0+1x180'
//	    window: {start: 1h, end: 3h}   # from the first sample (time 0)
//	    now: 3h                  # evaluation clock; default window end
//	    canary: [n2]
//	    baseline: [n1, n3]
//	    expect_sync_mode: sync
//	    gates: {}                # on top of the file's
//	    external:                # values of gates decided outside PromQL
//	      flag: {n2: 1, n1: 0, n3: 0}
//	    expect:
//	      verdict: fail          # the soak's; optional
//	      gates:
//	        heartbeat_drops:
//	          verdict: fail
//	          reason: 'heartbeat-lane drops'   # a substring; optional
//	          values:
//	            n2: {verdict: fail, value: 120}
//	            n1: {missing: true}
//
// Only the gates, replicas and fields a test names are checked. Values
// match within one part in a million.
//
// Rules the package keeps:
//
//  1. A file that does not load, a series that does not parse, an expected
//     gate or replica the test does not have, or a request Evaluate
//     rejects is a bad file (ErrBadFile, with file:line), never a failed
//     or passed test.
//  2. It evaluates with Prometheus' engine over Prometheus' loader; it
//     never parses PromQL or series notation itself.
//  3. It knows no target: the caller resolves the target: key.
package gatetest
