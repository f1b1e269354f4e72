package gates

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"
)

// maxTimedEvents is how many events of one replica a reason times.
const maxTimedEvents = 3

// timeEvents adds to the reason of each replica that broke an events
// gate's limit when its events happened. The gate counts events in
// (start, t] for any t, a count that only grows with t, so the k-th event
// is found by bisecting t between the window's start and end until the
// interval holding it is at most one Step wide. Each probe is the gate's own query
// over the shorter window, one query for all replicas.
func timeEvents(ctx context.Context, q Querier, gr *GateResult, g Spec, rs replicaSet, data templateData, w Window, l, eff layout) error {
	countAt := func(replica string, t time.Time) (float64, error) {
		d := newTemplateData(t.Sub(w.Start), data.step, data.ExpectSyncMode, data.PresenceMetric)
		qs, err := rs.queries(g, d, l)
		if err != nil {
			return 0, fmt.Errorf("gate %q: %w", g.Name, err)
		}
		values, _, err := gateValues(ctx, q, g, rs, qs, t, eff)
		if err != nil {
			return 0, err
		}
		v, ok := values[replica]
		if !ok || math.IsNaN(v) {
			// No samples in a short window: no events in it either.
			return 0, nil
		}
		return math.Round(v), nil
	}
	for i, rv := range gr.Values {
		if rv.Missing || rv.Verdict == Pass || rv.Verdict == "" || !(rv.Value >= 1) || math.IsInf(rv.Value, 1) {
			continue
		}
		n := min(int(rv.Value), maxTimedEvents)
		var at []string
		lo := w.Start
		for k := 1; k <= n; k++ {
			// Invariant: fewer than k events in (start, lo], at least k in
			// (start, hi].
			hi := w.End
			for hi.Sub(lo) > data.step {
				// Probes stay on the Step grid from the window's start,
				// so reasons name whole Steps.
				n := int64(hi.Sub(lo) / data.step)
				mid := lo.Add(time.Duration(max(n/2, 1)) * data.step)
				c, err := countAt(rv.Replica, mid)
				if err != nil {
					return err
				}
				if c >= float64(k) {
					hi = mid
				} else {
					lo = mid
				}
			}
			at = append(at, fmt.Sprintf("between %s and %s", lo.UTC().Format(time.RFC3339), hi.UTC().Format(time.RFC3339)))
		}
		more := ""
		if int(rv.Value) > n {
			more = fmt.Sprintf(", and %d more", int(rv.Value)-n)
		}
		timed := fmt.Sprintf("%s; %s seen %s%s", rv.Reason, g.What, strings.Join(at, ", "), more)
		gr.Reason = strings.Replace(gr.Reason, rv.Reason, timed, 1)
		gr.Values[i].Reason = timed
	}
	return nil
}
