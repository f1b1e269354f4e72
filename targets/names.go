package targets

// Metric names of the lanectl target: what node and node/replica export
// (the public contract, the README's "Metric names"). A test in this
// package scrapes a real dispatcher and replica registry and checks each
// name is exported.
const (
	LanectlDropped          = "elastickv_raft_dispatch_dropped_total"
	LanectlErrors           = "elastickv_raft_dispatch_errors_total"
	LanectlSent             = "elastickv_raft_dispatch_sent_total"
	LanectlQueueDepth       = "elastickv_raft_dispatch_queue_depth"
	LanectlQueueWait        = "elastickv_raft_dispatch_queue_wait_seconds"
	LanectlLanesEnabled     = "elastickv_raft_dispatcher_lanes_enabled"
	LanectlSyncMode         = "elastickv_fsm_apply_sync_mode"
	LanectlLeaderChanges    = "elastickv_raft_leader_changes_seen_total"
	LanectlTerm             = "elastickv_raft_term"
	LanectlCommitIndex      = "elastickv_raft_commit_index"
	LanectlAppliedIndex     = "elastickv_raft_applied_index"
	LanectlLastContact      = "elastickv_raft_last_contact_seconds"
	LanectlIsLeader         = "elastickv_raft_is_leader"
	LanectlProcessStartTime = "process_start_time_seconds"
)

// Metric names of stock elastickv at upstream commit d9a031d, as the
// captures in elastickvtest show them. Every series carries node_id and
// node_address; the raft series also carry group.
const (
	ElastickvDropped         = "elastickv_raft_dispatch_dropped_total"        // {group}
	ElastickvErrors          = "elastickv_raft_dispatch_errors_total"         // {group}
	ElastickvErrorsByCode    = "elastickv_raft_dispatch_errors_by_code_total" // {group,code}
	ElastickvSendStream      = "elastickv_raft_send_stream_messages_total"    // {group}
	ElastickvSnapshotSends   = "elastickv_raft_snapshot_stream_sends_total"   // {group}
	ElastickvSnapshotBytes   = "elastickv_raft_snapshot_stream_payload_bytes_total"
	ElastickvStepQueueFull   = "elastickv_raft_step_queue_full_total"     // {group}
	ElastickvProposalsFailed = "elastickv_raft_proposals_failed_total"    // {group}
	ElastickvLeaderChanges   = "elastickv_raft_leader_changes_seen_total" // {group}
	ElastickvLastContact     = "elastickv_raft_last_contact_seconds"      // {group}
	ElastickvLocalState      = "elastickv_raft_local_state"               // {group,state}
	ElastickvLeaderIdentity  = "elastickv_raft_leader_identity"           // {group,leader_id,leader_address}
	ElastickvCommitIndex     = "elastickv_raft_commit_index"              // {group}
	ElastickvAppliedIndex    = "elastickv_raft_applied_index"             // {group}
	ElastickvFSMPending      = "elastickv_raft_fsm_pending"               // {group}
	ElastickvTerm            = "elastickv_raft_term"                      // {group}
	ElastickvSyncMode        = "elastickv_fsm_apply_sync_mode"            // {mode}
)
