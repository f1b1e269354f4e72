package query

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// boundedTransport puts the two limits on an HTTP exchange that a context
// deadline alone does not give: how long the server may take to start its
// answer (the ResponseHeaderTimeout of an http.Transport, which the
// round tripper prometheus/common builds does not expose) and how many
// bytes the answer may have. A server that accepts and never answers, or
// streams without end, then costs a bounded time and bounded memory.
type boundedTransport struct {
	next          http.RoundTripper
	headerTimeout time.Duration
	maxBytes      int64
}

// errHeaderTimeout is the cause given to a request's context when the
// server has not sent its headers in time.
var errHeaderTimeout = errors.New("response header timeout")

func (t *boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	timer := time.AfterFunc(t.headerTimeout, func() { cancel(errHeaderTimeout) })
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	if !timer.Stop() {
		// The timer fired: whatever came back came too late.
		if err == nil {
			_ = resp.Body.Close()
		}
		cancel(nil)
		return nil, fmt.Errorf("%w: no response headers within %s", ErrTimeout, t.headerTimeout)
	}
	if err != nil {
		cancel(nil)
		return nil, err
	}
	if resp.ContentLength > t.maxBytes {
		_ = resp.Body.Close()
		cancel(nil)
		return nil, t.tooLarge()
	}
	resp.Body = &boundedBody{rc: resp.Body, left: t.maxBytes, cancel: cancel, tooLarge: t.tooLarge}
	return resp, nil
}

func (t *boundedTransport) tooLarge() error {
	return fmt.Errorf("%w: answer is larger than the %s limit on an answer's size", ErrBadResponse, byteSize(t.maxBytes))
}

// boundedBody is an answer's body that fails once it has given more than
// its limit, as http.MaxBytesReader does for a server reading a request.
type boundedBody struct {
	rc       io.ReadCloser
	left     int64
	cancel   context.CancelCauseFunc
	tooLarge func() error
	err      error
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	// One byte past the limit tells an answer of exactly the limit from a
	// larger one.
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	if int64(n) > b.left {
		b.err = b.tooLarge()
		return int(b.left), b.err
	}
	b.left -= int64(n)
	return n, err
}

func (b *boundedBody) Close() error {
	defer b.cancel(nil)
	return b.rc.Close()
}

// byteSize writes n as a whole number of MiB or KiB where it is one.
func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}
