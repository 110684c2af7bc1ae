package entra

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store/readcache"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/aadsts"
)

// view is the directory as it stands when a request begins: every lookup
// of the request goes through it, one generation read for all of them.
func (s *Server) view(ctx context.Context) (readcache.View, error) {
	v, err := s.directory.View(ctx)
	if err != nil {
		return v, fmt.Errorf("directory generation: %w", err)
	}
	return v, nil
}

// Each resolver returns the object, or an error: an *aadsts.Error when the
// object is not there, or the store's failure (answered with 503).

// resolveTenant finds a tenant by id or by verified domain; a name that is
// neither a GUID nor a domain is refused before any lookup, as Entra does.
func resolveTenant(ctx context.Context, dir readcache.View, name string) (store.Tenant, error) {
	var t store.Tenant
	var err error
	if _, perr := uuid.Parse(name); perr == nil {
		t, err = dir.GetTenant(ctx, strings.ToLower(name))
	} else if !isDomain(name) {
		return t, aadsts.New(aadsts.InvalidTenantIdentifier, "Specified tenant identifier '%s' is neither a valid DNS name, nor a valid external domain.", name)
	} else {
		t, err = dir.GetTenantByDomain(ctx, strings.ToLower(name))
	}
	if errors.Is(err, store.ErrNotFound) {
		return t, aadsts.New(aadsts.TenantNotFound, "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", name)
	}
	if err != nil {
		return t, fmt.Errorf("get tenant: %w", err)
	}
	return t, nil
}

// client is the principal a token request authenticates: an application or
// a user-assigned managed identity.
type client struct {
	AppID string
	// OwnerID owns the client's credentials: the application's object id
	// or the managed identity's principal id.
	OwnerID string
	// PrincipalID is the service principal's object id, the token's oid.
	PrincipalID string
	// Application is false for a managed identity, which has no secrets.
	Application bool
	// Public is an application allowed public-client flows
	// (isFallbackPublicClient).
	Public bool
}

func resolveClient(ctx context.Context, req tokenRequest, clientID string) (client, error) {
	t := req.tenant
	if clientID == uuid.Nil.String() {
		return client{}, aadsts.New(aadsts.InvalidApplicationID, "%s is not a valid application identifier.", clientID)
	}
	app, sp, err := req.dir.GetApplicationWithPrincipalByAppID(ctx, t.ID, clientID)
	if err == nil {
		if sp.ObjectID == "" {
			return client{}, aadsts.New(aadsts.MissingServicePrincipal, "The client application %s is missing service principal in the tenant %s. See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119", app.AppID, t.ID)
		}
		return client{AppID: app.AppID, OwnerID: app.ObjectID, PrincipalID: sp.ObjectID, Application: true, Public: app.PublicClient}, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return client{}, fmt.Errorf("get application: %w", err)
	}
	mi, err := req.dir.GetManagedIdentityByClientID(ctx, t.ID, clientID)
	if errors.Is(err, store.ErrNotFound) {
		return client{}, notFoundApp(clientID, t)
	}
	if err != nil {
		return client{}, fmt.Errorf("get managed identity: %w", err)
	}
	return client{AppID: mi.ClientID, OwnerID: mi.PrincipalID, PrincipalID: mi.PrincipalID}, nil
}

func notFoundApp(clientID string, t store.Tenant) error {
	return aadsts.New(aadsts.ApplicationNotFound, "Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", clientID, tenantName(t))
}

func tenantName(t store.Tenant) string {
	if t.DisplayName != "" {
		return t.DisplayName
	}
	return t.ID
}

// resource is the API a token is for.
type resource struct {
	App         store.Application
	PrincipalID string
}

// resolveResource finds the resource app as Entra does: by identifier URI
// with or without one trailing slash (azure-mgmt-* asks for
// https://management.azure.com, az for https://management.azure.com/), or
// by appId, with or without an api:// prefix and a trailing slash.
func resolveResource(ctx context.Context, req tokenRequest, name string) (resource, error) {
	t := req.tenant
	app, sp, err := req.dir.GetApplicationWithPrincipalByIdentifierURI(ctx, t.ID, name)
	if errors.Is(err, store.ErrNotFound) {
		other := name + "/"
		if trimmed, ok := strings.CutSuffix(name, "/"); ok && !strings.HasSuffix(trimmed, "/") {
			other = trimmed
		}
		app, sp, err = req.dir.GetApplicationWithPrincipalByIdentifierURI(ctx, t.ID, other)
	}
	if errors.Is(err, store.ErrNotFound) {
		if id := strings.TrimSuffix(strings.TrimPrefix(name, "api://"), "/"); isGUID(id) {
			app, sp, err = req.dir.GetApplicationWithPrincipalByAppID(ctx, t.ID, strings.ToLower(id))
		}
	}
	if errors.Is(err, store.ErrNotFound) || err == nil && sp.ObjectID == "" {
		return resource{}, resourceNotFound(name, t)
	}
	if err != nil {
		return resource{}, fmt.Errorf("get resource application: %w", err)
	}
	return resource{App: app, PrincipalID: sp.ObjectID}, nil
}

// resourceAlias returns Graph's identifier URI for the gateway's own base
// URL: az uses its cloud's microsoftGraphResourceId both as Graph's address
// and as the token resource, and that address is the gateway's. Any other
// name is returned as it is.
func resourceAlias(r *http.Request, name string) string {
	if strings.TrimSuffix(name, "/") == baseURL(r) {
		return directory.GraphResource
	}
	return name
}

func resourceNotFound(name string, t store.Tenant) error {
	return aadsts.New(aadsts.ResourceNotFound, "The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.", name, tenantName(t))
}

// isDomain reports a DNS name of at least two labels.
func isDomain(s string) bool {
	labels := strings.Split(s, ".")
	if len(labels) < 2 || len(s) > 253 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

func isGUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}

// grantedRoles returns the values of res's app roles granted to principalID.
func grantedRoles(ctx context.Context, req tokenRequest, principalID string, res resource) ([]string, error) {
	assignments, err := req.dir.ListAppRoleAssignments(ctx, principalID)
	if err != nil {
		return nil, fmt.Errorf("list app role assignments: %w", err)
	}
	var out []string
	for _, a := range assignments {
		if a.ResourceID != res.PrincipalID {
			continue
		}
		for _, role := range res.App.AppRoles {
			if role.ID == a.AppRoleID && role.IsEnabled {
				out = append(out, role.Value)
			}
		}
	}
	return out, nil
}
