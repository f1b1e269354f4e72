package cli

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lanectl/lanectl/node"
	"github.com/lanectl/lanectl/node/replica"
	"github.com/lanectl/lanectl/node/transport"
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

	PeerCert, PeerKey, PeerCA string
	HTTPCert, HTTPKey, HTTPCA string
	HTTPTokenFile             string
	Insecure                  bool
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

Security. Only members listed in --peers may connect to the raft port. With
--peer-cert/--peer-key/--peer-ca, raft runs over mutual TLS 1.3: every member's
certificate is signed by the --peer-ca CA, usable for both server and client
auth, and names its node with the URI SAN lanectl-node:<name> (for n2:
"lanectl-node:n2"); a connection whose certificate names another node than the
one it claims is refused. With --http-cert/--http-key the HTTP API is served
over TLS 1.3, and with --http-ca only to clients presenting a certificate that
CA signed. --http-token-file makes PUT /kv and POST /admin/snapshot require
"Authorization: Bearer <token>". Without TLS, the raft and HTTP addresses must
be loopback unless --insecure says otherwise.

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
			if err := checkTogether(cmd, "peer-cert", "peer-key", "peer-ca"); err != nil {
				return err
			}
			if err := checkTogether(cmd, "http-cert", "http-key"); err != nil {
				return err
			}
			if opts.HTTPCA != "" && opts.HTTPCert == "" {
				return usageErrorf(cmd, "--http-ca needs --http-cert and --http-key: client certificates are checked over TLS only")
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
	f.StringVar(&opts.PeerCert, "peer-cert", "", "PEM certificate of this replica for raft (URI SAN lanectl-node:<id>); with --peer-key and --peer-ca, raft runs over mutual TLS")
	f.StringVar(&opts.PeerKey, "peer-key", "", "PEM private key of --peer-cert")
	f.StringVar(&opts.PeerCA, "peer-ca", "", "PEM CA bundle that signs every member's raft certificate")
	f.StringVar(&opts.HTTPCert, "http-cert", "", "PEM certificate for the HTTP API; with --http-key, the API is served over TLS")
	f.StringVar(&opts.HTTPKey, "http-key", "", "PEM private key of --http-cert")
	f.StringVar(&opts.HTTPCA, "http-ca", "", "PEM CA bundle of the HTTP API's clients; when given, a client must present a certificate it signed")
	f.StringVar(&opts.HTTPTokenFile, "http-token-file", "", "file holding the bearer token PUT /kv and POST /admin/snapshot require")
	f.BoolVar(&opts.Insecure, "insecure", false, "allow plaintext raft and HTTP on addresses beyond loopback")
	cmd.AddCommand(run)
	return cmd
}

// checkTogether refuses a partial set of flags that only work together.
func checkTogether(cmd *cobra.Command, names ...string) error {
	var set, unset []string
	for _, n := range names {
		if cmd.Flags().Changed(n) {
			set = append(set, "--"+n)
		} else {
			unset = append(unset, "--"+n)
		}
	}
	if len(set) > 0 && len(unset) > 0 {
		return usageErrorf(cmd, "%s also need %s", strings.Join(set, ", "), strings.Join(unset, ", "))
	}
	return nil
}

// nodeSecurity loads the TLS material and the token the flags name.
func nodeSecurity(opts *NodeRunOptions) (peerTLS, httpTLS *tls.Config, token string, err error) {
	if opts.PeerCert != "" {
		if peerTLS, err = transport.LoadTLS(opts.PeerCert, opts.PeerKey, opts.PeerCA); err != nil {
			return nil, nil, "", fmt.Errorf("--peer-cert: %w", err)
		}
	}
	switch {
	case opts.HTTPCA != "":
		if httpTLS, err = transport.LoadTLS(opts.HTTPCert, opts.HTTPKey, opts.HTTPCA); err != nil {
			return nil, nil, "", fmt.Errorf("--http-cert: %w", err)
		}
	case opts.HTTPCert != "":
		pair, err := tls.LoadX509KeyPair(opts.HTTPCert, opts.HTTPKey)
		if err != nil {
			return nil, nil, "", fmt.Errorf("--http-cert: load certificate %s and key %s: %w", opts.HTTPCert, opts.HTTPKey, err)
		}
		httpTLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS13}
	}
	if opts.HTTPTokenFile != "" {
		b, err := os.ReadFile(opts.HTTPTokenFile)
		if err != nil {
			return nil, nil, "", fmt.Errorf("--http-token-file: %w", err)
		}
		if token = strings.TrimSpace(string(b)); token == "" {
			return nil, nil, "", fmt.Errorf("--http-token-file: %s is empty", opts.HTTPTokenFile)
		}
	}
	return peerTLS, httpTLS, token, nil
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
	peerTLS, httpTLS, token, err := nodeSecurity(opts)
	if err != nil {
		return usageErrorf(cmd, "%v", err)
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
		PeerTLS:                peerTLS,
		HTTPTLS:                httpTLS,
		HTTPToken:              token,
		Insecure:               opts.Insecure,
		Logger:                 log,
	})
	if errors.Is(err, transport.ErrInsecureListen) {
		return usageErrorf(cmd, "%v: give --peer-cert, --peer-key and --peer-ca (raft) and --http-cert and --http-key (HTTP), or --insecure", err)
	}
	if err != nil {
		return fmt.Errorf("node run: %w", err)
	}
	if err := rep.Run(cmd.Context()); err != nil {
		return fmt.Errorf("node run: %w", err)
	}
	return nil
}
