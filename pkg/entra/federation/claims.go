package federation

import (
	"errors"

	josejson "github.com/go-jose/go-jose/v4/json"
	"github.com/go-jose/go-jose/v4/jwt"
)

// claims are the registered claims read before the signature is checked.
type claims struct {
	Issuer   string
	Subject  string
	Audience jwt.Audience
	Expiry   *jwt.NumericDate
	NotBefor *jwt.NumericDate
	IssuedAt *jwt.NumericDate
}

// maxNumericDate is go-jose's bound on a NumericDate, past which it refuses
// the claim rather than let the conversion wrap.
const maxNumericDate = 1 << 62

var errClaimType = errors.New("a registered claim has the wrong type")

// readClaims decodes payload once, with go-jose's JSON (member names match
// case-sensitively, a repeated name is refused), into the full claim set,
// and reads the registered claims from it as go-jose's jwt.Claims would
// have decoded them: every value it would refuse is refused here.
func readClaims(payload []byte) (claims, map[string]any, error) {
	var all map[string]any
	if err := josejson.Unmarshal(payload, &all); err != nil {
		return claims{}, nil, err
	}
	var c claims
	ok := [...]bool{
		claimString(all, "iss", &c.Issuer),
		claimString(all, "sub", &c.Subject),
		claimAudience(all, &c.Audience),
		claimDate(all, "exp", &c.Expiry),
		claimDate(all, "nbf", &c.NotBefor),
		claimDate(all, "iat", &c.IssuedAt),
	}
	for _, good := range ok {
		if !good {
			return claims{}, nil, errClaimType
		}
	}
	return c, all, nil
}

// claimString reads a string claim; absent or null is "".
func claimString(all map[string]any, name string, out *string) bool {
	switch s := all[name].(type) {
	case nil:
		return true
	case string:
		*out = s
		return true
	}
	return false
}

// claimAudience reads aud, a string or an array of strings; null is
// refused, as jwt.Audience refuses it.
func claimAudience(all map[string]any, out *jwt.Audience) bool {
	v, present := all["aud"]
	switch a := v.(type) {
	case nil:
		return !present
	case string:
		*out = jwt.Audience{a}
		return true
	case []any:
		aud := make(jwt.Audience, len(a))
		for i, e := range a {
			s, ok := e.(string)
			if !ok {
				return false
			}
			aud[i] = s
		}
		*out = aud
		return true
	}
	return false
}

// claimDate reads a NumericDate claim; absent or null is nil.
func claimDate(all map[string]any, name string, out **jwt.NumericDate) bool {
	switch f := all[name].(type) {
	case nil:
		return true
	case float64:
		if f >= maxNumericDate || f <= -maxNumericDate {
			return false
		}
		d := jwt.NumericDate(f)
		*out = &d
		return true
	}
	return false
}
