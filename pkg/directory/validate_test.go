package directory

import (
	"errors"
	"strings"
	"testing"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

func validFIC() store.FederatedCredential {
	return store.FederatedCredential{
		Name: "workload-1", Issuer: "https://oidc.example.org", Subject: "spiffe://example.org/ns/a/sa/b",
		Audiences: []string{TokenExchangeAudience},
	}
}

func noExpressions(string) error { return errors.New("expressions are not parsed in this test") }

func TestValidateFederatedCredential(t *testing.T) {
	long := strings.Repeat("x", 601)
	for _, tc := range []struct {
		name  string
		edit  func(*store.FederatedCredential)
		field string
		rule  Rule
	}{
		{"valid", func(*store.FederatedCredential) {}, "", ""},
		{"name of 3", func(c *store.FederatedCredential) { c.Name = "a-1" }, "", ""},
		{"name of 120", func(c *store.FederatedCredential) { c.Name = "a" + strings.Repeat("_", 119) }, "", ""},
		{"name of 2", func(c *store.FederatedCredential) { c.Name = "ab" }, "name", RuleName},
		{"name of 121", func(c *store.FederatedCredential) { c.Name = strings.Repeat("a", 121) }, "name", RuleName},
		{"name starting with a dash", func(c *store.FederatedCredential) { c.Name = "-abc" }, "name", RuleName},
		{"name with a slash", func(c *store.FederatedCredential) { c.Name = "abc/def" }, "name", RuleName},
		{"name with a dot", func(c *store.FederatedCredential) { c.Name = "abc.def" }, "name", RuleName},
		{"no issuer", func(c *store.FederatedCredential) { c.Issuer = "" }, "issuer", RuleRequired},
		{"issuer of 601", func(c *store.FederatedCredential) { c.Issuer = long }, "issuer", RuleTooLong},
		{"issuer of 600", func(c *store.FederatedCredential) { c.Issuer = "https://o.example/" + strings.Repeat("p", 582) }, "", ""},
		{"issuer with a port and path", func(c *store.FederatedCredential) { c.Issuer = "https://oidc.example.org:8444/tenant/v2.0/" }, "", ""},
		{"file issuer", func(c *store.FederatedCredential) { c.Issuer = "file:///etc/passwd" }, "issuer", RuleIssuerURL},
		{"http issuer", func(c *store.FederatedCredential) { c.Issuer = "http://169.254.169.254/latest" }, "issuer", RuleIssuerURL},
		{"issuer without a host", func(c *store.FederatedCredential) { c.Issuer = "https:///path" }, "issuer", RuleIssuerURL},
		{"issuer that is not a URL", func(c *store.FederatedCredential) { c.Issuer = "oidc.example.org" }, "issuer", RuleIssuerURL},
		{"issuer with user info", func(c *store.FederatedCredential) { c.Issuer = "https://user:pw@oidc.example.org" }, "issuer", RuleIssuerURL},
		{"issuer with a query", func(c *store.FederatedCredential) { c.Issuer = "https://oidc.example.org/?x=1" }, "issuer", RuleIssuerURL},
		{"issuer with a fragment", func(c *store.FederatedCredential) { c.Issuer = "https://oidc.example.org/#x" }, "issuer", RuleIssuerURL},
		{"issuer with spaces", func(c *store.FederatedCredential) { c.Issuer = " https://oidc.example.org" }, "issuer", RuleIssuerURL},
		{"subject of 601", func(c *store.FederatedCredential) { c.Subject = long }, "subject", RuleTooLong},
		{"description of 601", func(c *store.FederatedCredential) { c.Description = long }, "description", RuleTooLong},
		{"description of 600", func(c *store.FederatedCredential) { c.Description = long[:600] }, "", ""},
		{"no audience", func(c *store.FederatedCredential) { c.Audiences = nil }, "audiences", RuleAudienceCount},
		{"two audiences", func(c *store.FederatedCredential) { c.Audiences = []string{"a", "b"} }, "audiences", RuleAudienceCount},
		{"empty audience", func(c *store.FederatedCredential) { c.Audiences = []string{""} }, "audiences", RuleRequired},
		{"audience of 601", func(c *store.FederatedCredential) { c.Audiences = []string{long} }, "audiences", RuleTooLong},
		{"subject and expression", func(c *store.FederatedCredential) { c.ClaimsMatchingExpression = "claims['sub'] eq 'x'" }, "subject", RuleSubjectOrClaims},
		{"neither subject nor expression", func(c *store.FederatedCredential) { c.Subject = "" }, "subject", RuleSubjectOrClaims},
		{"bad expression", func(c *store.FederatedCredential) { c.Subject, c.ClaimsMatchingExpression = "", "claims[" }, "claimsMatchingExpression", RuleExpression},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validFIC()
			tc.edit(&c)
			err := ValidateFederatedCredential(c, noExpressions)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || fe.Rule != tc.rule || fe.Message == "" {
				t.Fatalf("err = %#v, want field %q rule %q", err, tc.field, tc.rule)
			}
		})
	}
}

func TestNameIsImmutable(t *testing.T) {
	old := validFIC()
	c := old
	c.Name = "renamed"
	var fe *FieldError
	if err := ValidateFederatedCredentialUpdate(old, c, noExpressions); !errors.As(err, &fe) || fe.Rule != RuleNameImmutable {
		t.Fatalf("err = %v, want the name to be immutable", err)
	}
	c = old
	c.Subject = "spiffe://example.org/other"
	if err := ValidateFederatedCredentialUpdate(old, c, noExpressions); err != nil {
		t.Fatalf("a subject change was refused: %v", err)
	}
}

func TestEntraWouldRefuse(t *testing.T) {
	for iss, allowed := range map[string]bool{
		"https://token.actions.githubusercontent.com":  true,
		"https://token.actions.githubusercontent.com/": false,
		"https://gitlab.com":                           true,
		"https://app.terraform.io":                     true,
		"https://oidc.example.org":                     false,
	} {
		if got := ExpressionAllowedByEntra(iss); got != allowed {
			t.Errorf("ExpressionAllowedByEntra(%s) = %v", iss, got)
		}
		flexible := store.FederatedCredential{Issuer: iss, ClaimsMatchingExpression: "claims['sub'] matches 'x*'"}
		if got := EntraWouldRefuse(flexible); (got == "") != allowed {
			t.Errorf("EntraWouldRefuse(flexible, %s) = %q", iss, got)
		}
		if got := EntraWouldRefuse(store.FederatedCredential{Issuer: iss, Subject: "x"}); got != "" {
			t.Errorf("an ordinary credential for %s is refused: %q", iss, got)
		}
	}
}

func TestAzureRoles(t *testing.T) {
	const (
		miWrite  = "Microsoft.ManagedIdentity/userAssignedIdentities/write"
		miRead   = "Microsoft.ManagedIdentity/userAssignedIdentities/read"
		ficWrite = "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write"
		ficRead  = "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/read"
		raWrite  = "Microsoft.Authorization/roleAssignments/write"
		raRead   = "Microsoft.Authorization/roleAssignments/read"
	)
	for _, tc := range []struct {
		role    AzureRole
		allowed []string
		denied  []string
	}{
		{RoleOwner, []string{miWrite, ficWrite, raWrite, raRead}, nil},
		{RoleContributor, []string{miWrite, ficWrite, raRead}, []string{raWrite, "Microsoft.Authorization/roleAssignments/delete"}},
		{RoleManagedIdentityContributor, []string{miWrite, miRead, ficWrite, ficRead, raRead}, []string{raWrite}},
		{RoleManagedIdentityOperator, []string{miRead, ficRead, raRead}, []string{miWrite, ficWrite, raWrite}},
		{RoleReader, []string{miRead, ficRead, raRead}, []string{miWrite, ficWrite, raWrite}},
	} {
		for _, a := range tc.allowed {
			if !tc.role.Allows(a) {
				t.Errorf("%s does not allow %s", tc.role.Name, a)
			}
		}
		for _, a := range tc.denied {
			if tc.role.Allows(a) {
				t.Errorf("%s allows %s", tc.role.Name, a)
			}
		}
	}
	if r, ok := FindAzureRole("managed identity contributor"); !ok || r.ID != RoleManagedIdentityContributor.ID {
		t.Errorf("FindAzureRole by name: %v %v", r, ok)
	}
	rg := "/subscriptions/S/resourceGroups/RG"
	for target, want := range map[string]bool{
		rg: true, rg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/mi": true,
		"/subscriptions/s/resourcegroups/rg2": false, "/subscriptions/s": false,
	} {
		if got := ScopeCovers(rg, target); got != want {
			t.Errorf("ScopeCovers(%s, %s) = %v", rg, target, got)
		}
	}
	for scope, want := range map[string]string{
		"/subscriptions/S1": "s1", "/subscriptions/s1/resourceGroups/rg/": "s1",
		"/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/mi": "s1",
		"/": "", "/subscriptions/s1/providers/Microsoft.Compute/virtualMachines/vm": "", "subscriptions/s1": "",
	} {
		if _, sub, ok := AzureScope(scope); sub != want || ok != (want != "") {
			t.Errorf("AzureScope(%s) = %q %v", scope, sub, ok)
		}
	}
}
