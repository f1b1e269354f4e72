package demo

import (
	"context"
	"fmt"
	"net"

	"github.com/lanectl/lanectl/lanes"
	"github.com/lanectl/lanectl/node/holbench"
	"github.com/lanectl/lanectl/node/transport"
)

// The links between the slow follower and the other replicas are shaped
// (holbench.Link: a token bucket per direction, released in 16 KiB pieces,
// so the connections sharing a link interleave as flows on a wire do). A
// snapshot then takes real time on its way, as it does across a network;
// loopback alone delivers it in milliseconds, and nothing would wait behind
// it.
const (
	// slowFollower is the replica (by index: n3) behind the shaped links,
	// which every forced snapshot goes to. It is the last in rollout
	// order, so the snapshots' senders are on the legacy layout first and
	// on the four-lane layout later.
	slowFollower       = 2
	linkBytesPerSecond = 8 << 20
)

// shapedLinks are the links between the slow follower and every other
// replica, one per direction, kept across restarts as a network would be.
type shapedLinks map[[2]int]*holbench.Link

func newShapedLinks(n int) (shapedLinks, error) {
	links := make(shapedLinks)
	for i := range n {
		if i == slowFollower {
			continue
		}
		for _, pair := range [][2]int{{i, slowFollower}, {slowFollower, i}} {
			l, err := holbench.NewLink(linkBytesPerSecond, holbench.DefaultLinkChunk)
			if err != nil {
				return nil, fmt.Errorf("shaped link: %w", err)
			}
			links[pair] = l
		}
	}
	return links, nil
}

// transportOf is replica i's transport config: its connections to a peer
// across a shaped link go through that link, and the slow follower's
// arrivals are traced.
func (s shapedLinks) transportOf(trace *transferTrace) func(i int) transport.Config {
	return func(i int) transport.Config {
		cfg := transport.Config{
			Dial: func(ctx context.Context, peer uint64, _ lanes.Lane, addr string) (net.Conn, error) {
				var d net.Dialer
				conn, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					return nil, err
				}
				// Replica i of a LocalCluster is raft ID i+1.
				if l, ok := s[[2]int{i, int(peer) - 1}]; ok {
					return l.Wrap(conn), nil
				}
				return conn, nil
			},
		}
		if i == slowFollower {
			cfg.Trace = trace.received
		}
		return cfg
	}
}
