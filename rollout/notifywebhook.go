package rollout

import (
	"context"
	"encoding/json"
	"net/http"
)

// postWebhook posts one event as a JSON document (see Notification and the
// README's notify section for its schema). Any 2xx answer is a success.
func postWebhook(ctx context.Context, c *http.Client, u string, ev Notification) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return notifyRequest(ctx, c, http.MethodPost, u, body, nil)
}
