package cli

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/spf13/cobra"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/lanectl/lanectl/lanes"
)

// LanesOptions are the inputs of 'lanectl lanes'.
type LanesOptions struct {
	Streams *IOStreams
	// FourLane, when set, limits the output to one layout.
	FourLane *bool
	// MaxInflight sizes the replication and normal lanes.
	MaxInflight int
	Output      string
}

// NewCmdLanes builds 'lanectl lanes'. runF replaces runLanes in tests.
func NewCmdLanes(streams *IOStreams, runF func(*LanesOptions) error) *cobra.Command {
	opts := &LanesOptions{Streams: streams}
	var fourLane bool
	cmd := &cobra.Command{
		Use:   "lanes",
		Short: "Show which lane each raft message type travels in",
		Long: `Print the dispatcher's routing table: for each raft message type, the lane
it is queued in under the legacy two-lane layout and under the four-lane layout
(ELASTICKV_RAFT_DISPATCHER_LANES=1), or that it is local to a node and never
dispatched; then each lane's buffer size.`,
		Example: `  lanectl lanes
  lanectl lanes --four-lane=true
  lanectl lanes -o json | jq '.types[] | select(.four_lane == "snapshot")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(cmd, opts.Output); err != nil {
				return err
			}
			if cmd.Flags().Changed("four-lane") {
				opts.FourLane = &fourLane
			}
			if runF != nil {
				return runF(opts)
			}
			return runLanes(opts)
		},
	}
	cmd.Flags().BoolVar(&fourLane, "four-lane", false, "show only the four-lane (true) or legacy (false) layout")
	cmd.Flags().IntVar(&opts.MaxInflight, "max-inflight", lanes.DefaultMaxInflightMsgs, "raft MaxInflightMsgs, which sizes the replication and normal lanes")
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

type laneRouteJSON struct {
	Type     string `json:"type"`
	Number   int32  `json:"number"`
	Legacy   string `json:"legacy,omitempty"`
	FourLane string `json:"four_lane,omitempty"`
}

type laneBufferJSON struct {
	Lane   string `json:"lane"`
	Mode   string `json:"mode"`
	Buffer int    `json:"buffer"`
}

type lanesJSON struct {
	Types   []laneRouteJSON  `json:"types"`
	Buffers []laneBufferJSON `json:"buffers"`
}

const notDispatched = "local (never dispatched)"

func runLanes(opts *LanesOptions) error {
	modes := []lanes.Mode{lanes.ModeLegacy, lanes.ModeFourLane}
	if opts.FourLane != nil {
		modes = []lanes.Mode{lanes.ModeFor(*opts.FourLane)}
	}
	nums := make([]int, 0, len(raftpb.MessageType_name))
	for n := range raftpb.MessageType_name {
		nums = append(nums, int(n))
	}
	sort.Ints(nums)

	var doc lanesJSON
	for _, n := range nums {
		typ := raftpb.MessageType(n)
		row := laneRouteJSON{Type: typ.String(), Number: int32(n)}
		for _, m := range modes {
			where := notDispatched
			if lane, ok := lanes.Route(m, typ); ok {
				where = lane.String()
			}
			if m == lanes.ModeFourLane {
				row.FourLane = where
			} else {
				row.Legacy = where
			}
		}
		doc.Types = append(doc.Types, row)
	}
	for _, m := range modes {
		for _, l := range m.Lanes() {
			doc.Buffers = append(doc.Buffers, laneBufferJSON{Lane: l.String(), Mode: m.String(), Buffer: lanes.BufferSize(l, opts.MaxInflight)})
		}
	}

	if opts.Output == outputJSON {
		return writeJSON(opts.Streams.Out, doc)
	}
	header := []string{"TYPE"}
	for _, m := range modes {
		header = append(header, m.String())
	}
	rows := make([][]string, 0, len(doc.Types))
	for _, r := range doc.Types {
		row := []string{r.Type}
		for _, m := range modes {
			if m == lanes.ModeFourLane {
				row = append(row, r.FourLane)
			} else {
				row = append(row, r.Legacy)
			}
		}
		rows = append(rows, row)
	}
	if err := writeTable(opts.Streams.Out, header, rows); err != nil {
		return err
	}
	fmt.Fprintln(opts.Streams.Out)
	bufRows := make([][]string, 0, len(doc.Buffers))
	for _, b := range doc.Buffers {
		bufRows = append(bufRows, []string{b.Mode, b.Lane, strconv.Itoa(b.Buffer)})
	}
	return writeTable(opts.Streams.Out, []string{"MODE", "LANE", "BUFFER"}, bufRows)
}
