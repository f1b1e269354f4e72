package node

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lanectl/lanectl/lanes"
)

// MetricFSMApplySyncMode is the sync-mode gauge's name, shared with
// elastickv.
const MetricFSMApplySyncMode = "elastickv_fsm_apply_sync_mode"

const labelMode = "mode"

// NewSyncModeGauge registers elastickv_fsm_apply_sync_mode{mode} with the row
// of the active mode at 1 and the other at 0, so a query for either value
// always finds a series.
func NewSyncModeGauge(reg prometheus.Registerer, mode lanes.SyncMode) error {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricFSMApplySyncMode,
		Help: "FSM apply sync mode: the row whose mode label is active is 1, the other 0.",
	}, []string{labelMode})
	if err := reg.Register(g); err != nil {
		return fmt.Errorf("register sync mode gauge: %w", err)
	}
	for _, m := range []lanes.SyncMode{lanes.SyncModeSync, lanes.SyncModeNoSync} {
		v := 0.0
		if m == mode {
			v = 1
		}
		g.WithLabelValues(m.String()).Set(v)
	}
	return nil
}
