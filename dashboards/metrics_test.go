package dashboards

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/lanectl/lanectl/targets"
)

// metricSet is the set of metric names a query may read.
type metricSet map[string]bool

// addFamily adds a metric family as Prometheus exposes it: a histogram or
// summary family X is read as X_bucket, X_sum and X_count.
func (s metricSet) addFamily(name, typ string) {
	switch typ {
	case "histogram", "gauge_histogram":
		s[name+"_bucket"], s[name+"_sum"], s[name+"_count"] = true, true, true
	case "summary":
		s[name], s[name+"_sum"], s[name+"_count"] = true, true, true
	default:
		s[name] = true
	}
}

// check returns an error naming every metric a query reads that is not in
// s, is not Prometheus' own up, and (when allowProcess, for a target whose
// replicas run a process collector) is not a process_* metric.
func (s metricSet) check(q query, vars map[string]string, allowProcess bool) error {
	expr, err := substitute(q.expr, vars)
	if err != nil {
		return fmt.Errorf("%s: %w", q.where, err)
	}
	e, err := newParser().ParseExpr(expr)
	if err != nil {
		return fmt.Errorf("%s: parse %q: %w", q.where, expr, err)
	}
	names, err := metricNames(e)
	if err != nil {
		return fmt.Errorf("%s: %w", q.where, err)
	}
	var unknown []string
	for _, n := range names {
		if !s[n] && n != "up" && !(allowProcess && strings.HasPrefix(n, "process_")) {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("%s: metric(s) %v are not exported by the replicas nor recorded by a rule", q.where, unknown)
	}
	return nil
}

func (s metricSet) sorted() []string {
	names := make([]string, 0, len(s))
	for n := range s {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// TestMetricSetCheck shows the name check catches the bug it exists for: a
// dashboard panel reading a metric nobody exports.
func TestMetricSetCheck(t *testing.T) {
	dropped, wait := targets.LanectlDropped, targets.LanectlQueueWait
	// A misspelt real name, the mistake the check exists for.
	typo := strings.Replace(dropped, "dropped", "drops", 1)
	const recorded = "node_id_lane:dropped:rate5m"
	s := metricSet{}
	s.addFamily(dropped, "counter")
	s.addFamily(wait, "histogram")
	s[recorded] = true
	tests := []struct {
		expr      string
		wantErr   string
		noProcess bool
	}{
		{expr: fmt.Sprintf(`sum(rate(%s{job=~"$job"}[$__rate_interval]))`, dropped)},
		{expr: fmt.Sprintf(`histogram_quantile(0.99, sum by (le) (rate(%s_bucket[5m])))`, wait)},
		{expr: recorded + ` > 0`},
		{expr: `up == 0 or process_resident_memory_bytes > 1e9`},
		{expr: `process_resident_memory_bytes > 1e9`, noProcess: true, wantErr: "[process_resident_memory_bytes] are not exported"},
		{expr: fmt.Sprintf(`{__name__=%q}`, dropped)},
		{expr: fmt.Sprintf(`rate(%s[5m])`, typo), wantErr: "[" + typo + "] are not exported"},
		{expr: wait, wantErr: "[" + wait + "] are not exported"},
		{expr: `{__name__=~"elastickv_.+"}`, wantErr: "no fixed metric name"},
		{expr: fmt.Sprintf(`rate(%s[5m]`, dropped), wantErr: "parse"},
	}
	vars := staticVars()
	for _, tt := range tests {
		err := s.check(query{where: "test", expr: tt.expr}, vars, !tt.noProcess)
		if tt.wantErr == "" && err != nil {
			t.Errorf("check(%q): got %v, want no error", tt.expr, err)
		}
		if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("check(%q): got %v, want an error containing %q", tt.expr, err, tt.wantErr)
		}
	}
}
