package rollout

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/config"
	"go.yaml.in/yaml/v3"
)

// Defaults of the notify: block.
const (
	// DefaultNotifyTimeout bounds one send (one HTTP request, or the read
	// and the write of one Alertmanager resolution).
	DefaultNotifyTimeout = 10 * time.Second
	// DefaultNotifyHold is how long a firing lanectl_soak_failed or
	// lanectl_rollback alert stays firing in Alertmanager unless a later
	// step resolves it first.
	DefaultNotifyHold = 7 * 24 * time.Hour
)

// NotifyConfig is the plan's notify: block: where verdicts and rollbacks
// are announced. Notifying is never on the critical path (see Notifier).
type NotifyConfig struct {
	// PlanName is the plan label of every alert and the plan field of every
	// webhook document; by default the plan file's name without extension.
	PlanName string
	// Timeout bounds each send.
	Timeout time.Duration
	// Hold is the endsAt lanectl gives a firing alert, counted from now.
	Hold         time.Duration
	Alertmanager []NotifyReceiver
	Webhook      []NotifyReceiver
}

// NotifyReceiver is one Alertmanager or webhook endpoint.
type NotifyReceiver struct {
	// URL is an Alertmanager's base URL (without a trailing slash), or the
	// exact URL a webhook document is posted to.
	URL        string
	HTTPConfig config.HTTPClientConfig
}

type rawNotify struct {
	PlanName     string        `yaml:"plan_name"`
	Timeout      *yamlDuration `yaml:"timeout"`
	Hold         *yamlDuration `yaml:"hold"`
	Alertmanager []rawReceiver `yaml:"alertmanager"`
	Webhook      []rawReceiver `yaml:"webhook"`
}

// rawReceiver keeps http_config as a node: it is decoded strictly by
// notify itself, so its errors name the receiver they belong to.
type rawReceiver struct {
	URL        string    `yaml:"url"`
	HTTPConfig yaml.Node `yaml:"http_config"`
}

var planNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

func (v *validator) notify(p *Plan, raw *rawNotify, dir string) {
	n := NotifyConfig{
		PlanName: strings.TrimSuffix(filepath.Base(p.Path), filepath.Ext(p.Path)),
		Timeout:  DefaultNotifyTimeout,
		Hold:     DefaultNotifyHold,
	}
	defer func() { p.Notify = n }()
	if raw == nil {
		return
	}
	if raw.PlanName != "" {
		n.PlanName = raw.PlanName
		if !planNameRE.MatchString(n.PlanName) {
			v.errorf([]any{"notify", "plan_name"}, "notify.plan_name %q: want letters, digits, '.', '_' or '-' (at most 128, starting with a letter or digit)", n.PlanName)
		}
	}
	if raw.Timeout != nil {
		n.Timeout = time.Duration(*raw.Timeout)
		if n.Timeout <= 0 {
			v.errorf([]any{"notify", "timeout"}, "notify.timeout %v: want a duration > 0", n.Timeout)
		}
	}
	if raw.Hold != nil {
		n.Hold = time.Duration(*raw.Hold)
		if n.Hold <= 0 {
			v.errorf([]any{"notify", "hold"}, "notify.hold %v: want a duration > 0", n.Hold)
		}
	}
	n.Alertmanager = v.notifyReceivers("alertmanager", raw.Alertmanager, dir)
	n.Webhook = v.notifyReceivers("webhook", raw.Webhook, dir)
}

func (v *validator) notifyReceivers(key string, raw []rawReceiver, dir string) []NotifyReceiver {
	var out []NotifyReceiver
	for i, r := range raw {
		at := []any{"notify", key, i}
		who := fmt.Sprintf("notify.%s[%d]", key, i)
		rec := NotifyReceiver{URL: r.URL, HTTPConfig: config.DefaultHTTPClientConfig}
		if key == "alertmanager" {
			// A base URL: the API paths are appended to it.
			rec.URL = strings.TrimRight(rec.URL, "/")
		}
		if r.URL == "" {
			v.errorf(at, "%s: url is missing", who)
		} else if err := checkHTTPURL(r.URL); err != nil {
			v.errorf(append(at, "url"), "%s.url: %v", who, err)
		}
		if r.HTTPConfig.Kind != 0 {
			cfg, errs := decodeHTTPConfig(v.loc.file, v.loc.line(append(at, "http_config")), &r.HTTPConfig, who+".http_config")
			v.errs = append(v.errs, errs...)
			rec.HTTPConfig = cfg
		}
		rec.HTTPConfig.SetDirectory(dir)
		out = append(out, rec)
	}
	return out
}

// decodeHTTPConfig decodes one http_config node as strictly as the rest of
// the plan (unknown keys are errors) and validates it, reporting the line
// inside the node where it can and the line of its key (keyAt) otherwise.
func decodeHTTPConfig(file string, keyAt int, n *yaml.Node, who string) (config.HTTPClientConfig, []error) {
	cfg := config.DefaultHTTPClientConfig
	src, err := yaml.Marshal(n)
	if err != nil {
		return cfg, []error{&PlanError{File: file, Line: keyAt, Msg: fmt.Sprintf("%s: %v", who, err)}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	err = dec.Decode(&cfg)
	if err == nil {
		return cfg, nil
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		// Validation by HTTPClientConfig itself: it knows no line.
		return cfg, []error{&PlanError{File: file, Line: keyAt, Msg: fmt.Sprintf("%s: %v", who, err)}}
	}
	var errs []error
	for _, m := range te.Errors {
		pe := &PlanError{File: file, Line: n.Line, Msg: fmt.Sprintf("%s: %s", who, m)}
		if sm := yamlLineRE.FindStringSubmatch(m); sm != nil {
			rel, _ := strconv.Atoi(sm[1])
			pe.Line = n.Line + rel - 1
			pe.Msg = fmt.Sprintf("%s: %s", who, sm[2])
			if fm := unknownFieldRE.FindStringSubmatch(sm[2]); fm != nil {
				pe.Msg = fmt.Sprintf("unknown key %q in %s", fm[1], who)
				if line := keyLine(n, fm[1]); line > 0 {
					pe.Line = line
				}
			}
		}
		errs = append(errs, pe)
	}
	return cfg, errs
}

// keyLine is the line of the first mapping key called key under n.
func keyLine(n *yaml.Node, key string) int {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i].Line
			}
		}
	}
	for _, c := range n.Content {
		if line := keyLine(c, key); line > 0 {
			return line
		}
	}
	return 0
}
