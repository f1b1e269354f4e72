package gates

// Verdict is the outcome of a gate, of one replica under a gate, or of a
// whole soak.
type Verdict string

// Verdicts, from best to worst.
const (
	Pass         Verdict = "pass"
	Inconclusive Verdict = "inconclusive"
	Fail         Verdict = "fail"
)

// rank orders verdicts; anything unknown ranks with fail, so a bug can
// never read as a pass.
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
// unknown verdict counts as fail.
func Worst(a, b Verdict) Verdict {
	if b.rank() > a.rank() {
		a = b
	}
	if a.rank() == 2 {
		return Fail
	}
	return a
}
