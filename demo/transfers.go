package demo

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lanectl/lanectl/node/replica"
)

// The multi-raft shape that the four-lane layout is for: every replica runs
// groups raft groups, and all groups' messages to one peer share that peer's
// lanes and connections. Snapshots of one group go to the slow follower
// (see shapedLinks) while the other groups keep appending to it.
const (
	groups = 4
	// snapshotGroup is the group whose snapshots are forced; the appends
	// measured during its transfers are the other groups'.
	snapshotGroup = 0
	// Group 0 is preloaded with preloadValues values of preloadValueBytes
	// each, so its snapshot takes about 1.5s over the link.
	preloadValueBytes = 1 << 20
	preloadValues     = 12
	// catchUpTimeout bounds the wait for the slow follower to catch up
	// with the preload.
	catchUpTimeout = 30 * time.Second
	// transferSlack is added to the link time a forced snapshot's wait
	// allows for.
	transferSlack = 2 * time.Second
	// alignTimeout bounds the wait for the groups' leaders to move.
	alignTimeout = 5 * time.Second
)

// preload fills the snapshot group's store so that each of its snapshots is
// a multi-MiB transfer. It writes through the leader of that group.
func preload(ctx context.Context, c *replica.LocalCluster) error {
	value := make([]byte, preloadValueBytes)
	for i := range value {
		value[i] = byte(i*31 + i>>8)
	}
	written := 0
	for i := 0; written < preloadValues; i++ {
		key := fmt.Sprintf("preload/%d", i)
		if replica.KeyGroup(key, groups) != snapshotGroup {
			continue
		}
		li, why := c.GroupLeader(snapshotGroup)
		if li < 0 {
			return fmt.Errorf("preload group %d: %s", snapshotGroup, why)
		}
		if _, err := c.Replica(li).Put(ctx, key, value); err != nil {
			return fmt.Errorf("preload group %d: %w", snapshotGroup, err)
		}
		written++
	}
	return waitCaughtUp(ctx, c)
}

// waitCaughtUp waits until the slow follower has applied what the
// snapshot group's leader has committed, so the first measured transfer
// does not queue behind the preload's bytes on the link.
func waitCaughtUp(ctx context.Context, c *replica.LocalCluster) error {
	deadline := time.Now().Add(catchUpTimeout)
	for {
		li, why := c.GroupLeader(snapshotGroup)
		leader, slow := c.Replica(max(li, 0)), c.Replica(slowFollower)
		if li >= 0 && leader != nil && slow != nil &&
			slow.Status().Groups[snapshotGroup].Applied >= leader.Status().Groups[snapshotGroup].Commit {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not catch up with the preload of group %d within %v (%s)", c.Name(slowFollower), snapshotGroup, catchUpTimeout, why)
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// snapshotLoop forces a snapshot of snapshotGroup from its leader to the
// slow follower every interval, one at a time, after moving the other
// groups' leadership to that leader, so that their appends to the follower
// share its lanes with the snapshot.
type snapshotLoop struct {
	cluster  *replica.LocalCluster
	trace    *transferTrace
	interval time.Duration
	logf     func(format string, args ...any)

	mu      sync.Mutex
	forced  int
	failed  int
	lastErr string
}

func (l *snapshotLoop) run(ctx context.Context) {
	for {
		began := time.Now()
		err := l.once(ctx)
		if ctx.Err() != nil {
			return
		}
		l.mu.Lock()
		if err != nil {
			l.failed++
			l.lastErr = err.Error()
		} else {
			l.forced++
		}
		l.mu.Unlock()
		if sleep(ctx, time.Until(began.Add(l.interval))) != nil {
			return
		}
	}
}

// counts are the forced snapshots so far and the last failure.
func (l *snapshotLoop) counts() (forced, failed int, lastErr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.forced, l.failed, l.lastErr
}

// once forces one snapshot and waits for it to arrive.
func (l *snapshotLoop) once(ctx context.Context) error {
	li, err := l.align(ctx, alignTimeout)
	if err != nil {
		return err
	}
	leader := l.cluster.Replica(li)
	if leader == nil {
		return fmt.Errorf("force snapshot: %s stopped", l.cluster.Name(li))
	}
	// Drain an arrival signalled for an earlier transfer.
	select {
	case <-l.trace.arrived:
	default:
	}
	res, err := leader.ForceSnapshot(ctx, snapshotGroup, l.cluster.Name(slowFollower))
	if err != nil {
		return fmt.Errorf("force snapshot of group %d from %s to %s: %w", snapshotGroup, l.cluster.Name(li), l.cluster.Name(slowFollower), err)
	}
	// The transfer should take the link's time for its bytes; three times
	// that and a little more is plenty, and a restart of either end cuts
	// it off sooner.
	timeout := transferSlack + 3*time.Duration(float64(res.SnapshotBytes)/linkBytesPerSecond*float64(time.Second))
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-l.trace.arrived:
			return nil
		case <-deadline.C:
			return fmt.Errorf("snapshot of group %d from %s did not reach %s within %v", snapshotGroup, l.cluster.Name(li), l.cluster.Name(slowFollower), timeout)
		case <-poll.C:
			if l.cluster.Replica(li) != leader || l.cluster.Replica(slowFollower) == nil {
				return fmt.Errorf("snapshot of group %d from %s to %s cut off by a restart", snapshotGroup, l.cluster.Name(li), l.cluster.Name(slowFollower))
			}
		}
	}
}

// preferredLeader is where every group's leadership goes: the first
// replica in rollout order, other than the slow follower, still on the
// legacy layout; once there is none, the first other running one. The
// leader a restart takes away is then the one whose groups all elect anew,
// as every baseline sees too.
func (l *snapshotLoop) preferredLeader() (int, error) {
	fallback := -1
	for i := range l.cluster.N() {
		r := l.cluster.Replica(i)
		if i == slowFollower || r == nil {
			continue
		}
		if !r.Status().LanesEnabled {
			return i, nil
		}
		if fallback < 0 {
			fallback = i
		}
	}
	if fallback < 0 {
		return -1, errors.New("no replica other than the slow follower is running")
	}
	return fallback, nil
}

// align moves the leadership of every group to the preferred leader and
// waits up to timeout until every replica agrees; it returns the leader's
// index.
func (l *snapshotLoop) align(ctx context.Context, timeout time.Duration) (int, error) {
	want, err := l.preferredLeader()
	if err != nil {
		return -1, err
	}
	deadline := time.Now().Add(timeout)
	moved := false
	for {
		aligned := true
		for g := range uint64(groups) {
			li, _ := l.cluster.GroupLeader(g)
			if li == want {
				continue
			}
			aligned = false
			if li < 0 {
				continue
			}
			if r := l.cluster.Replica(li); r != nil {
				// A refusal (the leader just lost the group) is retried
				// on the next round.
				if r.TransferLeadership(ctx, g, l.cluster.Name(want)) == nil {
					moved = true
				}
			}
		}
		if aligned {
			if moved {
				l.logf("moved the leadership of every group to %s, so the other groups' appends to %s share its lanes with the snapshots", l.cluster.Name(want), l.cluster.Name(slowFollower))
			}
			return want, nil
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("the leaders of all %d groups did not move to %s within %v", groups, l.cluster.Name(want), timeout)
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return -1, err
		}
	}
}
