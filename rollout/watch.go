package rollout

import (
	"context"
	"fmt"
	"time"

	"github.com/lanectl/lanectl/gates"
)

// DefaultLookTimeout bounds one evaluation of a watched soak.
const DefaultLookTimeout = 2 * time.Minute

// Watch looks at an open soak again and again until it is decided: the
// one live-watch loop of 'lanectl soak' and the demo.
type Watch struct {
	Querier gates.Querier
	Soak    *Soak
	// Now is the clock each look is evaluated at.
	Now func() time.Time
	// MaxErrors is how many failed looks in a row end the watch with the
	// last error; zero means failed looks never end it.
	MaxErrors int
	// OnLook is called with every look that evaluated; OnError with every
	// one that did not and how many failed in a row.
	OnLook  func(gates.Result)
	OnError func(err error, inARow int)
	// Evidence, when set, gives each look's request what the gates decided
	// outside PromQL need (Driver.FillFlagEvidence for an elastickv soak).
	Evidence func(ctx context.Context, req *gates.Request)
}

// Look evaluates the soak once, as of w.Now.
func (w Watch) Look(ctx context.Context) (gates.Result, error) {
	req := w.Soak.Request
	req.Now = w.Now()
	ctx, cancel := context.WithTimeout(ctx, DefaultLookTimeout)
	defer cancel()
	if w.Evidence != nil {
		w.Evidence(ctx, &req)
	}
	return gates.Evaluate(ctx, w.Querier, w.Soak.Set, req)
}

// Run waits, then looks every Soak.Interval, the last look landing right
// at the end of the window, until a look is complete or failed, which it
// returns; callers that want a look at once call Look first. When
// ctx ends first it returns the last look that evaluated (the zero Result
// if none did) and ctx's error.
func (w Watch) Run(ctx context.Context) (gates.Result, error) {
	var last gates.Result
	inARow := 0
	timer := time.NewTimer(w.nextWait())
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-timer.C:
		}
		res, err := w.Look(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return last, ctx.Err()
		case err != nil:
			inARow++
			if w.OnError != nil {
				w.OnError(err, inARow)
			}
			if w.MaxErrors > 0 && inARow >= w.MaxErrors {
				return last, fmt.Errorf("soak evaluation failed %d times in a row: %w", inARow, err)
			}
		default:
			inARow, last = 0, res
			if w.OnLook != nil {
				w.OnLook(res)
			}
			if res.Complete || res.Verdict == gates.Fail {
				return res, nil
			}
		}
		timer.Reset(w.nextWait())
	}
}

// nextWait is the interval, cut short so the last look lands right at the
// end of the window.
func (w Watch) nextWait() time.Duration {
	left := w.Soak.Request.Window.End.Sub(w.Now())
	if left < w.Soak.Interval {
		return max(left, 0) + 10*time.Millisecond
	}
	return w.Soak.Interval
}
