package cli

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lanectl/lanectl/node"
	"github.com/lanectl/lanectl/node/replica"
)

// NodeRunOptions are the inputs of 'lanectl node run'.
type NodeRunOptions struct {
	Streams *IOStreams
	Getenv  Getenv

	ID     string
	Listen string
	Peers  string
	HTTP   string
	Data   string
	Groups int

	TickInterval           time.Duration
	HeartbeatTick          int
	ElectionTick           int
	SnapshotEntries        uint64
	SnapshotCatchUpEntries uint64
	LogLevel               string
	InjectDrops            string
}

// NewCmdNode builds 'lanectl node' and its 'run' subcommand. runF replaces
// runNodeRun in tests.
func NewCmdNode(streams *IOStreams, getenv Getenv, runF func(*NodeRunOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run a lanectl replica",
		Args:  cobra.NoArgs,
	}
	opts := &NodeRunOptions{Streams: streams, Getenv: getenv}
	run := &cobra.Command{
		Use:   "run --id ID --peers ID=ADDR,... --http ADDR --data DIR",
		Short: "Run one replica of the raft key-value store until SIGINT/SIGTERM",
		Long: `Run one replica: --groups etcd raft groups (default 1) whose outbound messages
all go through one lane dispatcher and one TCP transport with one connection per
(peer, lane), a small replicated key-value store kept in --data (keys go to
groups by hash), and an HTTP API on --http:

  GET  /metrics                 Prometheus metrics, node_id="<--id>" on every series, group on raft series
  GET  /healthz                 200 when every group knows a leader and applied is close to its commit
  GET  /status                  JSON: id, lanes, sync mode; term, leader, role, indexes per group (groups)
  PUT  /kv/{key}                write (body = value) in the key's group; returns once applied here
  GET  /kv/{key}                read this replica's copy
  POST /admin/snapshot?peer=ID[&group=G]  group G's leader only: send a full snapshot to that follower

Every member must run the same --groups, and a data directory keeps the
count it was created with.

Replica names must end in a number, which becomes the raft ID ("n3" is 3); the
name itself is the node_id label. --peers lists every member, this one included.

SIGINT or SIGTERM stops the replica cleanly. A leader first hands leadership
to its most caught-up follower (waiting at most one election timeout), so the
cluster has a new leader at once rather than after an election.

Environment (read once at start):
  ELASTICKV_RAFT_DISPATCHER_LANES  true/1: four-lane dispatcher; anything else: legacy two-lane
  ELASTICKV_FSM_SYNC_MODE          sync (default): fsync every apply batch; nosync: do not`,
		Example: `  lanectl node run --id n1 --listen 127.0.0.1:7001 --http 127.0.0.1:9101 --data /tmp/n1 \
      --peers n1=127.0.0.1:7001,n2=127.0.0.1:7002,n3=127.0.0.1:7003
  ELASTICKV_RAFT_DISPATCHER_LANES=1 lanectl node run --id n2 ...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, f := range []string{"id", "peers", "http", "data"} {
				if !cmd.Flags().Changed(f) {
					return usageErrorf(cmd, "--%s is required", f)
				}
			}
			if _, err := parseLogLevel(opts.LogLevel); err != nil {
				return usageErrorf(cmd, "%v", err)
			}
			if opts.Groups < 1 || opts.Groups > replica.MaxGroups {
				return usageErrorf(cmd, "--groups %d: want 1 to %d", opts.Groups, replica.MaxGroups)
			}
			if _, err := node.ParseDropInjection(opts.InjectDrops); err != nil {
				return usageErrorf(cmd, "--inject-drops: %v", err)
			}
			if runF != nil {
				return runF(opts)
			}
			return runNodeRun(cmd, opts)
		},
	}
	f := run.Flags()
	f.StringVar(&opts.ID, "id", "", "this replica's name, ending in its raft ID (e.g. n1); the node_id label")
	f.StringVar(&opts.Listen, "listen", "", "raft transport listen address (default: this replica's address in --peers)")
	f.StringVar(&opts.Peers, "peers", "", "every member as NAME=HOST:PORT, comma-separated, this one included")
	f.StringVar(&opts.HTTP, "http", "", "HTTP API listen address")
	f.StringVar(&opts.Data, "data", "", "data directory (raft.db, fsm.db; group-N/ for group N); created when missing")
	f.IntVar(&opts.Groups, "groups", 1, fmt.Sprintf("raft groups this replica runs, 1 to %d; the same on every member", replica.MaxGroups))
	f.DurationVar(&opts.TickInterval, "tick", replica.DefaultTickInterval, "raft tick interval")
	f.IntVar(&opts.HeartbeatTick, "heartbeat-ticks", replica.DefaultHeartbeatTick, "ticks between leader heartbeats")
	f.IntVar(&opts.ElectionTick, "election-ticks", replica.DefaultElectionTick, "ticks without a leader before an election")
	f.Uint64Var(&opts.SnapshotEntries, "snapshot-entries", replica.DefaultSnapshotEntries, "applied entries between automatic snapshots")
	f.Uint64Var(&opts.SnapshotCatchUpEntries, "snapshot-catchup-entries", replica.DefaultSnapshotCatchUpEntries, "log entries kept behind a snapshot for slow followers")
	f.StringVar(&opts.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&opts.InjectDrops, "inject-drops", "", "fault injection for testing gates: LANE:N drops every Nth message of that lane (e.g. heartbeat:20)")
	cmd.AddCommand(run)
	return cmd
}

func parseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("invalid --log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

func runNodeRun(cmd *cobra.Command, opts *NodeRunOptions) error {
	level, _ := parseLogLevel(opts.LogLevel)
	log := slog.New(slog.NewTextHandler(opts.Streams.ErrOut, &slog.HandlerOptions{Level: level}))
	peers, err := replica.ParsePeers(opts.Peers)
	if err != nil {
		return usageErrorf(cmd, "--peers: %v", err)
	}
	inject, _ := node.ParseDropInjection(opts.InjectDrops)
	if inject.Every > 0 {
		log.Warn("fault injection on: dropping messages on purpose", "lane", inject.Lane.String(), "every", inject.Every)
	}
	mode, sync, warnings := replica.SettingsFromEnv(opts.Getenv)
	for _, w := range warnings {
		log.Warn(w)
	}
	listen := opts.Listen
	if listen == "" {
		for _, p := range peers {
			if p.Name == opts.ID {
				listen = p.Addr
			}
		}
	}
	rep, err := replica.New(replica.Config{
		Name:                   strings.TrimSpace(opts.ID),
		Peers:                  peers,
		ListenAddr:             listen,
		HTTPAddr:               opts.HTTP,
		DataDir:                opts.Data,
		Groups:                 opts.Groups,
		Mode:                   mode,
		SyncMode:               sync,
		TickInterval:           opts.TickInterval,
		HeartbeatTick:          opts.HeartbeatTick,
		ElectionTick:           opts.ElectionTick,
		SnapshotEntries:        opts.SnapshotEntries,
		SnapshotCatchUpEntries: opts.SnapshotCatchUpEntries,
		InjectDrops:            inject,
		Logger:                 log,
	})
	if err != nil {
		return fmt.Errorf("node run: %w", err)
	}
	if err := rep.Run(cmd.Context()); err != nil {
		return fmt.Errorf("node run: %w", err)
	}
	return nil
}
