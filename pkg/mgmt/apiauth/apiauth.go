// Package apiauth checks the bearer tokens the management APIs (Graph and
// ARM shaped) receive: access tokens this gateway issued, for the API's
// resource, as Microsoft's APIs check Entra's tokens.
package apiauth

import (
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Caller is who presented a valid token.
type Caller struct {
	TenantID string
	// AppID is the client's application (client) id.
	AppID string
	// ObjectID is the client's service principal object id.
	ObjectID string
	Roles    []string
}

// HasRole reports whether the token carries one of roles.
func (c Caller) HasRole(roles ...string) bool {
	return slices.ContainsFunc(c.Roles, func(r string) bool { return slices.Contains(roles, r) })
}

// Errors of Verify; the message of the returned error says more.
var (
	// ErrMissing means the request carries no bearer token.
	ErrMissing = errors.New("access token is empty")
	// ErrInvalid means the token is not one this gateway issued for the
	// resource, or it expired.
	ErrInvalid = errors.New("access token validation failure")
	// ErrAudience is the ErrInvalid of a token for another resource.
	ErrAudience = fmt.Errorf("%w: invalid audience", ErrInvalid)
)

// Verifier checks tokens against the gateway's published signing keys.
type Verifier struct {
	// Key returns the gateway's public key with kid (signer.PublicKey).
	Key func(kid string) (crypto.PublicKey, bool)
	Now func() time.Time
	// Directory, when set, is asked whether the caller still exists and
	// which of the token's roles it still holds, and whether the token's
	// audience is the resource's own (see Live).
	Directory *Live
}

// maxToken bounds the Authorization header's token.
const maxToken = 16 << 10

type claims struct {
	Iss   string          `json:"iss"`
	Aud   json.RawMessage `json:"aud"`
	Exp   int64           `json:"exp"`
	Nbf   int64           `json:"nbf"`
	TID   string          `json:"tid"`
	OID   string          `json:"oid"`
	AppID string          `json:"appid"`
	Azp   string          `json:"azp"`
	Roles []string        `json:"roles"`
}

// Verify checks r's bearer token: RS256 by one of the gateway's keys, not
// expired, issued by the gateway for its tenant, and for one of audiences
// (the identifier URIs or appId of the resource whose application id is
// resourceAppID). With a Directory, the caller must still exist, keeps only
// the roles it still holds, and the audience must name that resource in
// the caller's tenant.
func (v *Verifier) Verify(r *http.Request, resourceAppID string, audiences ...string) (Caller, error) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	raw = strings.TrimSpace(raw)
	if !ok || raw == "" {
		return Caller{}, ErrMissing
	}
	if len(raw) > maxToken {
		return Caller{}, fmt.Errorf("%w: the token is too large", ErrInvalid)
	}
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil || len(jws.Signatures) != 1 {
		return Caller{}, fmt.Errorf("%w: not a signed JWT", ErrInvalid)
	}
	key, ok := v.Key(jws.Signatures[0].Header.KeyID)
	if !ok {
		return Caller{}, fmt.Errorf("%w: the signing key is not the gateway's", ErrInvalid)
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return Caller{}, fmt.Errorf("%w: invalid signature", ErrInvalid)
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return Caller{}, fmt.Errorf("%w: malformed claims", ErrInvalid)
	}
	now := v.Now().Unix()
	switch {
	case c.Exp <= now:
		return Caller{}, fmt.Errorf("%w: the token expired", ErrInvalid)
	case c.Nbf > now+300:
		return Caller{}, fmt.Errorf("%w: the token is not valid yet", ErrInvalid)
	case c.TID == "" || c.OID == "":
		return Caller{}, fmt.Errorf("%w: no tenant or object id", ErrInvalid)
	case c.Iss != "https://sts.windows.net/"+c.TID+"/" && !strings.HasSuffix(c.Iss, "/"+c.TID+"/v2.0"):
		return Caller{}, fmt.Errorf("%w: invalid issuer", ErrInvalid)
	}
	var aud []string
	if err := json.Unmarshal(c.Aud, &aud); err != nil {
		var one string
		if json.Unmarshal(c.Aud, &one) != nil {
			return Caller{}, ErrAudience
		}
		aud = []string{one}
	}
	if !slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(audiences, a) }) {
		return Caller{}, ErrAudience
	}
	app := c.AppID
	if app == "" {
		app = c.Azp
	}
	caller := Caller{TenantID: c.TID, AppID: app, ObjectID: c.OID, Roles: c.Roles}
	if v.Directory == nil {
		return caller, nil
	}
	return v.Directory.check(r.Context(), caller, resourceAppID, aud)
}
