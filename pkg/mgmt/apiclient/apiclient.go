// Package apiclient is a thin client of the gateway's Graph and ARM shaped
// management APIs, for the command line; it works against any gateway
// given its address and a token (or client credentials to get one).
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/workload/tokenexchange"
)

// maxResponse bounds a response body.
const maxResponse = 8 << 20

// Resources the client gets tokens for.
const (
	Graph = "https://graph.microsoft.com"
	ARM   = "https://management.core.windows.net/"
)

// Client calls one gateway.
type Client struct {
	HTTP *http.Client
	// Endpoint is the gateway's Entra endpoint (authority host).
	Endpoint string
	// Token, when set, is sent as is for every call.
	Token string
	// Tenant, ClientID and ClientSecret get tokens when Token is empty.
	Tenant, ClientID, ClientSecret string

	mu     sync.Mutex
	tokens map[string]string
}

// APIError is an error answer of the API, in Graph's or ARM's shape.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// token returns a token for resource.
func (c *Client) token(ctx context.Context, resource string) (string, error) {
	if c.Token != "" {
		return c.Token, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.tokens[resource]; t != "" {
		return t, nil
	}
	if c.Tenant == "" || c.ClientID == "" || c.ClientSecret == "" {
		return "", fmt.Errorf("no token: give --token (or GATEWAY_API_TOKEN), or a tenant, client id and client secret")
	}
	resp, err := tokenexchange.Exchange(ctx, c.HTTP, tokenexchange.Request{AuthorityHost: c.Endpoint, TenantID: c.Tenant,
		ClientID: c.ClientID, ClientSecret: c.ClientSecret, Scope: resource + "/.default"})
	if err != nil {
		return "", err
	}
	var body struct {
		AccessToken      string `json:"access_token"`
		ErrorDescription string `json:"error_description"`
	}
	_ = json.Unmarshal(resp.Body, &body)
	if !resp.OK() {
		return "", fmt.Errorf("token for %s: %s", resource, body.ErrorDescription)
	}
	if c.tokens == nil {
		c.tokens = map[string]string{}
	}
	c.tokens[resource] = body.AccessToken
	return body.AccessToken, nil
}

// Do calls method path (under Endpoint) for resource with in as the JSON
// body, and decodes the answer into out when both are non-nil. It returns
// the status, or an *APIError for an error answer.
func (c *Client) Do(ctx context.Context, method, path, resource string, in, out any, header ...string) (int, error) {
	tok, err := c.token(ctx, resource)
	if err != nil {
		return 0, err
	}
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.Endpoint, "/")+path, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 400 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(raw, &e) != nil || e.Error.Code == "" {
			return resp.StatusCode, &APIError{Status: resp.StatusCode, Code: http.StatusText(resp.StatusCode), Message: strings.TrimSpace(string(raw))}
		}
		return resp.StatusCode, &APIError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}
