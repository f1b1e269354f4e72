package replica

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lanectl/lanectl/node/transport"
)

// httpServer is the HTTP API's server. Every phase of a connection has a
// deadline, so a client that trickles its request, never reads its answer
// or idles holds a socket for a bounded time only.
func (r *Replica) httpServer(ctx context.Context) *http.Server {
	return &http.Server{
		Handler:           r.httpHandler(),
		ReadHeaderTimeout: r.cfg.HTTPReadHeaderTimeout,
		ReadTimeout:       r.cfg.HTTPReadTimeout,
		WriteTimeout:      r.cfg.HTTPWriteTimeout,
		IdleTimeout:       r.cfg.HTTPIdleTimeout,
		// Not cancelled with ctx: a request in flight at shutdown is
		// answered from the replica's own stop (503 replica stopped),
		// not cut off as if the client had gone.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ErrorLog:    slog.NewLogLogger(r.log.With("component", "http").Handler(), slog.LevelDebug),
	}
}

// secureHTTP puts TLS on the HTTP listener when configured, and refuses a
// plaintext one beyond loopback unless the config says Insecure.
func (r *Replica) secureHTTP() error {
	if r.cfg.HTTPTLS == nil {
		if !r.cfg.Insecure && !transport.IsLoopback(r.httpLn.Addr()) {
			return fmt.Errorf("HTTP API on %s: %w", transport.ListenAddr(r.cfg.HTTPAddr, r.httpLn), transport.ErrInsecureListen)
		}
		return nil
	}
	c := r.cfg.HTTPTLS.Clone()
	c.MinVersion = tls.VersionTLS13
	if c.ClientCAs != nil {
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	r.httpLn = tls.NewListener(r.httpLn, c)
	return nil
}

func (r *Replica) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", r.serveHealth)
	mux.HandleFunc("GET /status", r.serveStatus)
	mux.HandleFunc("GET /kv/{key}", r.serveGet)
	mux.HandleFunc("PUT /kv/{key}", r.requireToken(r.servePut))
	mux.HandleFunc("POST /admin/snapshot", r.requireToken(r.serveForceSnapshot))
	return mux
}

// requireToken guards a mutating endpoint with the bearer token, when one
// is configured. Both sides are hashed before the constant-time compare, so
// neither the token's bytes nor its length leak through timing.
func (r *Replica) requireToken(h http.HandlerFunc) http.HandlerFunc {
	if r.cfg.HTTPToken == "" {
		return h
	}
	want := sha256.Sum256([]byte(r.cfg.HTTPToken))
	return func(w http.ResponseWriter, req *http.Request) {
		token, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		got := sha256.Sum256([]byte(token))
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="lanectl"`)
			httpText(w, http.StatusUnauthorized, fmt.Sprintf("%s %s needs the bearer token: Authorization: Bearer <token>", req.Method, req.URL.Path))
			return
		}
		h(w, req)
	}
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
	Key string `json:"key"`
	// Group is the raft group the key belongs to; Index is that group's
	// log index the write was applied at.
	Group uint64 `json:"group"`
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
		httpJSON(w, http.StatusOK, PutResult{Key: key, Group: r.GroupOf(key), Index: idx})
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
	var group uint64
	if s := req.URL.Query().Get("group"); s != "" {
		var err error
		if group, err = strconv.ParseUint(s, 10, 64); err != nil {
			httpText(w, http.StatusBadRequest, fmt.Sprintf("?group=%q: want a group id, 0 to %d", s, len(r.groups)-1))
			return
		}
	}
	res, err := r.ForceSnapshot(req.Context(), group, peer)
	switch {
	case err == nil:
		httpJSON(w, http.StatusOK, res)
	case errors.Is(err, ErrBadPeer), errors.Is(err, ErrBadGroup):
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
