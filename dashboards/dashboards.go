package dashboards

import (
	"embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lanectl/lanectl/internal/atomicfile"
)

//go:embed lanes-overview.json lanes-rollout.json lanes.rules.yml elastickv-overview.json elastickv-rollout.json elastickv.rules.yml
var files embed.FS

// ErrNotDirectory is returned by Export when the destination exists and is
// not a directory.
var ErrNotDirectory = errors.New("not a directory")

// File returns the content of one shipped file by name.
func File(name string) ([]byte, error) {
	data, err := files.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("dashboards file %q: %w", name, err)
	}
	return data, nil
}

// Export writes every file of the set into dir, the rules file rendered
// for rules, creating dir if needed and replacing files of the same name,
// and returns the paths written in Names order. Each file is written to a
// temporary name and renamed, so an interrupted export never leaves a
// truncated dashboard behind.
func (s Set) Export(dir string, rules RuleOptions) ([]string, error) {
	if dir == "" {
		return nil, errors.New("export dashboards: empty directory name")
	}
	rendered, err := s.Rules(rules)
	if err != nil {
		return nil, fmt.Errorf("export dashboards: %w", err)
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("export dashboards to %s: %w", dir, ErrNotDirectory)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("export dashboards: %w", err)
	}
	var written []string
	for _, name := range s.Names() {
		data := rendered
		if name != s.RulesFile {
			if data, err = File(name); err != nil {
				return written, err
			}
		}
		path := filepath.Join(dir, name)
		if err := atomicfile.Write(path, data, 0o644); err != nil {
			return written, fmt.Errorf("export dashboards: %w", err)
		}
		written = append(written, path)
	}
	return written, nil
}
