package query_test

import (
	"testing"

	"github.com/lanectl/lanectl/query"
)

func TestSelector(t *testing.T) {
	for _, tc := range []struct {
		replica string
		extra   []string
		want    string
	}{
		{`node_id="n1"`, nil, `{node_id="n1"}`},
		{`node_id="n1"`, []string{` lane="heartbeat" `}, `{lane="heartbeat", node_id="n1"}`},
		{`node_id="n1"`, []string{"", `a="1"`, "  ", `b="2"`}, `{a="1", b="2", node_id="n1"}`},
		{"", []string{`state="x"`}, `{state="x"}`},
		{"", nil, `{}`},
	} {
		if got := query.Selector(tc.replica, tc.extra...); got != tc.want {
			t.Errorf("Selector(%q, %q) = %s, want %s", tc.replica, tc.extra, got, tc.want)
		}
	}
}
