package targets_test

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/lanectl/lanectl/node/replica"
	"github.com/lanectl/lanectl/query/promtest"
	"github.com/lanectl/lanectl/targets"
	"github.com/lanectl/lanectl/targets/elastickvtest"
)

// TestLanectlNamesAreExported starts a real three-replica cluster (raft
// over loopback) and checks that every replica's registry exports each
// metric name of the lanectl target, so the gates never read a name the
// replica does not have.
func TestLanectlNamesAreExported(t *testing.T) {
	want := []string{
		targets.LanectlDropped, targets.LanectlErrors, targets.LanectlSent, targets.LanectlQueueDepth,
		targets.LanectlQueueWait, targets.LanectlLanesEnabled, targets.LanectlSyncMode, targets.LanectlLeaderChanges,
		targets.LanectlTerm, targets.LanectlCommitIndex, targets.LanectlAppliedIndex, targets.LanectlLastContact,
		targets.LanectlIsLeader, targets.LanectlProcessStartTime,
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := replica.StartLocalCluster(ctx, replica.LocalClusterConfig{
		Replicas: 3,
		Dir:      t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	exported := func(i int) []string {
		fams, err := c.Replica(i).Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range fams {
			names = append(names, f.GetName())
		}
		return names
	}
	for i := range c.N() {
		promtest.Eventually(t, 30*time.Second, "replica "+c.Name(i)+" to export every lanectl name", func() bool {
			names := exported(i)
			for _, w := range want {
				if !slices.Contains(names, w) {
					return false
				}
			}
			return true
		})
	}
	// The test above would pass for a name listed nowhere; so check the
	// list covers the presence metric every gate set leans on.
	if !slices.Contains(want, targets.Lanectl().PresenceMetric) {
		t.Errorf("presence metric %s is not among the names checked", targets.Lanectl().PresenceMetric)
	}
}

// TestElastickvNamesAreInTheCaptures checks every metric name of the
// elastickv target against the real scrapes of stock elastickv.
func TestElastickvNamesAreInTheCaptures(t *testing.T) {
	names := []string{
		targets.ElastickvDropped, targets.ElastickvErrors, targets.ElastickvErrorsByCode, targets.ElastickvSendStream,
		targets.ElastickvSnapshotSends, targets.ElastickvSnapshotBytes, targets.ElastickvStepQueueFull,
		targets.ElastickvLeaderChanges, targets.ElastickvLastContact,
		targets.ElastickvLocalState, targets.ElastickvLeaderIdentity, targets.ElastickvCommitIndex,
		targets.ElastickvAppliedIndex, targets.ElastickvFSMPending, targets.ElastickvTerm, targets.ElastickvSyncMode,
	}
	// ElastickvProposalsFailed is left out: elastickv creates it on the
	// first failed proposal, and the captured cluster had none.
	seen := map[string]bool{}
	for _, capture := range []string{"legacy-n1", "legacy-n2", "legacy-n3", "n2-fourlane-n1", "n2-fourlane-n2", "n2-fourlane-n3"} {
		body, err := elastickvtest.Capture(capture)
		if err != nil {
			t.Fatal(err)
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%s: %v", capture, err)
		}
		for n := range fams {
			seen[n] = true
		}
	}
	for _, n := range names {
		if !seen[n] {
			t.Errorf("%s is in no capture of stock elastickv", n)
		}
	}
}
