package entra

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

// backdate is how far Entra moves iat and nbf into the past.
const backdate = 5 * time.Minute

// accessToken holds the claims of an app-only access token, v1 or v2, in
// the order Entra writes them.
type accessToken struct {
	Aud               string   `json:"aud"`
	Iss               string   `json:"iss"`
	Iat               int64    `json:"iat"`
	Nbf               int64    `json:"nbf"`
	Exp               int64    `json:"exp"`
	Aio               string   `json:"aio"`
	Amr               []string `json:"amr,omitempty"`
	AppID             string   `json:"appid,omitempty"`
	AppIDACR          string   `json:"appidacr,omitempty"`
	Azp               string   `json:"azp,omitempty"`
	AzpACR            string   `json:"azpacr,omitempty"`
	IdP               string   `json:"idp,omitempty"`
	IdTyp             string   `json:"idtyp,omitempty"`
	Name              string   `json:"name,omitempty"`
	OID               string   `json:"oid"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	RH                string   `json:"rh"`
	Roles             []string `json:"roles,omitempty"`
	Scp               string   `json:"scp,omitempty"`
	Sub               string   `json:"sub"`
	TID               string   `json:"tid"`
	UniqueName        string   `json:"unique_name,omitempty"`
	UPN               string   `json:"upn,omitempty"`
	UTI               string   `json:"uti"`
	Ver               string   `json:"ver"`
}

// grant is what a token is issued for: a client alone (roles), or a user
// through a client (delegated scopes), on resource, named as requested.
type grant struct {
	auth      authResult
	roles     []string
	user      *store.User
	scopes    []string
	resource  resource
	requested string
}

// issue signs the access token for g and returns the response body. The
// token's version follows the resource's accessTokenAcceptedVersion, not
// the endpoint.
func (s *Server) issue(ctx context.Context, req tokenRequest, g grant) ([]byte, error) {
	auth, res, requested := g.auth, g.resource, g.requested
	now := s.opts.now().UTC().Truncate(time.Second)
	iat := now.Add(-backdate)
	exp := now.Add(s.opts.tokenLifetime)
	aio, rh, uti := opaqueClaims()
	at := accessToken{
		Iat: iat.Unix(), Nbf: iat.Unix(), Exp: exp.Unix(), Aio: aio,
		OID: auth.client.PrincipalID, RH: rh, Roles: g.roles,
		Sub: auth.client.PrincipalID, TID: req.tenant.ID, UTI: uti,
	}
	v1 := res.App.AccessTokenAcceptedVersion != 2
	if v1 {
		iss := v1Issuer(req.tenant.ID)
		at.Aud, at.Iss, at.Ver = requested, iss, "1.0"
		at.AppID, at.AppIDACR, at.IdP, at.IdTyp = auth.client.AppID, auth.acr, iss, "app"
	} else {
		at.Aud, at.Iss, at.Ver = res.App.AppID, req.base+"/"+req.tenant.ID+"/v2.0", "2.0"
		at.Azp, at.AzpACR = auth.client.AppID, auth.acr
	}
	var granted []string
	if u := g.user; u != nil {
		at.OID, at.Sub, at.Name, at.Scp, at.IdP, at.IdTyp = u.ObjectID, pairwiseSubject(u.ObjectID, auth.client.AppID), u.DisplayName, strings.Join(g.scopes, " "), "", ""
		if v1 {
			at.Amr, at.UniqueName, at.UPN = []string{"pwd"}, u.UserPrincipalName, u.UserPrincipalName
		} else {
			at.PreferredUsername = u.UserPrincipalName
		}
		for _, sc := range g.scopes {
			granted = append(granted, requested+"/"+sc)
		}
	}
	payload, err := json.Marshal(at)
	if err != nil {
		return nil, fmt.Errorf("encode access token: %w", err)
	}
	token, err := s.signer.Sign(payload, v1)
	if err != nil {
		return nil, fmt.Errorf("sign access token: %w", err)
	}
	s.opts.logger.LogAttrs(ctx, slog.LevelDebug, "issued access token",
		slog.String("client_id", auth.client.AppID), slog.String("resource", res.App.AppID), slog.String("ver", at.Ver))
	expiresIn := int64(exp.Sub(now)/time.Second) - 1
	if req.version == 1 {
		return json.Marshal(struct {
			TokenType    string `json:"token_type"`
			ExpiresIn    string `json:"expires_in"`
			ExtExpiresIn string `json:"ext_expires_in"`
			ExpiresOn    string `json:"expires_on"`
			NotBefore    string `json:"not_before"`
			Resource     string `json:"resource"`
			AccessToken  string `json:"access_token"`
		}{"Bearer", itoa(expiresIn), itoa(expiresIn), itoa(exp.Unix()), itoa(iat.Unix()), requested, token})
	}
	return json.Marshal(struct {
		TokenType    string `json:"token_type"`
		Scope        string `json:"scope,omitempty"`
		ExpiresIn    int64  `json:"expires_in"`
		ExtExpiresIn int64  `json:"ext_expires_in"`
		AccessToken  string `json:"access_token"`
	}{"Bearer", strings.Join(granted, " "), expiresIn, expiresIn, token})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// opaqueClaims returns Entra's random opaque claims from one read of the
// random source, base64url-encoded into one string: aio (48 bytes), rh
// ("0." 48 bytes ".") and uti (16 bytes: 22 characters, as Entra's).
func opaqueClaims() (aio, rh, uti string) {
	var random [48 + 48 + 16]byte
	_, _ = rand.Read(random[:])
	enc := base64.RawURLEncoding
	var text [64 + 2 + 64 + 1 + 22]byte
	b := enc.AppendEncode(text[:0], random[:48])
	b = append(b, "0."...)
	b = enc.AppendEncode(b, random[48:96])
	b = append(b, '.')
	all := string(enc.AppendEncode(b, random[96:]))
	return all[:64], all[64 : 64+2+64+1], all[64+2+64+1:]
}
