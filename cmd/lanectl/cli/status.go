package cli

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lanectl/lanectl/query"
	"github.com/lanectl/lanectl/rollout"
)

// StatusOptions are the inputs of 'lanectl status'.
type StatusOptions struct {
	Streams *IOStreams
	Getenv  Getenv
	Config  string
	Output  string
}

// NewCmdStatus builds 'lanectl status'. runF replaces runStatus in tests.
func NewCmdStatus(streams *IOStreams, getenv Getenv, runF func(*StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{Streams: streams, Getenv: getenv}
	cmd := &cobra.Command{
		Use:   "status [--config FILE] [-o table|json]",
		Short: "Show who has the flag, since when, soak progress and drops by lane or group",
		Long: `Show one row per replica of the plan, in rollout order:

  FLAG      what the journal records: on, off, or an interrupted step
  SEEN      the flag as the replica shows it: the target's metrics, or the
            plan's read command; when the two disagree the row is marked
            MISMATCH and a warning follows
  SINCE     when the flag was verified on: the start of the soak window
  SOAK      how much of the soak window has run, and how much is left
  VERDICT   the last soak verdict recorded for the replica
  HEALTH    ok, or the first verify check that does not hold
  DROPS     dropped messages by lane (by raft group for a target without
            lanes): over the soak so far for a replica with the flag, over
            the last soak-window length for the others

status reads the journal without taking the lock and changes nothing. When
a live 'lanectl soak' holds the plan's embedded store, status reads what it
has stored so far. It exits 3 when the metrics source cannot be reached or
does not answer within prometheus.query_timeout (after printing what it
knows), 0 otherwise.`,
		Example: `  lanectl status
  lanectl status -o json | jq '.replicas[] | select(.mismatch)'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(cmd, opts.Output); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runStatus(cmd, opts)
		},
	}
	addConfigFlag(cmd, &opts.Config)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

type statusSoakJSON struct {
	Start            time.Time `json:"start"`
	End              time.Time `json:"end"`
	ElapsedSeconds   float64   `json:"elapsed_seconds"`
	RemainingSeconds float64   `json:"remaining_seconds"`
	Fraction         float64   `json:"fraction"`
}

type statusVerdictJSON struct {
	Verdict     string    `json:"verdict"`
	At          time.Time `json:"at"`
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	Reason      string    `json:"reason,omitempty"`
}

type statusWindowJSON struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

type statusReplicaJSON struct {
	Name        string             `json:"name"`
	Stage       string             `json:"stage"`
	Flag        string             `json:"flag"`
	Metrics     string             `json:"metrics"`
	Mismatch    bool               `json:"mismatch"`
	MetricsErr  string             `json:"metrics_error,omitempty"`
	EnabledAt   *time.Time         `json:"enabled_at"`
	Soak        *statusSoakJSON    `json:"soak"`
	LastVerdict *statusVerdictJSON `json:"last_verdict"`
	Healthy     bool               `json:"healthy"`
	Health      string             `json:"health"`
	Drops       map[string]float64 `json:"drops"`
	// DropsBy is the label drops are split by: lane, or group for a
	// target without lanes.
	DropsBy     string           `json:"drops_by"`
	DropsWindow statusWindowJSON `json:"drops_window"`
	DropsErr    string           `json:"drops_error,omitempty"`
}

type statusPendingJSON struct {
	Step     string    `json:"step"`
	Replicas []string  `json:"replicas"`
	Started  time.Time `json:"started"`
}

type statusJSON struct {
	At       time.Time           `json:"at"`
	Plan     string              `json:"plan"`
	Journal  string              `json:"journal"`
	Replicas []statusReplicaJSON `json:"replicas"`
	Pending  []statusPendingJSON `json:"pending"`
	Next     []string            `json:"next"`
}

func runStatus(cmd *cobra.Command, opts *StatusOptions) error {
	d, closeFn, err := newDriver(cmd.Context(), opts.Streams, opts.Getenv, opts.Config, driverDeps{metrics: true, readOnly: true, readFlag: true})
	if err != nil {
		return err
	}
	defer closeFn()
	rep, err := d.Status(cmd.Context())
	if err != nil {
		return err
	}
	doc := statusJSON{At: rep.At.UTC(), Plan: d.Plan.Path, Journal: d.Plan.StatePath, Next: rep.Next, Replicas: []statusReplicaJSON{}, Pending: []statusPendingJSON{}}
	if doc.Next == nil {
		doc.Next = []string{}
	}
	var metricsErr error
	for _, p := range rep.Pending {
		doc.Pending = append(doc.Pending, statusPendingJSON{Step: p.Step, Replicas: p.Replicas, Started: p.Time})
	}
	for _, r := range rep.Replicas {
		row := statusReplicaJSON{
			Name: r.Name, Stage: r.Stage, Flag: r.Journal, Metrics: r.Seen, Mismatch: r.Mismatch,
			Drops: r.Drops, DropsBy: r.DropsBy,
			DropsWindow: statusWindowJSON{Start: r.DropsWindow.Start.UTC(), End: r.DropsWindow.End.UTC()},
		}
		row.Healthy, row.Health = r.Probe.Health()
		if err := r.Probe.MetricsErr(); err != nil {
			row.MetricsErr = err.Error()
		}
		if !r.EnabledAt.IsZero() {
			t := r.EnabledAt.UTC()
			row.EnabledAt = &t
		}
		if r.Soak != nil {
			row.Soak = &statusSoakJSON{Start: r.Soak.Window.Start.UTC(), End: r.Soak.Window.End.UTC(), ElapsedSeconds: r.Soak.Elapsed.Seconds(), RemainingSeconds: r.Soak.Remaining.Seconds(), Fraction: r.Soak.Fraction}
		}
		if e := r.LastSoak; e != nil {
			row.LastVerdict = &statusVerdictJSON{Verdict: e.Verdict, At: e.Time, WindowStart: e.WindowStart, WindowEnd: e.WindowEnd, Reason: e.Reason}
		}
		if r.DropsErr != nil {
			row.DropsErr = r.DropsErr.Error()
			if metricsErr == nil && (errors.Is(r.DropsErr, query.ErrUnreachable) || errors.Is(r.DropsErr, query.ErrTimeout)) {
				metricsErr = r.DropsErr
			}
		}
		doc.Replicas = append(doc.Replicas, row)
	}

	if opts.Output == outputJSON {
		if err := writeJSON(opts.Streams.Out, doc); err != nil {
			return err
		}
	} else if err := writeStatusTable(opts.Streams, doc); err != nil {
		return err
	}
	if metricsErr != nil {
		return fmt.Errorf("drops unknown: %w", metricsErr)
	}
	return nil
}

func writeStatusTable(streams *IOStreams, doc statusJSON) error {
	rows := make([][]string, 0, len(doc.Replicas))
	var warnings []string
	for _, r := range doc.Replicas {
		flag := r.Flag
		if r.Mismatch {
			flag += " MISMATCH"
			warnings = append(warnings, fmt.Sprintf("WARNING: %s: the journal says the flag is %s but the replica shows %s; check the replica, then 'lanectl advance' or 'lanectl rollback --replica %s'", r.Name, r.Flag, r.Metrics, r.Name))
		}
		since, soak := "-", "-"
		if r.EnabledAt != nil {
			since = formatTime(*r.EnabledAt)
		}
		if r.Soak != nil {
			if r.Soak.RemainingSeconds <= 0 {
				soak = "window over"
			} else {
				soak = fmt.Sprintf("%.0f%%, %s left", math.Floor(r.Soak.Fraction*100), formatDuration(time.Duration(r.Soak.RemainingSeconds*float64(time.Second))))
			}
		}
		verdict := "-"
		if r.LastVerdict != nil {
			verdict = r.LastVerdict.Verdict
		}
		health := "ok"
		if !r.Healthy {
			health = "DOWN: " + firstLineOf(r.Health)
		}
		rows = append(rows, []string{r.Name, r.Stage, flag, r.Metrics, since, soak, verdict, health, formatDrops(r)})
	}
	drops := "DROPS"
	if len(doc.Replicas) > 0 && doc.Replicas[0].DropsBy != "lane" {
		drops = "DROPS BY " + strings.ToUpper(doc.Replicas[0].DropsBy)
	}
	if err := writeTable(streams.Out, []string{"REPLICA", "STAGE", "FLAG", "SEEN", "SINCE", "SOAK", "VERDICT", "HEALTH", drops}, rows); err != nil {
		return err
	}
	for _, p := range doc.Pending {
		fmt.Fprintf(streams.Out, "interrupted: %s of %s started %s; 'lanectl advance' finishes it\n", p.Step, strings.Join(p.Replicas, ", "), formatTime(p.Started))
	}
	switch {
	case len(doc.Next) > 0:
		fmt.Fprintf(streams.Out, "next: %s\n", strings.Join(doc.Next, ", "))
	default:
		fmt.Fprintln(streams.Out, "next: nothing: every replica has the flag")
	}
	for _, w := range warnings {
		fmt.Fprintln(streams.Out, w)
	}
	return nil
}

func formatDrops(r statusReplicaJSON) string {
	if r.DropsErr != "" {
		return "unknown"
	}
	if len(r.Drops) == 0 {
		return "no data"
	}
	parts := make([]string, 0, len(r.Drops))
	for _, l := range rollout.Lanes(r.Drops) {
		parts = append(parts, fmt.Sprintf("%s=%s", l, fmtFloat(math.Round(r.Drops[l]))))
	}
	return strings.Join(parts, " ")
}

func firstLineOf(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}
