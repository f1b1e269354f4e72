package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/common/config"
	"github.com/spf13/cobra"

	"github.com/lanectl/lanectl/query"
	"github.com/lanectl/lanectl/rollout"
)

// addConfigFlag registers --config, the plan file of the rollout commands.
func addConfigFlag(cmd *cobra.Command, target *string) {
	cmd.Flags().StringVarP(target, "config", "c", rollout.DefaultPlanFile, "plan file")
	_ = cmd.MarkFlagFilename("config", "yaml", "yml")
}

// driverDeps says which of the expensive or fallible parts a command needs.
type driverDeps struct {
	// ssh builds the SSH runner, which needs a readable known_hosts.
	ssh bool
	// metrics builds the querier: a Prometheus client, or the embedded
	// store scraping the plan's targets.
	metrics bool
	// readFlag builds the SSH runner when the plan proves its flag with
	// commands.read, so the flag can be read without changing anything.
	readFlag bool
	// readOnly marks a command that only reads metrics: while another
	// lanectl (a live soak) holds the plan's embedded store, it reads the
	// store as that process has written it so far instead of refusing.
	readOnly bool
}

// newDriver loads the plan at path and builds a rollout driver for it. The
// returned close function releases the querier; call it when done.
func newDriver(ctx context.Context, streams *IOStreams, getenv Getenv, path string, deps driverDeps) (*rollout.Driver, func(), error) {
	plan, err := rollout.LoadPlan(path)
	if err != nil {
		return nil, nil, err
	}
	d := &rollout.Driver{
		Plan:   plan,
		Prober: rollout.Prober{Plan: plan},
		Now:    time.Now,
		Log:    streams.Out,
	}
	closeFn := func() {}
	if deps.ssh || (deps.readFlag && plan.Commands.Read != "") {
		home := getenv("HOME")
		if home == "" {
			return nil, nil, errors.New("HOME is not set: it is needed to find ~/.ssh")
		}
		r, err := rollout.NewSSHRunner(rollout.SSHRunnerConfig{
			SSH:            plan.SSH,
			Home:           home,
			AgentSocket:    getenv("SSH_AUTH_SOCK"),
			LocalUser:      getenv("USER"),
			CommandTimeout: plan.Commands.Timeout,
		})
		if err != nil {
			return nil, nil, err
		}
		d.Runner = r
		d.Prober.Runner = r
	}
	d.Notifier = rollout.NewNotifier(plan.Notify)
	d.Runner = d.Notifier.Runner(d.Runner)
	if deps.metrics {
		switch {
		case plan.Prometheus.URL != "":
			q, err := query.NewRemote(plan.Prometheus.URL, plan.Prometheus.HTTPConfig, query.WithQueryTimeout(plan.Prometheus.QueryTimeout))
			if err != nil {
				return nil, nil, err
			}
			d.Querier = q
			closeFn = func() { _ = q.Close() }
		default:
			// The store sits next to the journal and keeps what every
			// earlier run on this plan scraped, so a soak watched live by
			// 'lanectl soak' can be judged here; see the README.
			opts, err := planStoreOptions(plan, plan.Soak.Window, plan.Soak.Interval)
			if err != nil {
				return nil, nil, err
			}
			e, err := query.NewEmbedded(ctx, plan.Prometheus.Targets, plan.Soak.Interval, opts)
			switch {
			case errors.Is(err, query.ErrStoreBusy) && deps.readOnly:
				v, verr := query.OpenStoreReadOnly(opts.Dir, nil)
				if verr != nil {
					return nil, nil, errors.Join(err, verr)
				}
				fmt.Fprintf(streams.ErrOut, "note: another lanectl process (probably a live 'lanectl soak') is writing %s; reading what it has stored so far\n", opts.Dir)
				d.Querier = v
				closeFn = func() { _ = v.Close() }
			case err != nil:
				return nil, nil, err
			default:
				d.Querier = e
				closeFn = func() { _ = e.Close() }
			}
		}
	}
	return d, closeFn, nil
}

// planStoreOptions places a plan's embedded store at <state>.metrics, so
// every lanectl run on the plan adds to, and judges from, one history. It
// keeps at least a day more than a window of length window.
// It scrapes the replicas with the plan's replica_http settings (bearer
// token, TLS), as verification reaches them.
func planStoreOptions(plan *rollout.Plan, window, interval time.Duration) (query.EmbeddedOptions, error) {
	c, err := config.NewClientFromConfig(plan.ReplicaHTTP, "lanectl-store")
	if err != nil {
		return query.EmbeddedOptions{}, fmt.Errorf("replica_http: %w", err)
	}
	c.Timeout = interval
	return query.EmbeddedOptions{
		Dir:       plan.StatePath + ".metrics",
		Retention: max(query.DefaultStoreRetention, window+24*time.Hour),
		Client:    c,
	}, nil
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// formatDuration rounds to what a person reads at a glance.
func formatDuration(d time.Duration) string {
	switch {
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	case d >= time.Minute:
		return d.Round(time.Second).String()
	default:
		return d.Round(100 * time.Millisecond).String()
	}
}

func fmtFloat(v float64) string { return fmt.Sprintf("%g", v) }
