package demo

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/lanectl/lanectl/lanes"
	"github.com/lanectl/lanectl/node"
	"github.com/lanectl/lanectl/node/replica"
	"github.com/lanectl/lanectl/rollout"
)

// restartCommand ends the plan's enable and disable commands. On a host it
// would be "systemctl restart elastickv"; here the runner restarts the
// replica itself once the command succeeded, so the shell has nothing left
// to do.
const restartCommand = ": the replica restarts in-process next"

// localRestarter is the demo's rollout.Runner: rollout.LocalRunner runs the
// plan's command (the env-file rewrite) with sh, then the replica is
// restarted in-process and rereads its env file, as a service restart
// would.
type localRestarter struct {
	sh      rollout.LocalRunner
	cluster *replica.LocalCluster
	dir     string
	// inject is the fault given to the first replica restarted onto the
	// four-lane layout, if any.
	inject node.DropInjection

	mu       sync.Mutex
	injected string
}

// Run runs command on r (this machine) and restarts r with its env file.
// Describe tells the action log what the demo does instead of SSH.
func (l *localRestarter) Describe(rollout.Replica) string {
	return "in a local shell, then an in-process restart"
}

func (l *localRestarter) Run(ctx context.Context, r rollout.Replica, command string) (rollout.Output, error) {
	out, err := l.sh.Run(ctx, r, command)
	if err != nil {
		return out, err
	}
	i, ok := l.cluster.Index(r.Name)
	if !ok {
		return out, fmt.Errorf("restart %s: no such replica in the demo cluster", r.Name)
	}
	env, err := readEnvFile(filepath.Join(l.dir, envFileName(r.Name)))
	if err != nil {
		return out, fmt.Errorf("restart %s: %w", r.Name, err)
	}
	start := replica.LocalStart{Getenv: env.get}
	if mode, _, _ := replica.SettingsFromEnv(env.get); mode == lanes.ModeFourLane {
		start.InjectDrops = l.injection(r.Name)
	}
	if err := l.cluster.Restart(i, start); err != nil {
		return out, err
	}
	return out, nil
}

// injection returns the fault for replica, which gets it only if it is the
// first to be restarted onto the new code path: the story is "the new code
// path drops heartbeats".
func (l *localRestarter) injection(replica string) node.DropInjection {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inject.Every == 0 || (l.injected != "" && l.injected != replica) {
		return node.DropInjection{}
	}
	l.injected = replica
	return l.inject
}

// Injected names the replica given the fault, "" if none.
func (l *localRestarter) Injected() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.injected
}
