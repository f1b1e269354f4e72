package query

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
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
	// owner holds the sandbox's lock for the life of the view.
	owner *os.File
	// tsdb.DBReadOnly is not safe for concurrent use.
	mu sync.Mutex
}

// OpenStoreReadOnly opens the store in dir for reading. The replayed head
// lives in a sandbox directory created next to dir (hard links to its
// chunk files need the same file system) and removed by Close. A view holds
// a lock on its sandbox while open, so the sandbox of a view whose process
// was killed is recognised, and removed, by the next view of the store.
func OpenStoreReadOnly(dir string, logger *slog.Logger) (*StoreView, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if _, err := os.Stat(filepath.Join(dir, "wal")); err != nil {
		return nil, fmt.Errorf("embedded store: %s is not a metrics store: %w", dir, err)
	}
	removeAbandonedSandboxes(dir, logger)
	sandbox, err := os.MkdirTemp(filepath.Dir(dir), filepath.Base(dir)+sandboxInfix)
	if err != nil {
		return nil, fmt.Errorf("embedded store: read %s: %w", dir, err)
	}
	owner, err := claimSandbox(sandbox)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("embedded store: read %s: %w", dir, err), os.RemoveAll(sandbox))
	}
	db, err := tsdb.OpenDBReadOnly(dir, sandbox, logger)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("embedded store: read %s: %w", dir, err), os.RemoveAll(sandbox), owner.Close())
	}
	v := &StoreView{db: db, sandbox: sandbox, owner: owner}
	v.engine = NewEngine(storage.QueryableFunc(db.Querier), logger)
	return v, nil
}

// sandboxInfix joins a store's directory name and a random suffix into the
// name of a view's sandbox: metrics.read-123456.
const sandboxInfix = ".read-"

// sandboxLock is the file in a sandbox its view holds locked.
const sandboxLock = "owner.lock"

// claimSandbox locks sandbox for the calling view. The lock file is locked
// before it takes its name, so a sandbox lock that exists and is not held
// belongs to a view that is gone.
func claimSandbox(sandbox string) (*os.File, error) {
	tmp := filepath.Join(sandbox, sandboxLock+".new")
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return nil, errors.Join(fmt.Errorf("lock %s: %w", tmp, err), f.Close())
	}
	if err := os.Rename(tmp, filepath.Join(sandbox, sandboxLock)); err != nil {
		return nil, errors.Join(err, f.Close())
	}
	return f, nil
}

// removeAbandonedSandboxes deletes the sandboxes next to dir whose view is
// gone (its process was killed before Close): their lock is free. A
// sandbox without a lock file is left alone; its view may be starting.
func removeAbandonedSandboxes(dir string, logger *slog.Logger) {
	parent, prefix := filepath.Dir(dir), filepath.Base(dir)+sandboxInfix
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		sandbox := filepath.Join(parent, e.Name())
		f, err := os.Open(filepath.Join(sandbox, sandboxLock))
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			if err := os.RemoveAll(sandbox); err != nil {
				logger.Warn("remove abandoned read sandbox", "dir", sandbox, "err", err)
			} else {
				logger.Info("removed abandoned read sandbox", "dir", sandbox)
			}
		}
		_ = f.Close()
	}
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
	return errors.Join(v.engine.Close(), v.db.Close(), os.RemoveAll(v.sandbox), v.owner.Close())
}
