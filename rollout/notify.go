package rollout

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/common/config"

	"github.com/lanectl/lanectl/query"
)

// Notifier announces rollout events (a failed soak, a rollback, a complete
// rollout) to the plan's Alertmanagers and webhooks. It is never on the
// critical path:
//
//  1. Sends run in goroutines the Notifier owns, never in the caller's:
//     a hook returns at once, and nothing it starts holds the rollout lock.
//  2. Each send has a deadline of the plan's notify.timeout, counted from
//     when it was queued; at most MaxInFlight sends run at once, and each
//     receiver gets its events in order.
//  3. A failure is counted and reported by Flush, which the Driver calls
//     after it released the lock; it never changes a verdict or an outcome.
//  4. Flush waits for what is still in flight at most notify.timeout (and
//     a little more for a request to notice its deadline), then cancels it
//     and waits for the goroutines to end, so none outlives the command.
//
// The zero of *Notifier (nil) notifies nobody.
type Notifier struct {
	cfg       NotifyConfig
	receivers []*receiver
	slots     chan struct{}

	mu sync.Mutex
	wg sync.WaitGroup
	// base is the context of the sends of the current command: cancelled
	// by Flush when they overstay.
	base     context.Context
	cancel   context.CancelFunc
	sent     int
	failures []string
	commands []CommandRun
}

// MaxInFlight is how many sends one Notifier runs at once.
const MaxInFlight = 4

// maxQueued bounds the sends waiting for one receiver; beyond it a send is
// dropped and counted as failed.
const maxQueued = 64

// flushSlack is how long Flush waits past the send deadline for requests
// to return once their context expired.
const flushSlack = time.Second

// receiver is one endpoint with its client and its queue of sends.
type receiver struct {
	kind      string // "alertmanager" or "webhook"
	url       string
	client    *http.Client
	clientErr error
	queue     []send
	running   bool
}

// send is one request (or, for a resolution, a read and a write) to a
// receiver.
type send struct {
	what     string
	ctx      context.Context
	cancel   context.CancelFunc
	do       func(ctx context.Context, c *http.Client) error
	receiver *receiver
}

// NotifyStats counts the sends of one command.
type NotifyStats struct {
	Sent   int `json:"sent"`
	Failed int `json:"failed"`
}

// WarningLine is the line, newline included, a command prints when some
// notification failed; "" when none did.
func (s NotifyStats) WarningLine() string {
	if s.Failed == 0 {
		return ""
	}
	return fmt.Sprintf("warning: %d of %d notifications failed (see the log); the rollout is not affected\n", s.Failed, s.Sent+s.Failed)
}

// NewNotifier builds the notifier of a plan's notify: block; nil when the
// block names no receiver. A receiver whose HTTP client cannot be
// built (a missing CA file) is kept: each send to it fails and is counted.
func NewNotifier(cfg NotifyConfig) *Notifier {
	if len(cfg.Alertmanager)+len(cfg.Webhook) == 0 {
		return nil
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultNotifyTimeout
	}
	if cfg.Hold <= 0 {
		cfg.Hold = DefaultNotifyHold
	}
	n := &Notifier{cfg: cfg, slots: make(chan struct{}, MaxInFlight)}
	add := func(kind string, rs []NotifyReceiver) {
		for _, r := range rs {
			c, err := config.NewClientFromConfig(r.HTTPConfig, "lanectl_notify_"+kind, config.WithUserAgent("lanectl"))
			if err != nil {
				err = fmt.Errorf("build http client: %w", err)
			}
			n.receivers = append(n.receivers, &receiver{kind: kind, url: r.URL, client: c, clientErr: err})
		}
	}
	add("alertmanager", cfg.Alertmanager)
	add("webhook", cfg.Webhook)
	return n
}

// enqueue queues do for every receiver of kind. ctx is the command's; the
// send's deadline starts now.
func (n *Notifier) enqueue(ctx context.Context, kind, what string, do func(ctx context.Context, r *receiver, c *http.Client) error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.base == nil {
		n.base, n.cancel = context.WithCancel(ctx)
	}
	for _, r := range n.receivers {
		if r.kind != kind {
			continue
		}
		label := fmt.Sprintf("%s %s: %s", r.kind, query.RedactURL(r.url), what)
		switch {
		case r.clientErr != nil:
			n.failures = append(n.failures, fmt.Sprintf("%s: %v", label, r.clientErr))
			continue
		case len(r.queue) >= maxQueued:
			n.failures = append(n.failures, fmt.Sprintf("%s: dropped: %d sends already waiting for this receiver", label, maxQueued))
			continue
		}
		sctx, cancel := context.WithTimeout(n.base, n.cfg.Timeout)
		r.queue = append(r.queue, send{what: label, ctx: sctx, cancel: cancel, receiver: r,
			do: func(ctx context.Context, c *http.Client) error { return do(ctx, r, c) }})
		if !r.running {
			r.running = true
			n.wg.Add(1)
			go n.drain(r)
		}
	}
}

// drain runs r's queued sends in order until the queue is empty.
func (n *Notifier) drain(r *receiver) {
	defer n.wg.Done()
	for {
		n.mu.Lock()
		if len(r.queue) == 0 {
			r.running = false
			n.mu.Unlock()
			return
		}
		s := r.queue[0]
		r.queue = r.queue[1:]
		n.mu.Unlock()

		err := n.run(s)
		s.cancel()
		n.mu.Lock()
		if err != nil {
			n.failures = append(n.failures, fmt.Sprintf("%s: %v", s.what, err))
		} else {
			n.sent++
		}
		n.mu.Unlock()
	}
}

func (n *Notifier) run(s send) error {
	select {
	case n.slots <- struct{}{}:
	case <-s.ctx.Done():
		return fmt.Errorf("not sent: %w", context.Cause(s.ctx))
	}
	defer func() { <-n.slots }()
	return s.do(s.ctx, s.receiver.client)
}

// Flush waits for the sends queued so far (at most the send timeout and a
// second), cancels any still running and waits for them to end. It returns
// this command's counts and one line per failure, and resets both.
func (n *Notifier) Flush() (NotifyStats, []string) {
	if n == nil {
		return NotifyStats{}, nil
	}
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	timer := time.NewTimer(n.cfg.Timeout + flushSlack)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		n.mu.Lock()
		if n.cancel != nil {
			n.cancel()
		}
		n.mu.Unlock()
		<-done
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cancel != nil {
		n.cancel()
	}
	n.base, n.cancel = nil, nil
	for _, r := range n.receivers {
		if r.client != nil {
			r.client.CloseIdleConnections()
		}
	}
	stats := NotifyStats{Sent: n.sent, Failed: len(n.failures)}
	failures := n.failures
	n.sent, n.failures, n.commands = 0, nil, nil
	return stats, failures
}

// CommandRun is one remote command a step ran, as a webhook document
// shows it.
type CommandRun struct {
	Replica    string  `json:"replica"`
	Command    string  `json:"command"`
	ExitStatus int     `json:"exit_status"`
	Seconds    float64 `json:"duration_seconds"`
	Error      string  `json:"error,omitempty"`
}

// Runner wraps r so that every command it runs is remembered for the next
// notification. Checker and Describer calls pass through.
func (n *Notifier) Runner(r Runner) Runner {
	if n == nil || r == nil {
		return r
	}
	return recordingRunner{inner: r, n: n}
}

type recordingRunner struct {
	inner Runner
	n     *Notifier
}

func (rr recordingRunner) Run(ctx context.Context, r Replica, command string) (Output, error) {
	out, err := rr.inner.Run(ctx, r, command)
	c := CommandRun{Replica: r.Name, Command: command, ExitStatus: out.ExitStatus, Seconds: out.Duration.Seconds()}
	if err != nil {
		c.Error = err.Error()
	}
	rr.n.mu.Lock()
	rr.n.commands = append(rr.n.commands, c)
	rr.n.mu.Unlock()
	return out, err
}

func (rr recordingRunner) Check(ctx context.Context, r Replica) error {
	if c, ok := rr.inner.(Checker); ok {
		return c.Check(ctx, r)
	}
	return nil
}

func (rr recordingRunner) Describe(r Replica) string { return describe(rr.inner, r) }

// takeCommands returns the commands run since the last notification.
func (n *Notifier) takeCommands() []CommandRun {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := n.commands
	n.commands = nil
	if c == nil {
		c = []CommandRun{}
	}
	return c
}
