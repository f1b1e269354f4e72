package targets

// Elastickv is the target of stock upstream elastickv: dispatch counters
// per raft group with no lane label, no sent counter, no lanes gauge and
// no process collector; the flag is proven by the plan's read command.
func Elastickv() Target {
	return Target{
		Name:           "elastickv",
		Summary:        "stock elastickv: counters per raft group, no lane label, no lanes gauge; the flag is proven by commands.read",
		ReplicaLabel:   "node_id",
		PresenceMetric: ElastickvLocalState,
		Gates:          elastickvGates,
		Blind:          elastickvBlind,
		FlagProofs:     []FlagProof{syncModeProof()},
		Drops:          Breakdown{Metric: ElastickvDropped, Label: "group"},
	}
}
