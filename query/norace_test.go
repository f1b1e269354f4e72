//go:build !race

package query_test

// raceEnabled says the race detector is on: it multiplies the memory a
// test uses, so memory bounds are not measured under it.
const raceEnabled = false
