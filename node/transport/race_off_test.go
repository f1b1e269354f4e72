//go:build !race

package transport

// raceDetector is true when the tests run under -race, whose shadow memory
// makes a process's RSS say little about what the code allocates.
const raceDetector = false
