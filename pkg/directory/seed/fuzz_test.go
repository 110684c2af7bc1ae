package seed

import (
	"strings"
	"testing"
)

// FuzzParse feeds Parse arbitrary seed documents: it must answer with a
// document or an error, never panic, and never speak of JSON.
func FuzzParse(f *testing.F) {
	f.Add("tenants:\n  - id: " + tid + "\n    applications:\n      - name: a\n        federatedCredentials:\n          - {name: f, issuer: https://i, subjet: s}\n")
	f.Add("tenants: [{id: " + tid + ", users: [{userPrincipalName: 1}], managedIdentities: {}}]\n")
	f.Add("tenants:\n  - &t {id: x, applications: [*t]}\n")
	f.Fuzz(func(t *testing.T, doc string) {
		_, err := Parse([]byte(doc))
		if err != nil && strings.Contains(err.Error(), "JSON") {
			t.Errorf("the error speaks of JSON for a YAML file: %v", err)
		}
	})
}
