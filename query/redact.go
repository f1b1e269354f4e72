package query

import (
	"errors"
	"net/url"
	"strings"
)

// RedactURL returns raw fit for printing: a password in it is replaced by
// "xxxxx", as url.URL.Redacted does. Every message that names a metrics
// URL (errors, logs, the CLI's output) names it through this function,
// because operators paste error text into tickets and chat.
//
// A URL that does not parse, or that hides its user info in an opaque
// part (admin:s3cret@host), has all of its user info replaced.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err == nil && u.User != nil {
		return u.Redacted()
	}
	start := 0
	if i := strings.Index(raw, "://"); i >= 0 {
		start = i + len("://")
	}
	end := len(raw)
	if i := strings.IndexAny(raw[start:], "/?#"); i >= 0 {
		end = start + i
	}
	at := strings.LastIndexByte(raw[start:end], '@')
	if at < 0 {
		return raw
	}
	return raw[:start] + "xxxxx" + raw[start+at:]
}

// URLErrorCause is the cause of a *url.Error (from url.Parse or from
// net/http) without the URL it repeats, which may hold a password; the
// caller names the URL through RedactURL. Other errors are returned as
// they are.
func URLErrorCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
