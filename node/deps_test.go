package node_test

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// TestImportsNoStorageOrServing keeps the dispatcher importable by any raft
// engine: no bbolt, no HTTP serving, no transport or replica. net/http
// itself is in the graph only because client_golang's registry imports it
// (expvar, expfmt); no package outside the Go and Prometheus modules may
// bring it in.
func TestImportsNoStorageOrServing(t *testing.T) {
	out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", ".").Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps: %v\n%s", err, stderr)
	}
	forbidden := []string{
		"go.etcd.io/bbolt",
		"github.com/prometheus/client_golang/prometheus/promhttp",
		"github.com/lanectl/lanectl/node/transport",
		"github.com/lanectl/lanectl/node/replica",
	}
	for line := range bytes.Lines(out) {
		fields := strings.Fields(string(line))
		if len(fields) == 0 {
			continue
		}
		pkg, imports := fields[0], fields[1:]
		for _, f := range forbidden {
			if pkg == f || strings.HasPrefix(pkg, f+"/") {
				t.Errorf("package node depends on %s", pkg)
			}
		}
		for _, imp := range imports {
			if imp == "net/http" && !std(pkg) && !strings.HasPrefix(pkg, "github.com/prometheus/") {
				t.Errorf("%s imports net/http into package node's dependencies", pkg)
			}
		}
	}
}

// std reports whether path is in the standard library (no dot in its first
// element).
func std(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}
