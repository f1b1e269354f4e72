package query

import (
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Sample is one element of an instant vector: a label set and its value.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// String renders the label set the way PromQL prints it, for error messages.
func (s Sample) String() string {
	keys := slices.Sorted(maps.Keys(s.Labels))
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(LabelName(k))
		b.WriteByte('=')
		b.WriteString(strconv.Quote(s.Labels[k]))
	}
	b.WriteByte('}')
	return b.String()
}

// Vector is the answer to an instant query.
type Vector []Sample

// Warnings are non-fatal remarks a backend attached to an answer (for
// example Prometheus's "results may be incomplete").
type Warnings []string

var (
	// ErrUnreachable is returned when the metrics backend cannot be reached
	// at all: connection refused, DNS failure, TLS handshake failure.
	ErrUnreachable = errors.New("metrics backend unreachable")
	// ErrBadQuery is returned when the backend rejects the PromQL itself
	// (parse error, wrong types); retrying will not help.
	ErrBadQuery = errors.New("bad query")
	// ErrTimeout is returned when the query did not finish before the
	// context's deadline or the backend's own timeout.
	ErrTimeout = errors.New("query timed out")
	// ErrBadResponse is returned when the backend answered but the answer
	// is unusable: a 5xx status, a body that is not the API's JSON, or a
	// result that is not an instant vector.
	ErrBadResponse = errors.New("bad response from metrics backend")
)
