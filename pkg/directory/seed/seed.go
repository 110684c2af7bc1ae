// Package seed applies a declarative YAML description of the directory —
// tenants, applications, federated credentials, managed identities, users and
// role assignments — to the store, idempotently, the way the Helm chart
// delivers it from values. Objects it creates are marked as managed by the
// seed; it updates and deletes only those, never objects created through an
// API.
package seed

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/strictyaml"
)

// File is the seed document.
type File struct {
	Tenants []Tenant `json:"tenants"`
}

// Tenant is a directory with its objects.
type Tenant struct {
	ID                string            `json:"id"`
	DisplayName       string            `json:"displayName,omitempty"`
	Domains           []string          `json:"domains,omitempty"`
	Applications      []Application     `json:"applications,omitempty"`
	ManagedIdentities []ManagedIdentity `json:"managedIdentities,omitempty"`
	// Subscriptions are the tenant's Azure subscriptions; those its managed
	// identities name are the tenant's too. A subscription belongs to one
	// tenant.
	Subscriptions []Subscription `json:"subscriptions,omitempty"`
	Users         []User         `json:"users,omitempty"`
}

// Application is an app registration with its service principal.
type Application struct {
	// Name is the display name, and the key that ties the seed entry to
	// the stored object across changes.
	Name string `json:"name"`
	// AppID is the client id; derived from the tenant and Name when empty.
	AppID                      string   `json:"appId,omitempty"`
	IdentifierURIs             []string `json:"identifierUris,omitempty"`
	AccessTokenAcceptedVersion int      `json:"accessTokenAcceptedVersion,omitempty"`
	// IsFallbackPublicClient allows public-client flows: the password
	// grant without a secret (Entra's "Allow public client flows").
	IsFallbackPublicClient bool      `json:"isFallbackPublicClient,omitempty"`
	AppRoles               []AppRole `json:"appRoles,omitempty"`
	// OAuth2PermissionScopes are delegated permissions, issued in scp to
	// users signing in with the password grant.
	OAuth2PermissionScopes []PermissionScope     `json:"oauth2PermissionScopes,omitempty"`
	FederatedCredentials   []FederatedCredential `json:"federatedCredentials,omitempty"`
	// ClientSecretFiles name files holding client secrets to accept, such
	// as mounted Kubernetes Secrets; only their hashes are stored.
	ClientSecretFiles []string `json:"clientSecretFiles,omitempty"`
	// CertificateFiles name PEM certificates (public part only) that
	// clients may sign assertions with, as ClientCertificateCredential does.
	CertificateFiles []string         `json:"certificateFiles,omitempty"`
	RoleAssignments  []RoleAssignment `json:"roleAssignments,omitempty"`
	// AzureRoleAssignments grant the application's service principal Azure
	// roles (RBAC) for the ARM shaped API.
	AzureRoleAssignments []AzureRoleAssignment `json:"azureRoleAssignments,omitempty"`
}

// Subscription is an Azure subscription of the tenant.
type Subscription struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName,omitempty"`
}

// AzureRoleAssignment grants a built-in Azure role (Owner, Contributor,
// Managed Identity Contributor, Managed Identity Operator, Reader; by name
// or GUID) at an ARM scope of one of the tenant's subscriptions.
type AzureRoleAssignment struct {
	Role  string `json:"role"`
	Scope string `json:"scope"`
}

// AppRole is a role the application defines.
type AppRole struct {
	Value              string   `json:"value"`
	DisplayName        string   `json:"displayName,omitempty"`
	Description        string   `json:"description,omitempty"`
	AllowedMemberTypes []string `json:"allowedMemberTypes,omitempty"`
}

// PermissionScope is a delegated permission the application publishes.
type PermissionScope struct {
	Value                   string `json:"value"`
	AdminConsentDisplayName string `json:"adminConsentDisplayName,omitempty"`
}

// FederatedCredential is a federated identity credential, in the shape of
// `az ad app federated-credential create --parameters`.
type FederatedCredential struct {
	Name                     string   `json:"name"`
	Issuer                   string   `json:"issuer"`
	Subject                  string   `json:"subject,omitempty"`
	Audiences                []string `json:"audiences,omitempty"`
	Description              string   `json:"description,omitempty"`
	ClaimsMatchingExpression string   `json:"claimsMatchingExpression,omitempty"`
}

// RoleAssignment grants the enclosing principal a role of a resource app,
// named by identifier URI, appId or name.
type RoleAssignment struct {
	Resource string `json:"resource"`
	Role     string `json:"role"`
}

// ManagedIdentity is a user-assigned managed identity.
type ManagedIdentity struct {
	Name                 string                `json:"name"`
	SubscriptionID       string                `json:"subscriptionId"`
	ResourceGroup        string                `json:"resourceGroup"`
	Location             string                `json:"location,omitempty"`
	ClientID             string                `json:"clientId,omitempty"`
	FederatedCredentials []FederatedCredential `json:"federatedCredentials,omitempty"`
	RoleAssignments      []RoleAssignment      `json:"roleAssignments,omitempty"`
	AzureRoleAssignments []AzureRoleAssignment `json:"azureRoleAssignments,omitempty"`
}

// User is a user who signs in with a password (ROPC).
type User struct {
	UserPrincipalName string `json:"userPrincipalName"`
	DisplayName       string `json:"displayName,omitempty"`
	// PasswordFile names a file holding the password; only a password-KDF
	// hash is stored.
	PasswordFile string `json:"passwordFile"`
}

// Parse decodes a seed document strictly: an unknown key is an error, so a
// typo in a values file does not silently drop a credential.
//
// Every unknown key, value of the wrong type and broken rule is reported at
// once, each under its full key path.
func Parse(data []byte) (File, error) {
	var f File
	err := strictyaml.Decode(data, &f)
	var problems strictyaml.Problems
	if err != nil && !errors.As(err, &problems) {
		return File{}, fmt.Errorf("seed: %w", err)
	}
	if cerr := f.check(); cerr != nil {
		for _, line := range strings.Split(cerr.Error(), "\n") {
			problems = append(problems, strictyaml.Problem{Message: line})
		}
	}
	switch len(problems) {
	case 0:
		return f, nil
	case 1:
		return File{}, fmt.Errorf("seed: %v", problems[0])
	}
	return File{}, fmt.Errorf("seed:\n  %s", strings.ReplaceAll(problems.Error(), "\n", "\n  "))
}

// Merge returns one document holding the tenants of every doc, in order; a
// tenant named in several holds all their objects, under the first one's
// name and domains. Seeded objects of a tenant are pruned against the
// whole document, so documents sharing a tenant must be applied merged.
func Merge(docs ...File) File {
	var out File
	index := map[string]int{}
	for _, d := range docs {
		for _, t := range d.Tenants {
			i, ok := index[strings.ToLower(t.ID)]
			if !ok {
				index[strings.ToLower(t.ID)] = len(out.Tenants)
				t.Applications = slices.Clone(t.Applications)
				t.ManagedIdentities = slices.Clone(t.ManagedIdentities)
				t.Users = slices.Clone(t.Users)
				t.Subscriptions = slices.Clone(t.Subscriptions)
				out.Tenants = append(out.Tenants, t)
				continue
			}
			m := &out.Tenants[i]
			m.Applications = append(m.Applications, t.Applications...)
			m.ManagedIdentities = append(m.ManagedIdentities, t.ManagedIdentities...)
			m.Users = append(m.Users, t.Users...)
			m.Subscriptions = append(m.Subscriptions, t.Subscriptions...)
		}
	}
	return out
}

// check enforces what the store cannot: required keys and names unique
// within the document, every error at once, each naming where it is.
func (f File) check() error {
	var errs []error
	bad := func(err error) { errs = append(errs, err) }
	tenants := map[string]bool{}
	for i, t := range f.Tenants {
		at := fmt.Sprintf("tenants[%d]", i)
		if _, err := uuid.Parse(t.ID); err != nil {
			bad(fmt.Errorf("%s.id: %q is not a GUID", at, t.ID))
		}
		if tenants[strings.ToLower(t.ID)] {
			bad(fmt.Errorf("%s.id: tenant %s appears twice", at, t.ID))
		}
		tenants[strings.ToLower(t.ID)] = true
		names := map[string]bool{}
		for j, a := range t.Applications {
			at := fmt.Sprintf("%s.applications[%d]", at, j)
			if a.Name == "" {
				bad(fmt.Errorf("%s.name is required", at))
			}
			if names[a.Name] {
				bad(fmt.Errorf("%s.name: application %q appears twice", at, a.Name))
			}
			names[a.Name] = true
			if a.AppID != "" {
				if _, err := uuid.Parse(a.AppID); err != nil {
					bad(fmt.Errorf("%s.appId: %q is not a GUID", at, a.AppID))
				}
			}
			if v := a.AccessTokenAcceptedVersion; v != 0 && v != 1 && v != 2 {
				bad(fmt.Errorf("%s.accessTokenAcceptedVersion: %d is not 1 or 2", at, v))
			}
			for k, r := range a.AppRoles {
				if r.Value == "" {
					bad(fmt.Errorf("%s.appRoles[%d].value is required", at, k))
				}
			}
			scopes := map[string]bool{}
			for k, sc := range a.OAuth2PermissionScopes {
				switch {
				case sc.Value == "" || strings.ContainsAny(sc.Value, " \t"):
					bad(fmt.Errorf("%s.oauth2PermissionScopes[%d].value %q: want a value without spaces", at, k, sc.Value))
				case scopes[sc.Value]:
					bad(fmt.Errorf("%s.oauth2PermissionScopes[%d].value %q appears twice", at, k, sc.Value))
				}
				scopes[sc.Value] = true
			}
			if err := checkRoleAssignments(at, a.RoleAssignments); err != nil {
				bad(err)
			}
			if err := checkAzureRoleAssignments(at, a.AzureRoleAssignments); err != nil {
				bad(err)
			}
		}
		mis := map[string]bool{}
		for j, m := range t.ManagedIdentities {
			at := fmt.Sprintf("%s.managedIdentities[%d]", at, j)
			if m.Name == "" || m.SubscriptionID == "" || m.ResourceGroup == "" {
				bad(fmt.Errorf("%s: name, subscriptionId and resourceGroup are required", at))
			}
			key := strings.ToLower(m.SubscriptionID + "/" + m.ResourceGroup + "/" + m.Name)
			if mis[key] {
				bad(fmt.Errorf("%s: managed identity %q appears twice", at, m.Name))
			}
			mis[key] = true
			if err := checkRoleAssignments(at, m.RoleAssignments); err != nil {
				bad(err)
			}
			if err := checkAzureRoleAssignments(at, m.AzureRoleAssignments); err != nil {
				bad(err)
			}
		}
		for j, sub := range t.Subscriptions {
			if _, err := uuid.Parse(sub.ID); err != nil {
				bad(fmt.Errorf("%s.subscriptions[%d].id: %q is not a GUID", at, j, sub.ID))
			}
		}
		for j, u := range t.Users {
			if u.UserPrincipalName == "" || u.PasswordFile == "" {
				bad(fmt.Errorf("%s.users[%d]: userPrincipalName and passwordFile are required", at, j))
			}
		}
	}
	return errors.Join(errs...)
}

func checkAzureRoleAssignments(at string, ras []AzureRoleAssignment) error {
	var errs []error
	for k, r := range ras {
		if _, ok := directory.FindAzureRole(r.Role); !ok {
			errs = append(errs, fmt.Errorf("%s.azureRoleAssignments[%d].role: %q is not a built-in role the gateway knows (Owner, Contributor, Managed Identity Contributor, Managed Identity Operator, Reader)", at, k, r.Role))
		}
		if _, _, ok := directory.AzureScope(r.Scope); !ok {
			errs = append(errs, fmt.Errorf("%s.azureRoleAssignments[%d].scope: %q is not /subscriptions/{id}, a resource group or a user-assigned identity under it", at, k, r.Scope))
		}
	}
	return errors.Join(errs...)
}

func checkRoleAssignments(at string, ras []RoleAssignment) error {
	var errs []error
	for k, r := range ras {
		if r.Resource == "" || r.Role == "" {
			errs = append(errs, fmt.Errorf("%s.roleAssignments[%d]: resource and role are required", at, k))
		}
	}
	return errors.Join(errs...)
}
