package rollout

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
)

// postWebhook posts one event as a JSON document (see Notification and the
// README's notify section for its schema). Any 2xx answer is a success.
func postWebhook(ctx context.Context, c *http.Client, u string, ev Notification) error {
	// Gate queries and commands are full of < > &: keep them readable.
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		return err
	}
	return notifyRequest(ctx, c, http.MethodPost, u, body.Bytes(), nil)
}
