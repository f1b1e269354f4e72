package rollout

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// journalNow is the clock the journals in testdata/journals are read at:
// an hour after their last event but one.
var journalNow = time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)

// The journal is checked, not trusted: each bad file is refused with an
// error that names the file and line, the event, and what is wrong, and
// wraps ErrBadJournal.
func TestLoadJournal(t *testing.T) {
	tests := []struct {
		file string
		want string // "" for a good journal
		is   error  // another error the refusal wraps
	}{
		{file: "good.json"},
		{file: "no-time.bad.json", want: "no-time.bad.json:13: event 2: no time"},
		{file: "future-time.bad.json", want: "future-time.bad.json:36: event 4: dated 2026-11-25T14:06:00Z, 6m0s after this machine's clock (2026-11-25T14:00:00Z); more than the 5m0s of clock skew allowed"},
		{file: "duplicate-replica.bad.json", want: `duplicate-replica.bad.json:36: event 4: replica "c1" twice in one event`},
		{file: "finished-names-more.bad.json", want: `finished-names-more.bad.json:13: event 2: enable finished names replica "c1", which its started event 1 does not`},
		{file: "finished-names-fewer.bad.json", want: `finished-names-fewer.bad.json:14: event 2: enable finished leaves out replica "c1", which its started event 1 names`},
		{file: "unknown-event-field.bad.json", want: `unknown-event-field.bad.json:23: event 3: json: unknown field "skip_gates"`},
		{file: "unknown-top-field.bad.json", want: `unknown-top-field.bad.json:46: unknown field "owner"`},
		{file: "foreign-replica.bad.json", want: `foreign-replica.bad.json:36: event 4: names replica "gone": unknown replica`, is: ErrUnknownReplica},
		{file: "ids-out-of-order.bad.json", want: "ids-out-of-order.bad.json:13: event 3: id 3, want 2"},
		{file: "unknown-step.bad.json", want: `unknown-step.bad.json:23: event 3: unknown step "explode"`},
		{file: "no-replicas.bad.json", want: "no-replicas.bad.json:36: event 4: no replicas"},
		{file: "end-without-start.bad.json", want: "end-without-start.bad.json:13: event 2: enable finished ends event 2, which is not a started enable"},
		{file: "future-version.bad.json", want: "future-version.bad.json:2: version 9, this lanectl reads version 1"},
		{file: "no-version.bad.json", want: "no-version.bad.json: no version"},
		{file: "truncated.bad.json", want: "truncated.bad.json: unexpected EOF"},
		{file: "trailing-data.bad.json", want: "trailing-data.bad.json: data after the journal object"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			p := testPlan(t)
			p.StatePath = filepath.Join("testdata", "journals", tt.file)
			st, err := LoadJournal(p, journalNow)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("LoadJournal: %v", err)
				}
				if len(st.Events) != 4 {
					t.Errorf("got %d events, want 4", len(st.Events))
				}
				return
			}
			if err == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			var je *JournalError
			if !errors.As(err, &je) || !errors.Is(err, ErrBadJournal) {
				t.Errorf("got %T %v, want a *JournalError wrapping ErrBadJournal", err, err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("got %v, want it to wrap %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), "journal "+p.StatePath) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got  %v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

// The clock skew allowed is the only slack: an event dated within it loads.
func TestLoadJournalClockSkew(t *testing.T) {
	p := testPlan(t)
	p.StatePath = filepath.Join("testdata", "journals", "good.json")
	// good.json's last event is dated 14:04, four minutes after journalNow.
	if _, err := LoadJournal(p, journalNow); err != nil {
		t.Errorf("event 4 minutes ahead: %v", err)
	}
	if _, err := LoadJournal(p, journalNow.Add(-2*time.Minute)); err == nil || !strings.Contains(err.Error(), "6m0s after") {
		t.Errorf("event 6 minutes ahead: got %v, want it refused", err)
	}
}

// What Record writes, LoadJournal reads back; what it refuses to read,
// Record refuses to write.
func TestRecordRefusesWhatLoadRefuses(t *testing.T) {
	p := testPlan(t)
	s, err := LoadJournal(p, journalNow)
	if err != nil {
		t.Fatal(err)
	}
	started, err := s.Start(StepEnable, []string{"s1", "c1"}, at(0), false)
	if err != nil {
		t.Fatal(err)
	}
	bad := []Event{
		{Step: StepEnable, Phase: PhaseStarted, Replicas: []string{"f1"}},
		{Time: at(1), Step: StepEnable, Phase: PhaseStarted, Replicas: []string{"f1", "f1"}},
		{Time: at(1), Of: started.ID, Step: StepEnable, Phase: PhaseFinished, Replicas: []string{"s1", "f1"}},
	}
	for _, e := range bad {
		if _, err := s.Record(e); err == nil {
			t.Errorf("Record(%+v): got nil error, want one", e)
		}
	}
	if err := s.End(started, PhaseFinished, at(1), ""); err != nil {
		t.Fatal(err)
	}
	back, err := LoadJournal(p, journalNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Events) != 2 {
		t.Errorf("reloaded %d events, want 2", len(back.Events))
	}
}

// Every entry point that reads a plan's journal refuses a bad one before it
// looks at or touches a replica; status no longer shows another plan's
// journal as replicas that are off.
func TestDriverRefusesBadJournal(t *testing.T) {
	for _, file := range []string{"foreign-replica.bad.json", "future-time.bad.json", "duplicate-replica.bad.json"} {
		t.Run(file, func(t *testing.T) {
			p := testPlan(t)
			data, err := os.ReadFile(filepath.Join("testdata", "journals", file))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p.StatePath, data, 0o644); err != nil {
				t.Fatal(err)
			}
			// No runner, prober or querier: reaching one would panic.
			d := &Driver{Plan: p, Now: func() time.Time { return journalNow }, Log: io.Discard}
			calls := map[string]func() error{
				"status":   func() error { _, err := d.Status(t.Context()); return err },
				"dry-run":  func() error { _, err := d.DryRun(); return err },
				"advance":  func() error { _, err := d.Advance(t.Context()); return err },
				"rollback": func() error { _, err := d.Rollback(t.Context(), nil, true); return err },
			}
			for name, call := range calls {
				if err := call(); !errors.Is(err, ErrBadJournal) || !strings.Contains(err.Error(), file) {
					t.Errorf("%s: got %v, want ErrBadJournal naming %s", name, err, file)
				}
			}
		})
	}
}
