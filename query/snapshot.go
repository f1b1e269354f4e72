package query

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/prometheus/prometheus/tsdb"
)

// Endpoint is one /metrics URL to scrape, with the client that reaches it
// (bearer token, TLS: built from the replica's HTTPClientConfig).
type Endpoint struct {
	URL    string
	Client *http.Client
}

// Snapshot is one fresh scrape of a set of endpoints, held in a private
// TSDB so PromQL can be evaluated with the upstream engine over what they
// export right now, across all of them: "the highest commit index any
// replica reports" is one query. Every sample carries job and instance as
// the embedded store gives them, and up records which endpoints answered.
type Snapshot struct {
	*Engine
	// At is the instant every sample was stored at; query at it.
	At time.Time
	// Errs holds, by URL, the endpoints that could not be scraped.
	Errs map[string]error
	db   *tsdb.DB
	dir  string
}

// ScrapeOnce scrapes every endpoint once, concurrently, and returns the
// snapshot. An endpoint that cannot be scraped is not an error (it is in
// Errs and has up == 0); a snapshot that cannot be stored is. Close it.
func ScrapeOnce(ctx context.Context, endpoints []Endpoint, now time.Time, logger *slog.Logger) (*Snapshot, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var sts []*scrapeTarget
	for _, ep := range endpoints {
		u, err := url.Parse(ep.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("scrape: endpoint %s: want an http(s) URL of a /metrics endpoint", RedactURL(ep.URL))
		}
		client := ep.Client
		if client == nil {
			client = http.DefaultClient
		}
		sts = append(sts, newScrapeTarget(u, client, logger))
	}
	db, dir, err := openTSDB(EmbeddedOptions{Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("scrape: %w", err)
	}
	s := &Snapshot{Engine: NewEngine(db, logger), At: now, Errs: map[string]error{}, db: db, dir: dir}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for _, t := range sts {
		wg.Go(func() {
			if err := t.scrape(ctx, db, now); err != nil {
				mu.Lock()
				s.Errs[t.url] = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil, errors.Join(fmt.Errorf("scrape: %w", ctx.Err()), s.Close())
	}
	return s, nil
}

// QueryNow evaluates expr at the instant of the scrape.
func (s *Snapshot) QueryNow(ctx context.Context, expr string) (Vector, Warnings, error) {
	return s.Query(ctx, expr, s.At)
}

// Close releases the snapshot and deletes its files.
func (s *Snapshot) Close() error {
	return errors.Join(s.Engine.Close(), s.db.Close(), os.RemoveAll(s.dir))
}
