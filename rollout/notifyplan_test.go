package rollout

import (
	"path/filepath"
	"testing"
	"time"
)

func TestLoadPlanNotify(t *testing.T) {
	p, err := LoadPlan("testdata/plans/notify.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	n := p.Notify
	if n.PlanName != "prod-elastickv" || n.Timeout != 5*time.Second || n.Hold != 48*time.Hour {
		t.Errorf("notify = %+v, want plan_name prod-elastickv, timeout 5s, hold 48h", n)
	}
	if len(n.Alertmanager) != 2 || len(n.Webhook) != 1 {
		t.Fatalf("receivers: %d alertmanager, %d webhook; want 2 and 1", len(n.Alertmanager), len(n.Webhook))
	}
	if got, want := n.Alertmanager[0].URL, "http://alertmanager-1:9093"; got != want {
		t.Errorf("alertmanager[0].url = %q, want %q (trailing slash dropped)", got, want)
	}
	if got, want := n.Webhook[0].URL, "https://hooks.example/lanectl/"; got != want {
		t.Errorf("webhook[0].url = %q, want %q (as written)", got, want)
	}
	am := n.Alertmanager[1].HTTPConfig
	if am.BasicAuth == nil || am.BasicAuth.Username != "lanectl" || am.BasicAuth.PasswordFile != filepath.Join("testdata/plans", "am-password") {
		t.Errorf("alertmanager[1] basic_auth = %+v, want lanectl with the password file next to the plan", am.BasicAuth)
	}
	if got, want := am.TLSConfig.CAFile, filepath.Join("testdata/plans", "ca.pem"); got != want {
		t.Errorf("alertmanager[1] ca_file = %q, want %q", got, want)
	}
	if !am.FollowRedirects || !am.EnableHTTP2 {
		t.Errorf("alertmanager[1] http_config lost the defaults: %+v", am)
	}
	if a := n.Webhook[0].HTTPConfig.Authorization; a == nil || string(a.Credentials) != "secret" || a.Type != "Bearer" {
		t.Errorf("webhook authorization = %+v, want Bearer secret", a)
	}

	// Without a notify block: nothing to send, and the plan name comes
	// from the file name.
	p, err = LoadPlan("testdata/plans/minimal.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	if n := p.Notify; n.PlanName != "minimal.good" || n.Timeout != DefaultNotifyTimeout || n.Hold != DefaultNotifyHold || len(n.Alertmanager)+len(n.Webhook) != 0 {
		t.Errorf("default notify = %+v", n)
	}
}
