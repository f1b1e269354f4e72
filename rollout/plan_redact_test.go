package rollout

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPlanErrorsHideThePassword: a plan URL that is refused is named in
// the error without its password.
func TestPlanErrorsHideThePassword(t *testing.T) {
	for _, u := range []string{"ftp://admin:s3cret@prometheus:9090", "http://admin:s3cret@prometheus:90x0"} {
		path := filepath.Join(t.TempDir(), "lanectl.yaml")
		plan := "prometheus: {url: \"" + u + "\"}\n" +
			"replicas:\n  - {name: n1, stage: s, ssh: h, http: \"" + strings.Replace(u, "prometheus", "n1", 1) + "\"}\n" +
			"stages: [{name: s}]\n"
		if err := os.WriteFile(path, []byte(plan), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadPlan(path)
		if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "prometheus.url: bad URL") {
			t.Errorf("LoadPlan with url %s: got error %v, want prometheus.url refused without the password", u, err)
		}
	}
}
