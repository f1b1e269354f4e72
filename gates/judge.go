package gates

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// judge fills gr's values, per-replica verdicts, gate verdict and reason.
func judge(gr *GateResult, g Spec, rs []replica, values map[string]float64, window time.Duration) {
	hasBaselines := false
	worstBase, worstBaseName := math.Inf(-1), ""
	for _, r := range rs {
		if r.role != roleBaseline {
			continue
		}
		hasBaselines = true
		if v, ok := values[r.name]; ok && !math.IsNaN(v) && v > worstBase {
			worstBase, worstBaseName = v, r.name
		}
	}

	gr.Verdict = Pass
	var worst, passes []string
	for _, r := range rs {
		v, ok := values[r.name]
		if g.Kind == KindCount {
			// Events are whole numbers; increase() extrapolates to the window's
			// edges and returns 7.06 for 7. It never returns less than the
			// growth between the samples it saw, so rounding cannot hide one.
			v = math.Round(v)
		}
		rv := ReplicaValue{Replica: r.name, Role: string(r.role), Value: v, Missing: !ok}
		if !ok {
			rv.Value = math.NaN()
		}
		judged := false
		who := string(r.role) + " " + r.name
		verdict, reason := Pass, ""
		note := func(vd Verdict, why string) {
			judged = true
			if vd.rank() > verdict.rank() || reason == "" {
				verdict, reason = vd, why
			}
		}

		absMin, absMax := g.Min, g.Max
		if r.role == roleBaseline {
			absMin, absMax = g.BaselineMin, g.BaselineMax
			if g.Scope == ScopeAll {
				absMin, absMax = pick(g.BaselineMin, g.Min), pick(g.BaselineMax, g.Max)
			}
		}
		relative := r.role == roleCanary && g.Factor != nil
		if absMin == nil && absMax == nil && !relative {
			// Shown for comparison, not judged.
			if !ok || math.IsNaN(v) {
				rv.Reason = "no data"
			}
			gr.Values = append(gr.Values, rv)
			continue
		}
		switch {
		case !ok:
			note(Inconclusive, fmt.Sprintf("%s: no data for %s in the last %s", who, g.What, humanDuration(window)))
		case math.IsNaN(v):
			note(Inconclusive, fmt.Sprintf("%s: %s is NaN over %s (no samples, or 0/0)", who, g.What, humanDuration(window)))
		default:
			val := phrase(g, v, window)
			if absMax != nil {
				if v > *absMax {
					note(g.Violation, fmt.Sprintf("%s: %s, limit %s", who, val, formatLimit(g.Kind, *absMax)))
				} else {
					note(Pass, fmt.Sprintf("%s: %s, limit %s", who, val, formatLimit(g.Kind, *absMax)))
				}
			}
			if absMin != nil {
				if v < *absMin {
					note(g.Violation, fmt.Sprintf("%s: %s, need at least %s", who, val, formatLimit(g.Kind, *absMin)))
				} else {
					note(Pass, fmt.Sprintf("%s: %s, need at least %s", who, val, formatLimit(g.Kind, *absMin)))
				}
			}
			if relative {
				switch {
				case !hasBaselines:
					note(Inconclusive, fmt.Sprintf("%s: %s, but there is no baseline replica to compare with", who, val))
				case worstBaseName == "":
					note(Inconclusive, fmt.Sprintf("%s: %s, but no baseline replica has data", who, val))
				default:
					limit := worstBase**g.Factor + g.Slack
					how := fmt.Sprintf("limit %s (worst baseline %s: %s x %g", formatLimit(g.Kind, limit), worstBaseName, formatValue(g.Kind, worstBase), *g.Factor)
					if g.Slack != 0 {
						how += " + " + formatLimit(g.Kind, g.Slack)
					}
					how += ")"
					if v > limit {
						note(g.Violation, fmt.Sprintf("%s: %s, %s", who, val, how))
					} else {
						note(Pass, fmt.Sprintf("%s: %s, %s", who, val, how))
					}
				}
			}
		}
		if judged {
			rv.Verdict, rv.Reason = verdict, reason
			switch {
			case verdict.rank() > gr.Verdict.rank():
				gr.Verdict, worst = verdict, []string{reason}
			case verdict != Pass && verdict == gr.Verdict:
				worst = append(worst, reason)
			case verdict == Pass && r.role == roleCanary:
				passes = append(passes, reason)
			}
		}
		gr.Values = append(gr.Values, rv)
	}
	switch {
	case gr.Verdict != Pass:
		gr.Reason = joinReasons(worst)
	case len(passes) > 0:
		gr.Reason = joinReasons(passes)
	default:
		gr.Reason = "every replica within limits"
	}
}

func pick(a, b *float64) *float64 {
	if a != nil {
		return a
	}
	return b
}

// joinReasons keeps a reason to one readable line when many replicas agree.
func joinReasons(rs []string) string {
	const maxShown = 3
	if len(rs) <= maxShown {
		return strings.Join(rs, "; ")
	}
	return strings.Join(rs[:maxShown], "; ") + fmt.Sprintf("; and %d more", len(rs)-maxShown)
}

// phrase states a value in words: "14 heartbeat-lane drops in 24h".
func phrase(g Spec, v float64, window time.Duration) string {
	w := humanDuration(window)
	switch g.Kind {
	case KindCount:
		return fmt.Sprintf("%s %s in %s", formatValue(g.Kind, v), g.What, w)
	case KindFraction:
		return fmt.Sprintf("%s %s of the window (%s)", g.What, formatValue(g.Kind, v), w)
	default:
		return fmt.Sprintf("%s %s over %s", g.What, formatValue(g.Kind, v), w)
	}
}

func formatValue(k Kind, v float64) string {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	switch k {
	case KindRatio, KindFraction:
		return strconv.FormatFloat(roundSig(v*100, 4), 'f', -1, 64) + "%"
	case KindSeconds:
		return strconv.FormatFloat(roundSig(v, 4), 'f', -1, 64) + "s"
	default:
		return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
	}
}

func formatLimit(k Kind, v float64) string { return formatValue(k, v) }

// roundSig rounds to n significant digits, so 0.0012345 prints as 0.001235.
func roundSig(v float64, n int) float64 {
	if v == 0 {
		return 0
	}
	f, err := strconv.ParseFloat(strconv.FormatFloat(v, 'g', n, 64), 64)
	if err != nil {
		return v
	}
	return f
}
