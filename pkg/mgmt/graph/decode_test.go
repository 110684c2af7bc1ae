package graph

import (
	"reflect"
	"testing"
)

func TestUnknownProperty(t *testing.T) {
	for _, tc := range []struct {
		body string
		want string // "" when every property is known
	}{
		{`{"displayName":"x","identifierUris":["api://x"]}`, ""},
		{`{"DISPLAYNAME":"x"}`, ""}, // encoding/json matches names without regard to case
		{`{"displayName":"x","displayNam":"y"}`, "displayNam"},
		{`{"api":{"requestedAccessTokenVersion":2,"oops":1}}`, "oops"},
		{`{"appRoles":[{"value":"R"},{"value":"W","colour":"red"}]}`, "colour"},
		{`{"keyCredentials":[{"type":"AsymmetricX509Cert","usage":"Verify","key":"AA=="}]}`, ""},
		{`{"api":null,"displayName":"x"}`, ""},
	} {
		got, ok := unknownProperty([]byte(tc.body), reflect.TypeOf(&appInput{}))
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("%s: got %q %v, want %q", tc.body, got, ok, tc.want)
		}
	}
	got, ok := unknownProperty([]byte(`{"claimsMatchingExpression":{"value":"x","languageVersion":1,"extra":true}}`), reflect.TypeOf(&ficInput{}))
	if got != "extra" || !ok {
		t.Errorf("nested in a credential: got %q %v", got, ok)
	}
}
