package query

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
)

// StoreView reads an embedded store's directory without writing it, while
// another process (a live 'lanectl soak') holds it open and keeps
// scraping. Each query sees the samples that process had committed when the
// query started: its persisted blocks plus its write-ahead log, replayed
// into a private head.
type StoreView struct {
	engine  *Engine
	db      *tsdb.DBReadOnly
	sandbox string
	// tsdb.DBReadOnly is not safe for concurrent use.
	mu sync.Mutex
}

// OpenStoreReadOnly opens the store in dir for reading. The replayed head
// lives in a sandbox directory created next to dir (hard links to its
// chunk files need the same file system) and removed by Close.
func OpenStoreReadOnly(dir string, logger *slog.Logger) (*StoreView, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if _, err := os.Stat(filepath.Join(dir, "wal")); err != nil {
		return nil, fmt.Errorf("embedded store: %s is not a metrics store: %w", dir, err)
	}
	sandbox, err := os.MkdirTemp(filepath.Dir(dir), filepath.Base(dir)+".read-")
	if err != nil {
		return nil, fmt.Errorf("embedded store: read %s: %w", dir, err)
	}
	db, err := tsdb.OpenDBReadOnly(dir, sandbox, logger)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("embedded store: read %s: %w", dir, err), os.RemoveAll(sandbox))
	}
	v := &StoreView{db: db, sandbox: sandbox}
	v.engine = NewEngine(storage.QueryableFunc(db.Querier), logger)
	return v, nil
}

// Query evaluates expr at time at over the store as it is now.
func (v *StoreView) Query(ctx context.Context, expr string, at time.Time) (Vector, Warnings, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.engine.Query(ctx, expr, at)
}

// Close releases the view and removes its sandbox; the store is untouched.
func (v *StoreView) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return errors.Join(v.engine.Close(), v.db.Close(), os.RemoveAll(v.sandbox))
}
