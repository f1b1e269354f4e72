package gates

import "fmt"

// Verdict is the outcome of a gate, of one replica under a gate, or of a
// whole soak.
type Verdict string

// Verdicts, from best to worst.
const (
	Pass         Verdict = "pass"
	Inconclusive Verdict = "inconclusive"
	Fail         Verdict = "fail"
)

func (v Verdict) rank() int {
	switch v {
	case Pass:
		return 0
	case Inconclusive:
		return 1
	default:
		return 2
	}
}

// Worst returns the worse of a and b: fail > inconclusive > pass. An
// unknown verdict counts as fail, so a bug can never read as a pass.
func Worst(a, b Verdict) Verdict {
	if a.rank() >= b.rank() {
		if a.rank() == 2 {
			return Fail
		}
		return a
	}
	if b.rank() == 2 {
		return Fail
	}
	return b
}

// UnmarshalText accepts only the three verdicts.
func (v *Verdict) UnmarshalText(b []byte) error {
	switch s := Verdict(b); s {
	case Pass, Inconclusive, Fail:
		*v = s
		return nil
	default:
		return fmt.Errorf("verdict %q: want pass, fail or inconclusive", string(b))
	}
}
