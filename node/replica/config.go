package replica

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/lanectl/lanectl/lanes"
	"github.com/lanectl/lanectl/node"
	"github.com/lanectl/lanectl/node/transport"
)

// Defaults for Config fields left zero.
const (
	DefaultTickInterval           = 100 * time.Millisecond
	DefaultHeartbeatTick          = 1
	DefaultElectionTick           = 10
	DefaultSnapshotEntries        = 10000
	DefaultSnapshotCatchUpEntries = 1000
	DefaultMaxSizePerMsg          = 1 << 20
	DefaultProposalTimeout        = 5 * time.Second
	DefaultHealthMaxLag           = 100
	DefaultMaxValueBytes          = 16 << 20
	DefaultHTTPReadHeaderTimeout  = 10 * time.Second
	DefaultHTTPReadTimeout        = time.Minute
	DefaultHTTPWriteTimeout       = 2 * time.Minute
	DefaultHTTPIdleTimeout        = 2 * time.Minute
)

// MaxGroups bounds Config.Groups: each group holds two open bbolt files, a
// goroutine and a ticker.
const MaxGroups = 256

// Peer is one member of the cluster. Name is the identity operators use (the
// node_id label and the name in --peers); ID is raft's numeric identity,
// derived from Name by RaftID.
type Peer struct {
	Name string
	ID   uint64
	Addr string
}

// RaftID maps a replica name to its raft ID: the decimal number the name ends
// with. "3" is 3, "n3" is 3, "node-12" is 12. Raft needs a non-zero uint64
// that never changes; deriving it from the name keeps a single identity for
// operators (the node_id label stays the name as given) without a second
// flag that could disagree with it.
func RaftID(name string) (uint64, error) {
	i := len(name)
	for i > 0 && name[i-1] >= '0' && name[i-1] <= '9' {
		i--
	}
	if i == len(name) {
		return 0, fmt.Errorf("replica name %q must end in a number (e.g. n1), which becomes its raft ID", name)
	}
	id, err := strconv.ParseUint(name[i:], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("replica name %q: number %q is out of range", name, name[i:])
	}
	if id == 0 {
		return 0, fmt.Errorf("replica name %q: raft ID must not be 0", name)
	}
	return id, nil
}

// ParsePeers parses "n1=127.0.0.1:7001,n2=127.0.0.1:7002". Names must map to
// distinct raft IDs and every address needs a host and a port.
func ParsePeers(s string) ([]Peer, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("no peers given (want NAME=HOST:PORT,...)")
	}
	var peers []Peer
	byID := make(map[uint64]string)
	for i, item := range strings.Split(s, ",") {
		name, addr, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok || name == "" || addr == "" {
			return nil, fmt.Errorf("peer %d %q: want NAME=HOST:PORT", i+1, item)
		}
		id, err := RaftID(name)
		if err != nil {
			return nil, fmt.Errorf("peer %d: %w", i+1, err)
		}
		if other, dup := byID[id]; dup {
			return nil, fmt.Errorf("peer %d: %q and %q both map to raft ID %d", i+1, other, name, id)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("peer %d %q: address: %w", i+1, name, err)
		}
		byID[id] = name
		peers = append(peers, Peer{Name: name, ID: id, Addr: addr})
	}
	return peers, nil
}

// Config configures a Replica. Environment-derived values (Mode,
// SyncMode) are read by the caller, once, and passed in.
type Config struct {
	// Name is this replica's identity, as given to --id; it must appear in
	// Peers. It is the node_id label on every metric.
	Name string
	// Peers lists every member, this replica included.
	Peers []Peer
	// ListenAddr is where the raft transport accepts peers; when
	// RaftListener is set it is only informational.
	ListenAddr string
	// HTTPAddr serves /metrics, /healthz, /status, /kv and /admin.
	HTTPAddr string
	// RaftListener and HTTPListener, when set, are used instead of listening
	// on ListenAddr/HTTPAddr (tests bind port 0 first to learn the address).
	// The replica closes them, also when New fails.
	RaftListener net.Listener
	HTTPListener net.Listener
	// DataDir holds raft.db and fsm.db of group 0, and those of group N in
	// DataDir/group-N. A directory with neither is initialised; one with
	// only one of them, or written with another group count, is refused.
	DataDir string
	// Groups is how many raft groups the replica runs; every member of
	// the cluster must run the same number. Keys are assigned to groups by
	// hash (FNV-1a 64 modulo Groups). Zero means 1.
	Groups int

	Mode     lanes.Mode
	SyncMode lanes.SyncMode

	TickInterval  time.Duration
	HeartbeatTick int
	ElectionTick  int
	// SnapshotEntries: applied entries since the last snapshot that trigger
	// a snapshot and log compaction.
	SnapshotEntries uint64
	// SnapshotCatchUpEntries: entries kept in the log behind a new snapshot,
	// so a follower slightly behind catches up by MsgApp, not MsgSnap.
	SnapshotCatchUpEntries uint64
	MaxSizePerMsg          uint64
	MaxInflightMsgs        int
	// ProposalTimeout bounds PUT /kv: commit and apply must happen within it.
	ProposalTimeout time.Duration
	// HealthMaxLag is how far applied may trail the leader's commit index
	// for /healthz to report 200.
	HealthMaxLag uint64
	// MaxValueBytes caps the body of PUT /kv.
	MaxValueBytes int64

	// HTTPReadHeaderTimeout, HTTPReadTimeout, HTTPWriteTimeout and
	// HTTPIdleTimeout are the HTTP server's (net/http.Server's fields of
	// those names). HTTPReadTimeout bounds a whole request, body included,
	// so a PUT trickled byte by byte is cut off; HTTPWriteTimeout must cover
	// the longest answer, a forced snapshot waiting for raft to send it.
	HTTPReadHeaderTimeout time.Duration
	HTTPReadTimeout       time.Duration
	HTTPWriteTimeout      time.Duration
	HTTPIdleTimeout       time.Duration

	// PeerTLS, when set, runs the raft transport over mutual TLS 1.3 (see
	// transport.Config.TLS): Certificates is this replica's certificate,
	// RootCAs the CA that signs every member's. Every member's certificate
	// names it with the URI SAN lanectl-node:<Name> (transport.IdentityScheme).
	PeerTLS *tls.Config
	// HTTPTLS, when set, serves the HTTP API over TLS 1.3 with its
	// Certificates; when its ClientCAs is set, only clients presenting a
	// certificate that CA signed are served.
	HTTPTLS *tls.Config
	// Insecure allows the raft transport and the HTTP API to serve
	// plaintext on addresses beyond loopback. Without it, New refuses to.
	Insecure bool
	// HTTPToken, when not empty, is the bearer token PUT /kv and POST
	// /admin/snapshot require (Authorization: Bearer <token>).
	HTTPToken string

	// Transport tunes the TCP transport (Dial, ChunkSize, timeouts...). The
	// replica sets ID, Listen, Listener, Peers, Names, TLS, Insecure,
	// Handler and Logger itself.
	Transport transport.Config

	// InjectDrops deliberately drops every Nth message of one lane, to show
	// that the soak gates catch a misbehaving canary. Off when Every is 0.
	InjectDrops node.DropInjection
	// Enqueued, when set, sees every outbound message as the dispatcher
	// queues it (see node.DispatcherConfig.Enqueued); benchmarks use it.
	Enqueued func(group uint64, lane lanes.Lane, m *raftpb.Message, at time.Time)

	Logger *slog.Logger
}

func (c *Config) withDefaults() Config {
	out := *c
	if out.TickInterval <= 0 {
		out.TickInterval = DefaultTickInterval
	}
	if out.HeartbeatTick <= 0 {
		out.HeartbeatTick = DefaultHeartbeatTick
	}
	if out.ElectionTick <= 0 {
		out.ElectionTick = DefaultElectionTick
	}
	if out.SnapshotEntries == 0 {
		out.SnapshotEntries = DefaultSnapshotEntries
	}
	if out.SnapshotCatchUpEntries == 0 {
		out.SnapshotCatchUpEntries = DefaultSnapshotCatchUpEntries
	}
	if out.MaxSizePerMsg == 0 {
		out.MaxSizePerMsg = DefaultMaxSizePerMsg
	}
	if out.MaxInflightMsgs <= 0 {
		out.MaxInflightMsgs = lanes.DefaultMaxInflightMsgs
	}
	if out.ProposalTimeout <= 0 {
		out.ProposalTimeout = DefaultProposalTimeout
	}
	if out.HealthMaxLag == 0 {
		out.HealthMaxLag = DefaultHealthMaxLag
	}
	if out.MaxValueBytes <= 0 {
		out.MaxValueBytes = DefaultMaxValueBytes
	}
	if out.Groups == 0 {
		out.Groups = 1
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&out.HTTPReadHeaderTimeout, DefaultHTTPReadHeaderTimeout},
		{&out.HTTPReadTimeout, DefaultHTTPReadTimeout},
		{&out.HTTPWriteTimeout, DefaultHTTPWriteTimeout},
		{&out.HTTPIdleTimeout, DefaultHTTPIdleTimeout},
	} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	return out
}

// validate checks the config and returns this replica's Peer entry.
func (c *Config) validate() (Peer, error) {
	if c.DataDir == "" {
		return Peer{}, errors.New("no data directory")
	}
	if c.ElectionTick <= c.HeartbeatTick {
		return Peer{}, fmt.Errorf("election tick %d must exceed heartbeat tick %d", c.ElectionTick, c.HeartbeatTick)
	}
	if c.HTTPAddr == "" && c.HTTPListener == nil {
		return Peer{}, errors.New("no HTTP address")
	}
	if c.Groups < 1 || c.Groups > MaxGroups {
		return Peer{}, fmt.Errorf("%d raft groups: want 1 to %d", c.Groups, MaxGroups)
	}
	if longest := max(c.ProposalTimeout, forceTimeout); c.HTTPWriteTimeout <= longest {
		return Peer{}, fmt.Errorf("HTTP write timeout %v must exceed %v, the longest a PUT or a forced snapshot waits before answering", c.HTTPWriteTimeout, longest)
	}
	if c.Mode != lanes.ModeLegacy && c.Mode != lanes.ModeFourLane {
		return Peer{}, fmt.Errorf("unknown dispatcher mode %s", c.Mode)
	}
	id, err := RaftID(c.Name)
	if err != nil {
		return Peer{}, err
	}
	seen := make(map[uint64]string)
	var self Peer
	for _, p := range c.Peers {
		if other, dup := seen[p.ID]; dup {
			return Peer{}, fmt.Errorf("peers %q and %q both have raft ID %d", other, p.Name, p.ID)
		}
		seen[p.ID] = p.Name
		if p.ID == id {
			if p.Name != c.Name {
				return Peer{}, fmt.Errorf("replica %q and peer %q both have raft ID %d", c.Name, p.Name, id)
			}
			self = p
		}
	}
	if self.ID == 0 {
		return Peer{}, fmt.Errorf("replica %q is not in its own peer list", c.Name)
	}
	if c.ListenAddr == "" && c.RaftListener == nil {
		c.ListenAddr = self.Addr
	}
	return self, nil
}

// SettingsFromEnv reads ELASTICKV_RAFT_DISPATCHER_LANES and
// ELASTICKV_FSM_SYNC_MODE through getenv and returns the dispatcher layout,
// the sync mode and a warning for each value that did not parse (the safe
// default is used then). Callers read the environment once, at their edge.
func SettingsFromEnv(getenv func(string) string) (mode lanes.Mode, sync lanes.SyncMode, warnings []string) {
	enabled, w := lanes.ParseLanesFlag(getenv(lanes.FlagEnv))
	if w != "" {
		warnings = append(warnings, w)
	}
	sync, w = lanes.ParseSyncMode(getenv(lanes.SyncModeEnv))
	if w != "" {
		warnings = append(warnings, w)
	}
	return lanes.ModeFor(enabled), sync, warnings
}
