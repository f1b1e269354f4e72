package lanes

import (
	"fmt"
	"strconv"
	"strings"
)

// Environment variables read by the replica at start-up.
const (
	// FlagEnv selects the four-lane layout when it parses as true.
	FlagEnv = "ELASTICKV_RAFT_DISPATCHER_LANES"
	// SyncModeEnv selects whether applying committed entries fsyncs.
	SyncModeEnv = "ELASTICKV_FSM_SYNC_MODE"
)

// ParseLanesFlag interprets the value of ELASTICKV_RAFT_DISPATCHER_LANES the
// way the upstream store does: strconv.ParseBool after TrimSpace, with an
// empty value meaning false. An unparsable value also means false, and the
// returned warning says so, because a typo such as "yes" would otherwise leave
// the flag off without a word. The warning is empty when the value parsed.
func ParseLanesFlag(value string) (enabled bool, warning string) {
	v := strings.TrimSpace(value)
	if v == "" {
		return false, ""
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Sprintf("%s=%q is not a boolean (want 1/0, true/false, t/f); the four-lane dispatcher stays off", FlagEnv, value)
	}
	return b, ""
}

// SyncMode says whether the state machine fsyncs after applying a batch of
// committed entries. Raft's own log is always fsynced.
type SyncMode uint8

// The sync modes.
const (
	SyncModeSync SyncMode = iota
	SyncModeNoSync
)

// String returns "sync" or "nosync", the `mode` label values.
func (m SyncMode) String() string {
	if m == SyncModeNoSync {
		return "nosync"
	}
	return "sync"
}

// ParseSyncMode interprets ELASTICKV_FSM_SYNC_MODE: "sync" or "nosync",
// trimmed and case-insensitive. Empty means sync. Anything else also means
// sync, the safe choice, with a warning naming the bad value.
func ParseSyncMode(value string) (mode SyncMode, warning string) {
	switch strings.ToLower(strings.TrimSpace(value)) {
	case "", "sync":
		return SyncModeSync, ""
	case "nosync":
		return SyncModeNoSync, ""
	}
	return SyncModeSync, fmt.Sprintf("%s=%q is not sync or nosync; using sync", SyncModeEnv, value)
}
