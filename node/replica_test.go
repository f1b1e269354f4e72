package node_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/lanectl/lanectl/node/nodetest"
)

func TestClusterSmoke(t *testing.T) {
	c := nodetest.StartCluster(t, 3, nodetest.Options{Env: []nodetest.Env{nodetest.FourLane(), nodetest.FourLane(), nodetest.FourLane()}})
	leader := c.WaitLeader(10 * time.Second)
	var last uint64
	for i := range 20 {
		idx, err := c.Put(i%3, fmt.Sprintf("k%d", i), []byte(fmt.Sprintf("v%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		last = idx
	}
	for i := range 3 {
		c.WaitApplied(i, last, 5*time.Second)
		v, ok, err := c.Get(i, "k7")
		if err != nil || !ok || string(v) != "v7" {
			t.Errorf("replica %d: got %q %v %v, want v7", i, v, ok, err)
		}
	}
	res, err := c.ForceSnapshot(leader, c.Name((leader+1)%3))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("forced: %+v", res)
}
