package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// leaderCommitMaxAge is how old a follower's knowledge of the leader's
// commit index may be for /healthz to trust it.
const leaderCommitMaxAge = 3 * time.Second

// Status is what GET /status returns.
type Status struct {
	ID           string `json:"id"`
	RaftID       uint64 `json:"raft_id"`
	Term         uint64 `json:"term"`
	Leader       string `json:"leader"`
	LeaderRaftID uint64 `json:"leader_raft_id"`
	// Role is leader, follower, candidate or pre-candidate.
	Role string `json:"role"`
	// LastIndex is the newest entry in this replica's log; above Commit
	// while entries wait for a quorum.
	LastIndex     uint64 `json:"last_index"`
	Commit        uint64 `json:"commit"`
	Applied       uint64 `json:"applied"`
	SnapshotIndex uint64 `json:"snapshot_index"`
	// LeaderCommit is the leader's commit index as last learned (a
	// follower asks for it with raft ReadIndex); 0 when unknown.
	LeaderCommit uint64 `json:"leader_commit"`
	LanesEnabled bool   `json:"lanes_enabled"`
	SyncMode     string `json:"sync_mode"`
	// SnapshotsInstalled counts snapshots received from a leader since the
	// replica started.
	SnapshotsInstalled uint64 `json:"snapshots_installed"`

	leaderCommitAt time.Time
}

// Health says whether the replica is serving: a leader is known and the
// applied index is within maxLag of the leader's commit index. reason says
// why not, or summarises when it is healthy.
func (s Status) Health(maxLag uint64, now time.Time) (ok bool, reason string) {
	switch {
	case s.LeaderRaftID == 0:
		return false, fmt.Sprintf("no leader known (role %s, term %d)", s.Role, s.Term)
	case s.leaderCommitAt.IsZero():
		return false, fmt.Sprintf("leader is %s but its commit index is not known yet (applied %d)", s.Leader, s.Applied)
	case now.Sub(s.leaderCommitAt) > leaderCommitMaxAge:
		return false, fmt.Sprintf("leader %s has not confirmed its commit index for %v (applied %d)", s.Leader, now.Sub(s.leaderCommitAt).Round(time.Millisecond), s.Applied)
	case s.Applied+maxLag < s.LeaderCommit:
		return false, fmt.Sprintf("applied index %d is %d behind the leader's commit index %d (max lag %d)", s.Applied, s.LeaderCommit-s.Applied, s.LeaderCommit, maxLag)
	}
	return true, fmt.Sprintf("ok: %s, leader %s, applied %d, leader commit %d", s.Role, s.Leader, s.Applied, s.LeaderCommit)
}

func (r *Replica) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", r.serveHealth)
	mux.HandleFunc("GET /status", r.serveStatus)
	mux.HandleFunc("GET /kv/{key}", r.serveGet)
	mux.HandleFunc("PUT /kv/{key}", r.servePut)
	mux.HandleFunc("POST /admin/snapshot", r.serveForceSnapshot)
	return mux
}

func (r *Replica) serveHealth(w http.ResponseWriter, _ *http.Request) {
	ok, reason := r.Status().Health(r.cfg.HealthMaxLag, time.Now())
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	httpText(w, code, reason)
}

func (r *Replica) serveStatus(w http.ResponseWriter, _ *http.Request) {
	httpJSON(w, http.StatusOK, r.Status())
}

func (r *Replica) serveGet(w http.ResponseWriter, req *http.Request) {
	key := req.PathValue("key")
	v, ok := r.Get(key)
	if !ok {
		httpText(w, http.StatusNotFound, fmt.Sprintf("key %q not found on %s", key, r.cfg.Name))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(v)
}

// PutResult is what PUT /kv/{key} returns.
type PutResult struct {
	Key   string `json:"key"`
	Index uint64 `json:"index"`
}

func (r *Replica) servePut(w http.ResponseWriter, req *http.Request) {
	key := req.PathValue("key")
	if key == "" {
		httpText(w, http.StatusBadRequest, "empty key")
		return
	}
	value, err := io.ReadAll(http.MaxBytesReader(w, req.Body, r.cfg.MaxValueBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpText(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("value over %d bytes", tooBig.Limit))
			return
		}
		httpText(w, http.StatusBadRequest, fmt.Sprintf("read value: %v", err))
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), r.cfg.ProposalTimeout)
	defer cancel()
	idx, err := r.Put(ctx, key, value)
	switch {
	case err == nil:
		httpJSON(w, http.StatusOK, PutResult{Key: key, Index: idx})
	case errors.Is(err, ErrNoLeader), errors.Is(err, ErrStopped):
		httpText(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		httpText(w, http.StatusGatewayTimeout, fmt.Sprintf("%v (within %v; the proposal may have been dropped or the leader changed; retry)", err, r.cfg.ProposalTimeout))
	default:
		httpText(w, http.StatusInternalServerError, err.Error())
	}
}

func (r *Replica) serveForceSnapshot(w http.ResponseWriter, req *http.Request) {
	peer := req.URL.Query().Get("peer")
	if peer == "" {
		httpText(w, http.StatusBadRequest, "missing ?peer=NAME")
		return
	}
	res, err := r.ForceSnapshot(req.Context(), peer)
	switch {
	case err == nil:
		httpJSON(w, http.StatusOK, res)
	case errors.Is(err, ErrBadPeer):
		httpText(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, ErrNotLeader), errors.Is(err, ErrForceBusy):
		httpText(w, http.StatusConflict, err.Error())
	case errors.Is(err, ErrStopped):
		httpText(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, errForceTimeout), errors.Is(err, context.DeadlineExceeded):
		httpText(w, http.StatusGatewayTimeout, err.Error())
	default:
		httpText(w, http.StatusInternalServerError, err.Error())
	}
}

func httpText(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg+"\n")
}

func httpJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
