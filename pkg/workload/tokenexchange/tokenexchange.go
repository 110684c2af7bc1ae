// Package tokenexchange presents a JWT-SVID as a client assertion at an
// Entra-compatible token endpoint, the request azidentity's
// ClientAssertionCredential makes (or a client secret, as
// ClientSecretCredential does), for tools that do not link the Azure SDK.
package tokenexchange

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxResponse bounds what is read from the token endpoint.
const maxResponse = 1 << 20

// Request is one client_credentials request with a client assertion or,
// when Assertion is empty, a client secret.
type Request struct {
	AuthorityHost string // such as https://login.microsoftonline.com
	TenantID      string
	ClientID      string
	Scope         string // <resource>/.default
	Assertion     string
	ClientSecret  string
}

// Response is the endpoint's answer, success or Entra error, as sent.
type Response struct {
	Status int
	Body   []byte
}

// OK reports whether the endpoint issued a token.
func (r Response) OK() bool { return r.Status == http.StatusOK }

// Exchange posts req to {AuthorityHost}/{TenantID}/oauth2/v2.0/token.
func Exchange(ctx context.Context, client *http.Client, req Request) (Response, error) {
	host, err := url.Parse(req.AuthorityHost)
	if err != nil || host.Scheme != "https" || host.Host == "" {
		return Response{}, fmt.Errorf("authority host %q must be an https URL", req.AuthorityHost)
	}
	endpoint := strings.TrimSuffix(req.AuthorityHost, "/") + "/" + url.PathEscape(req.TenantID) + "/oauth2/v2.0/token"
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {req.ClientID}, "scope": {req.Scope}}
	if req.Assertion != "" {
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", req.Assertion)
	} else {
		form.Set("client_secret", req.ClientSecret)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return Response{}, err
	}
	hr.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	resp, err := client.Do(hr)
	if err != nil {
		return Response{}, fmt.Errorf("token request to %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return Response{}, fmt.Errorf("read token response from %s: %w", endpoint, err)
	}
	return Response{Status: resp.StatusCode, Body: body}, nil
}
