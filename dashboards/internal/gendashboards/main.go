// Command gendashboards writes the dashboards built by dashboards/internal/gen
// as JSON files, and every target's rules file rendered with the default
// rule options, into a directory (go generate ./dashboards runs it there).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lanectl/lanectl/dashboards"
	"github.com/lanectl/lanectl/dashboards/internal/gen"
)

func main() {
	dir := flag.String("dir", ".", "directory to write the dashboard JSON files into")
	flag.Parse()
	if err := run(*dir); err != nil {
		fmt.Fprintf(os.Stderr, "gendashboards: %v\n", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	files, err := gen.Files()
	if err != nil {
		return err
	}
	for _, s := range dashboards.Sets() {
		rules, err := s.Rules(dashboards.DefaultRuleOptions())
		if err != nil {
			return err
		}
		files = append(files, gen.File{Name: s.RulesFile, Data: rules})
	}
	for _, f := range files {
		path := filepath.Join(dir, f.Name)
		if err := os.WriteFile(path, f.Data, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}
