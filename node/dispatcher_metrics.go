package node

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lanectl/lanectl/lanes"
)

// Metric names shared with elastickv, so dashboards and gates work against
// either.
const (
	MetricDispatchDropped   = "elastickv_raft_dispatch_dropped_total"
	MetricDispatchErrors    = "elastickv_raft_dispatch_errors_total"
	MetricDispatchSent      = "elastickv_raft_dispatch_sent_total"
	MetricDispatchDepth     = "elastickv_raft_dispatch_queue_depth"
	MetricDispatchWait      = "elastickv_raft_dispatch_queue_wait_seconds"
	MetricLanesEnabled      = "elastickv_raft_dispatcher_lanes_enabled"
	labelLane               = "lane"
	labelPeer               = "peer"
	queueWaitBucketsMinimum = 50e-6
	queueWaitBucketsMaximum = 60
	queueWaitBucketsCount   = 22
)

type dispatchMetrics struct {
	dropped *prometheus.CounterVec
	errors  *prometheus.CounterVec
	sent    *prometheus.CounterVec
	depth   *prometheus.GaugeVec
	wait    *prometheus.HistogramVec
	enabled prometheus.Gauge
}

func newDispatchMetrics(reg prometheus.Registerer, mode lanes.Mode) (*dispatchMetrics, error) {
	m := &dispatchMetrics{
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricDispatchDropped,
			Help: "Raft messages dropped before the transport: lane full, unknown or removed peer.",
		}, []string{labelLane, labelPeer}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricDispatchErrors,
			Help: "Raft messages the transport failed to send.",
		}, []string{labelLane, labelPeer}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricDispatchSent,
			Help: "Raft messages handed to the transport successfully.",
		}, []string{labelLane, labelPeer}),
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricDispatchDepth,
			Help: "Raft messages waiting in the lane.",
		}, []string{labelLane, labelPeer}),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricDispatchWait,
			Help:    "Time from enqueue to the start of the transport send, by lane.",
			Buckets: prometheus.ExponentialBucketsRange(queueWaitBucketsMinimum, queueWaitBucketsMaximum, queueWaitBucketsCount),
		}, []string{labelLane}),
		enabled: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricLanesEnabled,
			Help: "1 when the four-lane dispatcher layout is active, else 0.",
		}),
	}
	for _, c := range []prometheus.Collector{m.dropped, m.errors, m.sent, m.depth, m.wait, m.enabled} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register dispatcher metrics: %w", err)
		}
	}
	if mode == lanes.ModeFourLane {
		m.enabled.Set(1)
	}
	// Pre-create the histogram rows so a quiet lane shows up as zero rather
	// than as a missing series.
	for _, l := range mode.Lanes() {
		m.wait.WithLabelValues(l.String())
	}
	return m, nil
}
