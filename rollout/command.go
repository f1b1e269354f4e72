package rollout

import (
	"fmt"
	"strings"
	"text/template"
)

// The default commands rewrite the env file through a temporary file so a
// half-written file never reaches the service, and they keep every other
// line of it. The flag name is validated as [A-Za-z_][A-Za-z0-9_]*, so it is
// safe inside the single-quoted grep pattern.
const (
	defaultEnableCommand  = `f={{.EnvFile}} && touch "$f" && { grep -v '^{{.Flag.Name}}=' "$f" || true; } > "$f.lanectl-tmp" && echo {{.Flag.Name}}={{.Flag.Value}} >> "$f.lanectl-tmp" && mv "$f.lanectl-tmp" "$f"`
	defaultDisableCommand = `f={{.EnvFile}} && touch "$f" && { grep -v '^{{.Flag.Name}}=' "$f" || true; } > "$f.lanectl-tmp" && mv "$f.lanectl-tmp" "$f"`
)

// shellWord is a value substituted into a remote command. text/template
// prints it through String, so every substitution comes out quoted for a
// POSIX shell whatever the template author wrote around it.
type shellWord string

func (w shellWord) String() string { return ShellQuote(string(w)) }

// ShellQuote returns s as one POSIX shell word: unchanged when it consists
// only of characters no shell treats specially, otherwise in single quotes
// with embedded single quotes closed, escaped and reopened.
func ShellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-/:,+@%=", c)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// commandData is what command templates see: .Flag.Name, .Flag.Value,
// .Replica.Name, .Replica.Stage and .EnvFile.
type commandData struct {
	Flag struct {
		Name  shellWord
		Value shellWord
	}
	Replica struct {
		Name  shellWord
		Stage shellWord
	}
	EnvFile shellWord
}

func renderCommand(name, src string, flag Flag, envFile string, r Replica) (string, error) {
	var d commandData
	d.Flag.Name = shellWord(flag.Name)
	d.Flag.Value = shellWord(flag.Value)
	d.Replica.Name = shellWord(r.Name)
	d.Replica.Stage = shellWord(r.Stage)
	// env_file may itself name the replica, for several replicas per host.
	path, err := execTemplate("env_file", envFile, d)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, "\n\r\x00") {
		return "", fmt.Errorf("env_file %q for %s: want an absolute path on one line", path, r.Name)
	}
	d.EnvFile = shellWord(path)
	out, err := execTemplate(name, src, d)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(out) == "" {
		return "", fmt.Errorf("rendered command for %s is empty", r.Name)
	}
	return out, nil
}

func execTemplate(name, src string, d commandData) (string, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(src)
	if err != nil {
		return "", fmt.Errorf("parse template: %w", err)
	}
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		return "", fmt.Errorf("render template: %w", err)
	}
	return b.String(), nil
}

// EnableCommand renders the enable command for r.
func (p *Plan) EnableCommand(r Replica) (string, error) {
	return renderCommand("enable", p.Commands.Enable, p.Flag, p.Commands.EnvFile, r)
}

// DisableCommand renders the disable command for r.
func (p *Plan) DisableCommand(r Replica) (string, error) {
	return renderCommand("disable", p.Commands.Disable, p.Flag, p.Commands.EnvFile, r)
}

// ReadCommand renders the read command for r; ok is false when the plan
// has none.
func (p *Plan) ReadCommand(r Replica) (cmd string, ok bool, err error) {
	if p.Commands.Read == "" {
		return "", false, nil
	}
	cmd, err = renderCommand("read", p.Commands.Read, p.Flag, p.Commands.EnvFile, r)
	return cmd, true, err
}
