package rollout

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrLocked is returned by AcquireLock when another process holds the lock:
// another advance or rollback is running against the same journal.
var ErrLocked = errors.New("another lanectl run holds the rollout lock")

// Lock is an exclusive flock(2) on "<state>.lock". The kernel drops it when
// the holder exits, SIGKILL included, so a killed run never leaves a stale
// lock behind; the file itself is kept because removing it would let two
// runs lock two different inodes.
type Lock struct {
	f *os.File
}

// LockPath is the lock file guarding the journal at statePath.
func LockPath(statePath string) string { return statePath + ".lock" }

// AcquireLock takes the lock for the journal at statePath without waiting.
// When another process holds it, the error wraps ErrLocked and names the
// holder's pid.
func AcquireLock(statePath string) (*Lock, error) {
	path := LockPath(statePath)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := readHolder(f)
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w%s", path, ErrLocked, holder)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// The pid is only a hint for the message another run prints; the flock
	// is what excludes.
	// Written before truncating, so a reader never sees an empty file.
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	if _, err := f.WriteAt(pid, 0); err == nil {
		_ = f.Truncate(int64(len(pid)))
	}
	removeStaleTemps(statePath)
	return &Lock{f: f}, nil
}

// removeStaleTemps deletes temporary journals a killed run left behind. Only
// the lock holder writes them, so while holding the lock none is in use.
func removeStaleTemps(statePath string) {
	tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(statePath), "."+filepath.Base(statePath)+".*.tmp"))
	for _, t := range tmps {
		_ = os.Remove(t)
	}
}

func readHolder(f *os.File) string {
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	pid := strings.TrimSpace(string(buf[:n]))
	if _, err := strconv.Atoi(pid); err != nil {
		return ""
	}
	return " (pid " + pid + ")"
}

// Unlock releases the lock.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	if err != nil {
		return fmt.Errorf("unlock: %w", err)
	}
	return nil
}
