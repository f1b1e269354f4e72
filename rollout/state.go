package rollout

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lanectl/lanectl/internal/atomicfile"
)

// stateVersion is written into every journal; a newer file is refused
// rather than misread.
const stateVersion = 1

// Steps a journal records.
const (
	// StepEnable sets the flag on a batch of replicas and verifies it.
	StepEnable = "enable"
	// StepDisable clears the flag on a batch of replicas and verifies it:
	// an automatic rollback or 'lanectl rollback'.
	StepDisable = "disable"
	// StepSoak is a soak verdict on the most recently enabled batch.
	StepSoak = "soak"
)

// Phases of a step.
const (
	PhaseStarted  = "started"
	PhaseFinished = "finished"
	PhaseFailed   = "failed"
)

// Event is one journal entry. An enable or disable step is journalled as
// "started" before anything runs and as "finished" or "failed" after
// verification, so a started step with neither is a step that was
// interrupted.
type Event struct {
	// ID numbers events from 1 in journal order.
	ID int `json:"id"`
	// Of is, on a finished or failed event, the ID of the started event it
	// ends.
	Of       int       `json:"of,omitempty"`
	Time     time.Time `json:"time"`
	Step     string    `json:"step"`
	Phase    string    `json:"phase"`
	Replicas []string  `json:"replicas"`
	// Verdict and WindowStart/WindowEnd are set on soak events.
	Verdict     string    `json:"verdict,omitempty"`
	WindowStart time.Time `json:"window_start,omitzero"`
	WindowEnd   time.Time `json:"window_end,omitzero"`
	// Reason says why a step failed, or which gates decided a verdict.
	Reason string `json:"reason,omitempty"`
	// Auto marks a disable that advance ran by itself after a failed
	// verification.
	Auto bool `json:"auto,omitempty"`
	// FlagRead is, on a finished enable, what the plan's read command
	// printed on each replica when the step verified (see FlagEvidence).
	FlagRead map[string]string `json:"flag_read,omitempty"`
}

// State is the rollout journal. Everything else (who has the flag, since
// when, what is in flight) is derived from Events, so there is one source of
// truth to write atomically.
type State struct {
	// Path is where the journal lives.
	Path   string  `json:"-"`
	Events []Event `json:"events"`
	// lines maps an event ID to its line in the file as loaded, for errors.
	lines map[int]int
}

// stateFile is the journal on disk. LoadState decodes it strictly: a field
// it does not know is an error, not something to drop.
type stateFile struct {
	Version int     `json:"version"`
	Events  []Event `json:"events"`
}

// ErrBadJournal is returned (in a *JournalError) when the journal file is
// malformed, contradicts itself, or does not belong to the plan: it is
// refused rather than trusted, and the rollout stops until a person looks.
var ErrBadJournal = errors.New("journal refused")

// JournalError says where a journal is wrong.
type JournalError struct {
	Path string
	// Line is the line of the event (or of the problem) in the file, 0
	// when unknown.
	Line int
	// Event is the ID of the offending event, 0 for the file as a whole.
	Event int
	Err   error
}

// Error names the journal, the line and the event, and what is wrong.
func (e *JournalError) Error() string {
	where := e.Path
	if e.Line > 0 {
		where += ":" + strconv.Itoa(e.Line)
	}
	if e.Event > 0 {
		where += ": event " + strconv.Itoa(e.Event)
	}
	return fmt.Sprintf("journal %s: %v (the journal is not trusted: fix it or move it away)", where, e.Err)
}

// Unwrap returns ErrBadJournal and the problem itself.
func (e *JournalError) Unwrap() []error { return []error{ErrBadJournal, e.Err} }

// LoadState reads the journal at path and checks that it is well-formed
// and consistent in itself (see check). A missing file is an empty journal:
// nothing has been done yet. LoadJournal also checks it against a plan and
// the clock; code that acts on a plan reads the journal through it.
func LoadState(path string) (*State, error) {
	s := &State{Path: path}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	f, lines, err := decodeStateFile(data)
	if err != nil {
		var je *JournalError
		if errors.As(err, &je) {
			je.Path = path
			return nil, je
		}
		return nil, &JournalError{Path: path, Err: err}
	}
	s.lines = map[int]int{}
	for i, e := range f.Events {
		if err := s.check(e); err != nil {
			return nil, &JournalError{Path: path, Line: lines[i], Event: e.ID, Err: err}
		}
		s.Events = append(s.Events, e)
		s.lines[e.ID] = lines[i]
	}
	return s, nil
}

// decodeStateFile decodes a journal strictly, and returns the line each
// event starts on so errors can point at it. encoding/json reports neither
// positions of unknown fields nor keys repeated at the top, so the top
// object is walked token by token.
func decodeStateFile(data []byte) (stateFile, []int, error) {
	var f stateFile
	var lines []int
	lineAt := func(off int64) int {
		for off < int64(len(data)) && strings.ContainsRune(" \t\r\n,", rune(data[off])) {
			off++
		}
		return 1 + bytes.Count(data[:off], []byte("\n"))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := expectDelim(dec, '{'); err != nil {
		return f, nil, err
	}
	seen := map[string]bool{}
	for dec.More() {
		off := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return f, nil, err
		}
		key, _ := tok.(string)
		if seen[key] {
			return f, nil, &JournalError{Line: lineAt(off), Err: fmt.Errorf("field %q twice", key)}
		}
		seen[key] = true
		switch key {
		case "version":
			// Checked first: a newer journal is refused as newer, not for
			// the fields this lanectl does not know.
			if err := dec.Decode(&f.Version); err != nil {
				return f, nil, &JournalError{Line: lineAt(off), Err: fmt.Errorf("version: %w", err)}
			}
			if f.Version != stateVersion {
				return f, nil, &JournalError{Line: lineAt(off), Err: fmt.Errorf("version %d, this lanectl reads version %d", f.Version, stateVersion)}
			}
		case "events":
			if err := expectDelim(dec, '['); err != nil {
				return f, nil, &JournalError{Line: lineAt(off), Err: fmt.Errorf("events: %w", err)}
			}
			for dec.More() {
				line := lineAt(dec.InputOffset())
				var e Event
				if err := dec.Decode(&e); err != nil {
					return f, nil, &JournalError{Line: line, Err: fmt.Errorf("event %d: %w", len(f.Events)+1, err)}
				}
				f.Events = append(f.Events, e)
				lines = append(lines, line)
			}
			if err := expectDelim(dec, ']'); err != nil {
				return f, nil, err
			}
		default:
			return f, nil, &JournalError{Line: lineAt(off), Err: fmt.Errorf("unknown field %q", key)}
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return f, nil, err
	}
	if !seen["version"] {
		return f, nil, errors.New("no version")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return f, nil, errors.New("data after the journal object")
	}
	return f, lines, nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	if err != nil {
		return err
	}
	if tok != want {
		return fmt.Errorf("got %v, want %q", tok, want)
	}
	return nil
}

// check validates e as the next event of s: a journal that breaks any of
// these rules was not written by lanectl, or was edited by hand.
func (s *State) check(e Event) error {
	if want := s.nextID(); e.ID != want {
		return fmt.Errorf("id %d, want %d", e.ID, want)
	}
	if e.Time.IsZero() {
		return errors.New("no time")
	}
	switch e.Step {
	case StepEnable, StepDisable, StepSoak:
	default:
		return fmt.Errorf("unknown step %q", e.Step)
	}
	switch e.Phase {
	case PhaseStarted, PhaseFinished, PhaseFailed:
	default:
		return fmt.Errorf("unknown phase %q", e.Phase)
	}
	if len(e.Replicas) == 0 {
		return errors.New("no replicas")
	}
	for i, n := range e.Replicas {
		if n == "" {
			return errors.New("an empty replica name")
		}
		if slices.Contains(e.Replicas[:i], n) {
			return fmt.Errorf("replica %q twice in one event", n)
		}
	}
	switch {
	case e.Step == StepSoak:
		if e.Of != 0 || e.Phase == PhaseStarted {
			return errors.New("a soak verdict is a single finished or failed event")
		}
	case e.Phase == PhaseStarted:
		if e.Of != 0 {
			return errors.New("a started event ends nothing")
		}
	default:
		i := slices.IndexFunc(s.Events, func(o Event) bool { return o.ID == e.Of })
		if i < 0 || s.Events[i].Phase != PhaseStarted || s.Events[i].Step != e.Step {
			return fmt.Errorf("%s %s ends event %d, which is not a started %s", e.Step, e.Phase, e.Of, e.Step)
		}
		if slices.ContainsFunc(s.Events, func(o Event) bool { return o.Of == e.Of }) {
			return fmt.Errorf("event %d already ended", e.Of)
		}
		started := s.Events[i].Replicas
		for _, n := range e.Replicas {
			if !slices.Contains(started, n) {
				return fmt.Errorf("%s %s names replica %q, which its started event %d does not", e.Step, e.Phase, n, e.Of)
			}
		}
		for _, n := range started {
			if !slices.Contains(e.Replicas, n) {
				return fmt.Errorf("%s %s leaves out replica %q, which its started event %d names", e.Step, e.Phase, n, e.Of)
			}
		}
	}
	return nil
}

// MaxClockSkew is how far in the future of this machine's clock a journal
// event may be dated: the journal may have been written on another
// operator's machine whose clock runs a little ahead. Anything later is a
// clock badly wrong or a hand-edited journal, and would make soak windows
// look older or younger than they are.
const MaxClockSkew = 5 * time.Minute

// LoadJournal reads p's journal and checks it: against itself (LoadState),
// against the clock (no event later than now plus MaxClockSkew) and against
// the plan (every replica it names is one of p's). It is the one way
// commands that act on or report about a plan read its journal; any
// refusal is a *JournalError wrapping ErrBadJournal.
func LoadJournal(p *Plan, now time.Time) (*State, error) {
	st, err := LoadState(p.StatePath)
	if err != nil {
		return nil, err
	}
	latest := now.Add(MaxClockSkew)
	for _, e := range st.Events {
		bad := func(err error) error {
			return &JournalError{Path: st.Path, Line: st.lines[e.ID], Event: e.ID, Err: err}
		}
		if e.Time.After(latest) {
			return nil, bad(fmt.Errorf("dated %s, %v after this machine's clock (%s); more than the %v of clock skew allowed", e.Time.UTC().Format(time.RFC3339), e.Time.Sub(now).Round(time.Second), now.UTC().Format(time.RFC3339), MaxClockSkew))
		}
		for _, n := range e.Replicas {
			if _, ok := p.Replica(n); !ok {
				return nil, bad(fmt.Errorf("names replica %q: %w (the plan was edited during the rollout, or this is another plan's journal; restore the plan or move the journal away)", n, ErrUnknownReplica))
			}
		}
	}
	return st, nil
}

func (s *State) nextID() int {
	if len(s.Events) == 0 {
		return 1
	}
	return s.Events[len(s.Events)-1].ID + 1
}

// Record appends e to the journal, numbering it, and writes the journal to
// disk atomically. It returns e as recorded. The caller must hold the Lock
// for s.Path.
func (s *State) Record(e Event) (Event, error) {
	e.ID = s.nextID()
	if err := s.check(e); err != nil {
		return e, fmt.Errorf("record %s %s: %w", e.Step, e.Phase, err)
	}
	e.Time = e.Time.UTC()
	e.Replicas = slices.Clone(e.Replicas)
	next := append(slices.Clip(s.Events), e)
	data, err := json.MarshalIndent(stateFile{Version: stateVersion, Events: next}, "", "  ")
	if err != nil {
		return e, fmt.Errorf("record %s %s: %w", e.Step, e.Phase, err)
	}
	if err := atomicfile.Write(s.Path, append(data, '\n'), 0o644); err != nil {
		return e, fmt.Errorf("record %s %s: %w", e.Step, e.Phase, err)
	}
	s.Events = next
	return e, nil
}

// Start journals the start of an enable or disable step.
func (s *State) Start(step string, replicas []string, now time.Time, auto bool) (Event, error) {
	return s.Record(Event{Time: now, Step: step, Phase: PhaseStarted, Replicas: replicas, Auto: auto})
}

// End journals how a started step ended: PhaseFinished or PhaseFailed.
func (s *State) End(started Event, phase string, now time.Time, reason string) error {
	_, err := s.Record(Event{Of: started.ID, Time: now, Step: started.Step, Phase: phase, Replicas: started.Replicas, Reason: reason, Auto: started.Auto})
	return err
}

// ReplicaState is what the journal says about one replica.
type ReplicaState struct {
	// Enabled is true after a finished enable with no finished or started
	// disable since.
	Enabled bool
	// EnabledAt is when the enable was verified: the start of its soak.
	EnabledAt time.Time
	// DisabledAt is when the flag was last verified off, zero if never.
	DisabledAt time.Time
	// LastSoak is the latest soak event naming the replica, if any.
	LastSoak *Event
	// LastFailure is the latest failed step naming the replica, if any.
	LastFailure *Event
}

// Replica replays the journal for one replica.
func (s *State) Replica(name string) ReplicaState {
	var rs ReplicaState
	for i := range s.Events {
		e := &s.Events[i]
		if !slices.Contains(e.Replicas, name) {
			continue
		}
		switch {
		case e.Step == StepEnable && e.Phase == PhaseFinished:
			rs.Enabled, rs.EnabledAt = true, e.Time
		case e.Step == StepDisable && e.Phase == PhaseStarted:
			// A disable that started may have cleared the flag before it
			// was interrupted: the replica no longer counts as soaking.
			rs.Enabled = false
		case e.Step == StepDisable && e.Phase == PhaseFinished:
			rs.Enabled, rs.DisabledAt = false, e.Time
		case e.Step == StepSoak:
			rs.LastSoak = e
		}
		if e.Phase == PhaseFailed {
			rs.LastFailure = e
		}
	}
	if !rs.Enabled {
		rs.EnabledAt = time.Time{}
	}
	return rs
}

// EnabledAt returns when the flag was verified on replica, and whether the
// journal says it is on now.
func (s *State) EnabledAt(replica string) (time.Time, bool) {
	rs := s.Replica(replica)
	return rs.EnabledAt, rs.Enabled
}

// Pending returns the enable and disable steps that were started and
// neither finished nor failed, oldest first: a run was interrupted in the
// middle of them.
func (s *State) Pending() []Event {
	ended := map[int]bool{}
	for _, e := range s.Events {
		if e.Of != 0 {
			ended[e.Of] = true
		}
	}
	var out []Event
	for _, e := range s.Events {
		if e.Phase == PhaseStarted && !ended[e.ID] {
			out = append(out, e)
		}
	}
	return out
}

// LastBatch returns the replicas of the most recent finished enable that
// still have the flag, and when that enable finished: the batch whose soak
// decides the next step.
func (s *State) LastBatch() ([]string, time.Time) {
	for i := len(s.Events) - 1; i >= 0; i-- {
		e := s.Events[i]
		if e.Step != StepEnable || e.Phase != PhaseFinished {
			continue
		}
		var still []string
		for _, r := range e.Replicas {
			if at, ok := s.EnabledAt(r); ok && at.Equal(e.Time) {
				still = append(still, r)
			}
		}
		if len(still) > 0 {
			return still, e.Time
		}
	}
	return nil, time.Time{}
}
