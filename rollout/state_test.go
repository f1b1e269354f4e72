package rollout

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLoadStateMissingIsEmpty(t *testing.T) {
	s, err := LoadState(filepath.Join(t.TempDir(), "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Events) != 0 {
		t.Errorf("got %d events, want 0", len(s.Events))
	}
	if _, ok := s.EnabledAt("n1"); ok {
		t.Error("EnabledAt on empty state: got enabled, want not")
	}
	if p := s.Pending(); len(p) != 0 {
		t.Errorf("Pending on empty state: got %v, want none", p)
	}
}

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func at(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

// record replays events through Record so each one also goes through the
// disk round trip.
func record(t *testing.T, events ...Event) *State {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.json")
	s, err := LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if e.Step != StepSoak && e.Phase != PhaseStarted {
			// End the latest open start of the same step and batch.
			for _, p := range slices.Backward(s.Pending()) {
				if p.Step == e.Step && slices.Equal(p.Replicas, e.Replicas) {
					e.Of = p.ID
					break
				}
			}
		}
		if _, err := s.Record(e); err != nil {
			t.Fatal(err)
		}
	}
	back, err := LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Events) != len(events) {
		t.Fatalf("reloaded %d events, want %d", len(back.Events), len(events))
	}
	return back
}

func ev(min int, step, phase string, replicas ...string) Event {
	return Event{Time: at(min), Step: step, Phase: phase, Replicas: replicas}
}

func TestStateReplay(t *testing.T) {
	type want struct {
		enabled   map[string]int // replica -> minute enabled; absent = off
		pending   string         // "step phase replicas" or ""
		lastBatch string
	}
	tests := []struct {
		name   string
		events []Event
		want   want
	}{
		{
			name: "enable finished",
			events: []Event{
				ev(0, StepEnable, PhaseStarted, "n1"),
				ev(1, StepEnable, PhaseFinished, "n1"),
			},
			want: want{enabled: map[string]int{"n1": 1}, lastBatch: "n1@1"},
		},
		{
			name:   "enable interrupted",
			events: []Event{ev(0, StepEnable, PhaseStarted, "n1")},
			want:   want{pending: "enable started n1"},
		},
		{
			name: "second batch of two",
			events: []Event{
				ev(0, StepEnable, PhaseStarted, "n1"),
				ev(1, StepEnable, PhaseFinished, "n1"),
				{Time: at(70), Step: StepSoak, Phase: PhaseFinished, Replicas: []string{"n1"}, Verdict: "pass"},
				ev(71, StepEnable, PhaseStarted, "n2", "n3"),
				ev(72, StepEnable, PhaseFinished, "n2", "n3"),
			},
			want: want{enabled: map[string]int{"n1": 1, "n2": 72, "n3": 72}, lastBatch: "n2,n3@72"},
		},
		{
			name: "verification failed and rolled back",
			events: []Event{
				ev(0, StepEnable, PhaseStarted, "n1"),
				ev(1, StepEnable, PhaseFinished, "n1"),
				ev(2, StepEnable, PhaseStarted, "n2"),
				ev(3, StepEnable, PhaseFailed, "n2"),
				ev(3, StepDisable, PhaseStarted, "n2"),
				ev(4, StepDisable, PhaseFinished, "n2"),
			},
			want: want{enabled: map[string]int{"n1": 1}, lastBatch: "n1@1"},
		},
		{
			name: "rollback interrupted: replica no longer counts as on",
			events: []Event{
				ev(0, StepEnable, PhaseStarted, "n1"),
				ev(1, StepEnable, PhaseFinished, "n1"),
				ev(5, StepDisable, PhaseStarted, "n1"),
			},
			want: want{pending: "disable started n1"},
		},
		{
			name: "one of a batch rolled back: the rest still soak",
			events: []Event{
				ev(0, StepEnable, PhaseStarted, "n1"),
				ev(1, StepEnable, PhaseFinished, "n1"),
				ev(9, StepEnable, PhaseStarted, "n2", "n3"),
				ev(10, StepEnable, PhaseFinished, "n2", "n3"),
				ev(20, StepDisable, PhaseStarted, "n3"),
				ev(21, StepDisable, PhaseFinished, "n3"),
			},
			want: want{enabled: map[string]int{"n1": 1, "n2": 10}, lastBatch: "n2@10"},
		},
		{
			name: "whole last batch rolled back: the previous one decides",
			events: []Event{
				ev(0, StepEnable, PhaseStarted, "n1"),
				ev(1, StepEnable, PhaseFinished, "n1"),
				ev(9, StepEnable, PhaseStarted, "n2"),
				ev(10, StepEnable, PhaseFinished, "n2"),
				ev(20, StepDisable, PhaseStarted, "n2"),
				ev(21, StepDisable, PhaseFinished, "n2"),
			},
			want: want{enabled: map[string]int{"n1": 1}, lastBatch: "n1@1"},
		},
		{
			name: "a rollback of another replica leaves an interrupted enable pending",
			events: []Event{
				ev(0, StepEnable, PhaseStarted, "n1"),
				ev(1, StepEnable, PhaseFinished, "n1"),
				ev(10, StepEnable, PhaseStarted, "n2"),
				ev(20, StepDisable, PhaseStarted, "n1"),
				ev(21, StepDisable, PhaseFinished, "n1"),
			},
			want: want{pending: "enable started n2"},
		},
		{
			name: "soak events do not hide a pending step",
			events: []Event{
				ev(0, StepEnable, PhaseStarted, "n1"),
				{Time: at(1), Step: StepSoak, Phase: PhaseFinished, Replicas: []string{"n0"}, Verdict: "pass"},
			},
			want: want{pending: "enable started n1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := record(t, tt.events...)
			for _, name := range []string{"n1", "n2", "n3"} {
				gotAt, gotOK := s.EnabledAt(name)
				wantMin, wantOK := tt.want.enabled[name]
				if gotOK != wantOK || (wantOK && !gotAt.Equal(at(wantMin))) {
					t.Errorf("EnabledAt(%s) = %v, %v; want %v, %v", name, gotAt, gotOK, at(wantMin), wantOK)
				}
			}
			var pending []string
			for _, p := range s.Pending() {
				pending = append(pending, p.Step+" "+p.Phase+" "+strings.Join(p.Replicas, ","))
			}
			gotPending := strings.Join(pending, "; ")
			if gotPending != tt.want.pending {
				t.Errorf("Pending = %q, want %q", gotPending, tt.want.pending)
			}
			batch, when := s.LastBatch()
			gotBatch := ""
			if len(batch) > 0 {
				gotBatch = strings.Join(batch, ",") + "@" + strconv.Itoa(int(when.Sub(t0).Minutes()))
			}
			if gotBatch != tt.want.lastBatch {
				t.Errorf("LastBatch = %q, want %q", gotBatch, tt.want.lastBatch)
			}
		})
	}
}

func TestRecordRejectsBadEvent(t *testing.T) {
	s, _ := LoadState(filepath.Join(t.TempDir(), "state.json"))
	bad := []Event{
		{Step: StepEnable, Phase: PhaseStarted},
		{Step: StepEnable, Phase: PhaseFinished, Replicas: []string{"n1"}, Of: 7},
		{Step: StepSoak, Phase: PhaseStarted, Replicas: []string{"n1"}},
	}
	for _, e := range bad {
		if _, err := s.Record(e); err == nil {
			t.Errorf("Record(%+v): got nil error, want one", e)
		}
	}
	if _, err := os.Stat(s.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file after a refused Record: got %v, want it not written", err)
	}
}

func TestLockExcludes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	l1, err := AcquireLock(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = AcquireLock(path)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second AcquireLock: got %v, want ErrLocked", err)
	}
	if want := "(pid " + strconv.Itoa(os.Getpid()) + ")"; !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want the holder named %s", err, want)
	}
	if err := l1.Unlock(); err != nil {
		t.Fatal(err)
	}
	l2, err := AcquireLock(path)
	if err != nil {
		t.Fatalf("AcquireLock after Unlock: %v", err)
	}
	if err := l2.Unlock(); err != nil {
		t.Fatal(err)
	}
}

// crashWriterEnv makes the test binary act as a process that records events
// in a loop until it is killed (see TestMain).
const crashWriterEnv = "LANECTL_ROLLOUT_CRASH_WRITER"

// runCrashWriter records events into the journal at path until the process
// is killed. It never returns.
func runCrashWriter(path string) {
	lock, err := AcquireLock(path)
	if err != nil {
		os.Exit(10)
	}
	_ = lock
	s, err := LoadState(path)
	if err != nil {
		os.Exit(11)
	}
	// Large enough that a write takes a while, so kills land mid-write.
	pad := strings.Repeat("x", 64<<10)
	for i := 0; ; i++ {
		if _, err := s.Record(Event{Time: time.Now(), Step: StepSoak, Phase: PhaseFinished, Replicas: []string{"n1"}, Reason: pad + strconv.Itoa(i)}); err != nil {
			os.Exit(12)
		}
		if i == 0 {
			os.Stdout.WriteString("ready\n")
		}
	}
}

// A process killed with SIGKILL while recording leaves a journal that loads,
// with every event it had finished recording, and a lock the next run gets.
func TestRecordSurvivesSIGKILL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	prev := 0
	for round := range 5 {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), crashWriterEnv+"="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 6)
		if _, err := out.Read(buf); err != nil || string(buf) != "ready\n" {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("round %d: helper did not start: %q %v", round, buf, err)
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		s, err := LoadState(path)
		if err != nil {
			t.Fatalf("round %d: journal after SIGKILL does not load: %v", round, err)
		}
		if len(s.Events) <= prev {
			t.Errorf("round %d: got %d events, want more than the %d before", round, len(s.Events), prev)
		}
		prev = len(s.Events)
		lock, err := AcquireLock(path)
		if err != nil {
			t.Fatalf("round %d: lock after SIGKILL: %v", round, err)
		}
		if err := lock.Unlock(); err != nil {
			t.Fatal(err)
		}
	}
	// Each AcquireLock above cleared the temporary files the killed writer
	// left behind.
	if tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".state.json.*.tmp")); len(tmps) != 0 {
		t.Errorf("got leftover temporary files %v, want none after AcquireLock", tmps)
	}
}
