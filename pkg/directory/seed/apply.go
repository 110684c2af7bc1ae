package seed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

// namespace derives the ids of seeded objects from their names, so that
// applying the same seed twice, or on two replicas, names the same objects.
var namespace = uuid.MustParse("7c9e6b52-1f0e-4c1a-9a53-6e2d8f4b1a07")

func derive(parts ...string) string {
	return uuid.NewSHA1(namespace, []byte(strings.Join(parts, "/"))).String()
}

// Applier applies seed files to a store.
type Applier struct {
	Store  store.Store
	Logger *slog.Logger
	// ParseExpression checks flexible credentials' expressions.
	ParseExpression directory.ExpressionParser
	Now             func() time.Time
	// Base is applied with every document, merged into it (Merge): the
	// development tenant beside a developer's own seed file.
	Base File
}

// principal is an application or a managed identity in a tenant, as a
// holder of credentials and role assignments.
type principal struct {
	tenant      string
	ownerID     string // owns credentials
	principalID string // service principal object id
	label       string // for errors and logs
}

// Apply makes the store hold what f describes. It is idempotent: unchanged
// objects are not written. Objects the seed created earlier but f no longer
// describes are deleted; objects created through an API are never touched,
// and one in the way of a seeded object is an error naming both.
func (a *Applier) Apply(ctx context.Context, f File) error {
	if len(a.Base.Tenants) > 0 {
		f = Merge(a.Base, f)
		if err := f.check(); err != nil {
			return fmt.Errorf("seed: with the base document: %w", err)
		}
	}
	now := a.now()
	// One tenant's failure (a subscription of another tenant, an object
	// in the way) does not keep the others from being applied.
	var errs []error
	for _, t := range f.Tenants {
		if err := a.applyTenant(ctx, t, now); err != nil {
			a.log().Error("seed: a tenant could not be applied", "tenant", t.ID, "error", err)
			errs = append(errs, fmt.Errorf("seed: tenant %s: %w", t.ID, err))
		}
	}
	return errors.Join(errs...)
}

func (a *Applier) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Applier) log() *slog.Logger {
	if a.Logger != nil {
		return a.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (a *Applier) applyTenant(ctx context.Context, t Tenant, now time.Time) error {
	tid := strings.ToLower(t.ID)
	want := store.Tenant{ID: tid, DisplayName: t.DisplayName, Domains: lower(t.Domains), ManagedBy: store.ManagedBySeed}
	have, err := a.Store.GetTenant(ctx, tid)
	switch {
	case errors.Is(err, store.ErrNotFound):
		err = a.Store.CreateTenant(ctx, want)
	case err == nil && have.ManagedBy == store.ManagedBySeed && (have.DisplayName != want.DisplayName || !slices.Equal(have.Domains, want.Domains)):
		err = a.Store.UpdateTenant(ctx, tid, store.Replace(want))
	}
	if err != nil {
		return err
	}
	if err := directory.EnsureMicrosoftResources(ctx, a.Store, tid, now); err != nil {
		return err
	}

	principals := map[string]principal{}
	keep := map[string]bool{}
	for _, app := range t.Applications {
		p, err := a.applyApplication(ctx, tid, app, now)
		if err != nil {
			return fmt.Errorf("application %q: %w", app.Name, err)
		}
		principals["app/"+app.Name] = p
		keep[p.ownerID] = true
	}
	if err := a.pruneApplications(ctx, tid, keep); err != nil {
		return err
	}
	if err := a.applySubscriptions(ctx, tid, t); err != nil {
		return err
	}
	keepMI := map[string]bool{}
	for _, mi := range t.ManagedIdentities {
		p, err := a.applyManagedIdentity(ctx, tid, mi)
		if err != nil {
			return fmt.Errorf("managed identity %q: %w", mi.Name, err)
		}
		principals["mi/"+mi.Name] = p
		keepMI[directory.ManagedIdentityID(mi.SubscriptionID, mi.ResourceGroup, mi.Name)] = true
	}
	if err := a.pruneManagedIdentities(ctx, tid, keepMI); err != nil {
		return err
	}
	// Role assignments last: they name resources anywhere in the tenant.
	for _, app := range t.Applications {
		if err := a.applyRoleAssignments(ctx, tid, principals["app/"+app.Name], app.RoleAssignments); err != nil {
			return fmt.Errorf("application %q: %w", app.Name, err)
		}
	}
	for _, mi := range t.ManagedIdentities {
		if err := a.applyRoleAssignments(ctx, tid, principals["mi/"+mi.Name], mi.RoleAssignments); err != nil {
			return fmt.Errorf("managed identity %q: %w", mi.Name, err)
		}
	}
	for _, app := range t.Applications {
		if err := a.applyAzureRoleAssignments(ctx, tid, principals["app/"+app.Name], app.AzureRoleAssignments, now); err != nil {
			return fmt.Errorf("application %q: %w", app.Name, err)
		}
	}
	for _, mi := range t.ManagedIdentities {
		if err := a.applyAzureRoleAssignments(ctx, tid, principals["mi/"+mi.Name], mi.AzureRoleAssignments, now); err != nil {
			return fmt.Errorf("managed identity %q: %w", mi.Name, err)
		}
	}
	for _, u := range t.Users {
		if err := a.applyUser(ctx, tid, u); err != nil {
			return fmt.Errorf("user %q: %w", u.UserPrincipalName, err)
		}
	}
	return nil
}

func lower(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strings.ToLower(s)
	}
	return out
}

// notOurs reports an API-created object where the seed wants one.
func notOurs(kind, id string) error {
	return fmt.Errorf("%s %s exists and was not created by the seed; the seed does not change it", kind, id)
}

// seedOwned is the update that replaces an object with want, unless since
// the seed read it the object stopped being the seed's.
func seedOwned[T store.Application | store.FederatedCredential | store.User](kind, id string, want T) store.Update[T] {
	return func(old T) (T, error) {
		var by string
		switch o := any(old).(type) {
		case store.Application:
			by = o.ManagedBy
		case store.FederatedCredential:
			by = o.ManagedBy
		case store.User:
			by = o.ManagedBy
		}
		if by != store.ManagedBySeed {
			return old, notOurs(kind, id)
		}
		return want, nil
	}
}

func (a *Applier) applyApplication(ctx context.Context, tid string, in Application, now time.Time) (principal, error) {
	objectID := derive(tid, "app", in.Name)
	appID := strings.ToLower(in.AppID)
	if appID == "" {
		appID = derive(tid, "app", in.Name, "appId")
	}
	want := store.Application{
		ObjectID: objectID, TenantID: tid, AppID: appID, DisplayName: in.Name, IdentifierURIs: in.IdentifierURIs,
		AccessTokenAcceptedVersion: in.AccessTokenAcceptedVersion, ManagedBy: store.ManagedBySeed, CreatedAt: now.UTC(),
	}
	for _, r := range in.AppRoles {
		types := r.AllowedMemberTypes
		if len(types) == 0 {
			types = []string{"Application"}
		}
		want.AppRoles = append(want.AppRoles, store.AppRole{
			ID: derive(objectID, "role", r.Value), Value: r.Value, DisplayName: r.DisplayName, Description: r.Description,
			AllowedMemberTypes: types, IsEnabled: true,
		})
	}
	for _, sc := range in.OAuth2PermissionScopes {
		want.PermissionScopes = append(want.PermissionScopes, store.PermissionScope{
			ID: derive(objectID, "scope", sc.Value), Value: sc.Value, AdminConsentDisplayName: sc.AdminConsentDisplayName, IsEnabled: true,
		})
	}
	have, err := a.Store.GetApplication(ctx, objectID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		err = a.Store.CreateApplication(ctx, want, nil, nil)
	case err != nil:
	case have.ManagedBy != store.ManagedBySeed:
		return principal{}, notOurs("application", objectID)
	case !sameApplication(have, want):
		err = a.Store.UpdateApplication(ctx, objectID, seedOwned("application", objectID, want))
	}
	if err != nil {
		return principal{}, err
	}
	spID := derive(objectID, "sp")
	if _, err := a.Store.GetServicePrincipal(ctx, spID); errors.Is(err, store.ErrNotFound) {
		err = a.Store.CreateServicePrincipal(ctx, store.ServicePrincipal{ObjectID: spID, TenantID: tid, AppID: appID, DisplayName: in.Name, ManagedBy: store.ManagedBySeed})
		if err != nil {
			return principal{}, err
		}
	} else if err != nil {
		return principal{}, err
	}
	p := principal{tenant: tid, ownerID: objectID, principalID: spID, label: in.Name}
	if err := a.applyFederatedCredentials(ctx, p, in.FederatedCredentials, now); err != nil {
		return p, err
	}
	if err := a.applySecrets(ctx, p, in.ClientSecretFiles, now); err != nil {
		return p, err
	}
	return p, a.applyCertificates(ctx, p, in.CertificateFiles)
}

// applyCertificates makes the owner's seed-managed certificates those of
// files, keyed by thumbprint so that an unchanged file writes nothing.
func (a *Applier) applyCertificates(ctx context.Context, p principal, files []string) error {
	existing, err := a.Store.ListKeyCredentials(ctx, p.ownerID)
	if err != nil {
		return err
	}
	have := map[string]store.KeyCredential{}
	for _, c := range existing {
		have[c.KeyID] = c
	}
	used := map[string]bool{}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("certificate: %w", err)
		}
		kc, err := directory.KeyCredential(p.ownerID, "", "seed: "+file, data)
		if err != nil {
			return fmt.Errorf("certificate in %s: %w", file, err)
		}
		kc.KeyID, kc.ManagedBy = derive(p.ownerID, "certificate", fmt.Sprintf("%x", kc.ThumbprintSHA256)), store.ManagedBySeed
		used[kc.KeyID] = true
		if old, ok := have[kc.KeyID]; ok {
			if old.ManagedBy != store.ManagedBySeed {
				return notOurs("certificate credential", kc.KeyID)
			}
			continue
		}
		if err := a.Store.AddKeyCredential(ctx, kc); err != nil {
			return err
		}
	}
	for _, c := range existing {
		if c.ManagedBy == store.ManagedBySeed && !used[c.KeyID] {
			if err := a.Store.DeleteKeyCredential(ctx, p.ownerID, c.KeyID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
	}
	return nil
}

func sameApplication(a, b store.Application) bool {
	return a.AppID == b.AppID && a.DisplayName == b.DisplayName && slices.Equal(a.IdentifierURIs, b.IdentifierURIs) &&
		a.AccessTokenAcceptedVersion == b.AccessTokenAcceptedVersion && slices.EqualFunc(a.AppRoles, b.AppRoles, func(x, y store.AppRole) bool {
		return x.ID == y.ID && x.Value == y.Value && x.DisplayName == y.DisplayName && x.Description == y.Description &&
			slices.Equal(x.AllowedMemberTypes, y.AllowedMemberTypes) && x.IsEnabled == y.IsEnabled
	}) && slices.Equal(a.PermissionScopes, b.PermissionScopes)
}

func (a *Applier) pruneApplications(ctx context.Context, tid string, keep map[string]bool) error {
	apps, err := a.Store.ListApplications(ctx, tid)
	if err != nil {
		return err
	}
	for _, app := range apps {
		if app.ManagedBy == store.ManagedBySeed && !keep[app.ObjectID] {
			if err := a.Store.DeleteApplication(ctx, app.ObjectID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("delete application %q no longer in the seed: %w", app.DisplayName, err)
			}
			a.log().Info("seed: deleted application no longer in the seed", "tenant", tid, "app", app.DisplayName)
		}
	}
	return nil
}

func (a *Applier) applyManagedIdentity(ctx context.Context, tid string, in ManagedIdentity) (principal, error) {
	id := directory.ManagedIdentityID(in.SubscriptionID, in.ResourceGroup, in.Name)
	clientID := strings.ToLower(in.ClientID)
	if clientID == "" {
		clientID = derive(tid, id, "clientId")
	}
	want := store.ManagedIdentity{
		ID: id, TenantID: tid, SubscriptionID: in.SubscriptionID, ResourceGroup: in.ResourceGroup, Name: in.Name,
		Location: in.Location, ClientID: clientID, PrincipalID: derive(tid, id, "principal"), ManagedBy: store.ManagedBySeed,
	}
	have, err := a.Store.GetManagedIdentity(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if err := a.Store.CreateManagedIdentity(ctx, want); err != nil {
			return principal{}, err
		}
	case err != nil:
		return principal{}, err
	case have.ManagedBy != store.ManagedBySeed:
		return principal{}, notOurs("managed identity", id)
	case have != want:
		// Identities have no update in the store: ARM replaces them too.
		if err := a.Store.DeleteManagedIdentity(ctx, id); err != nil {
			return principal{}, err
		}
		if err := a.Store.CreateManagedIdentity(ctx, want); err != nil {
			return principal{}, err
		}
	}
	p := principal{tenant: tid, ownerID: want.PrincipalID, principalID: want.PrincipalID, label: in.Name}
	return p, a.applyFederatedCredentials(ctx, p, in.FederatedCredentials, a.now())
}

func (a *Applier) pruneManagedIdentities(ctx context.Context, tid string, keep map[string]bool) error {
	mis, err := a.Store.ListManagedIdentities(ctx, tid)
	if err != nil {
		return err
	}
	for _, mi := range mis {
		if mi.ManagedBy == store.ManagedBySeed && !keep[mi.ID] {
			if err := a.Store.DeleteManagedIdentity(ctx, mi.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("delete managed identity %q no longer in the seed: %w", mi.Name, err)
			}
			a.log().Info("seed: deleted managed identity no longer in the seed", "tenant", tid, "identity", mi.Name)
		}
	}
	return nil
}

func (a *Applier) applyFederatedCredentials(ctx context.Context, p principal, in []FederatedCredential, now time.Time) error {
	existing, err := a.Store.ListFederatedCredentials(ctx, p.ownerID)
	if err != nil {
		return err
	}
	byName := map[string]store.FederatedCredential{}
	for _, c := range existing {
		byName[c.Name] = c
	}
	wanted := map[string]bool{}
	for _, fc := range in {
		want := store.FederatedCredential{
			ID: derive(p.ownerID, "fic", fc.Name), OwnerID: p.ownerID, Name: fc.Name, Issuer: fc.Issuer, Subject: fc.Subject,
			Audiences: fc.Audiences, Description: fc.Description, ClaimsMatchingExpression: fc.ClaimsMatchingExpression,
			ManagedBy: store.ManagedBySeed, CreatedAt: now.UTC(),
		}
		if len(want.Audiences) == 0 {
			want.Audiences = []string{directory.TokenExchangeAudience}
		}
		if err := directory.ValidateFederatedCredential(want, a.ParseExpression); err != nil {
			return fmt.Errorf("federated credential %q: %w", fc.Name, err)
		}
		if why := directory.EntraWouldRefuse(want); why != "" {
			a.log().Warn("seed: Entra would refuse this federated credential", "credential", p.label+"/"+fc.Name, "issuer", want.Issuer, "reason", why)
		}
		wanted[fc.Name] = true
		have, ok := byName[fc.Name]
		switch {
		case !ok:
			err = a.Store.CreateFederatedCredential(ctx, want)
		case have.ManagedBy != store.ManagedBySeed:
			return notOurs("federated credential", p.label+"/"+fc.Name)
		case have.Issuer != want.Issuer || have.Subject != want.Subject || !slices.Equal(have.Audiences, want.Audiences) ||
			have.Description != want.Description || have.ClaimsMatchingExpression != want.ClaimsMatchingExpression:
			err = a.Store.UpdateFederatedCredential(ctx, p.ownerID, have.ID, seedOwned("federated credential", p.label+"/"+fc.Name, want))
		}
		if err != nil {
			return fmt.Errorf("federated credential %q: %w", fc.Name, err)
		}
	}
	for _, c := range existing {
		if c.ManagedBy == store.ManagedBySeed && !wanted[c.Name] {
			if err := a.Store.DeleteFederatedCredential(ctx, p.ownerID, c.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
	}
	return nil
}

// applySecrets makes the application accept exactly the secrets in files
// among its seeded secrets.
func (a *Applier) applySecrets(ctx context.Context, p principal, files []string, now time.Time) error {
	existing, err := a.Store.ListPasswordCredentials(ctx, p.ownerID)
	if err != nil {
		return err
	}
	used := map[string]bool{}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("client secret: %w", err)
		}
		secret := strings.TrimSpace(string(data))
		if len(secret) < 16 {
			return fmt.Errorf("client secret in %s is shorter than 16 characters", file)
		}
		found := false
		for _, c := range existing {
			if c.ManagedBy == store.ManagedBySeed && directory.CheckSecret([]store.PasswordCredential{c}, secret, now) == directory.SecretValid {
				used[c.KeyID], found = true, true
				break
			}
		}
		if found {
			continue
		}
		cred, err := directory.HashedSecret(p.ownerID, "seed: "+file, secret, now, 10*365*24*time.Hour)
		if err != nil {
			return err
		}
		cred.ManagedBy = store.ManagedBySeed
		if err := a.Store.AddPasswordCredential(ctx, cred); err != nil {
			return err
		}
		used[cred.KeyID] = true
	}
	for _, c := range existing {
		if c.ManagedBy == store.ManagedBySeed && !used[c.KeyID] {
			if err := a.Store.DeletePasswordCredential(ctx, p.ownerID, c.KeyID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
	}
	return nil
}

func (a *Applier) applyRoleAssignments(ctx context.Context, tid string, p principal, in []RoleAssignment) error {
	existing, err := a.Store.ListAppRoleAssignments(ctx, p.principalID)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, ra := range existing {
		have[ra.ID] = true
	}
	wanted := map[string]bool{}
	for _, r := range in {
		res, err := a.findResource(ctx, tid, r.Resource)
		if err != nil {
			return fmt.Errorf("role %q on %q: %w", r.Role, r.Resource, err)
		}
		var roleID string
		for _, role := range res.AppRoles {
			if role.Value == r.Role {
				roleID = role.ID
			}
		}
		if roleID == "" {
			return fmt.Errorf("role %q on %q: the resource defines no such app role", r.Role, r.Resource)
		}
		sp, err := a.Store.GetServicePrincipalByAppID(ctx, tid, res.AppID)
		if err != nil {
			return fmt.Errorf("role %q on %q: the resource's service principal: %w", r.Role, r.Resource, err)
		}
		id := derive(p.principalID, sp.ObjectID, roleID)
		wanted[id] = true
		if have[id] {
			continue
		}
		if err := a.Store.CreateAppRoleAssignment(ctx, store.AppRoleAssignment{ID: id, PrincipalID: p.principalID, ResourceID: sp.ObjectID, AppRoleID: roleID, ManagedBy: store.ManagedBySeed}); err != nil {
			return err
		}
	}
	for _, ra := range existing {
		if ra.ManagedBy == store.ManagedBySeed && !wanted[ra.ID] {
			if err := a.Store.DeleteAppRoleAssignment(ctx, ra.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
	}
	return nil
}

// findResource finds an application by identifier URI, appId or name.
func (a *Applier) findResource(ctx context.Context, tid, name string) (store.Application, error) {
	app, err := a.Store.GetApplicationByIdentifierURI(ctx, tid, name)
	if !errors.Is(err, store.ErrNotFound) {
		return app, err
	}
	app, err = a.Store.GetApplicationByAppID(ctx, tid, strings.ToLower(name))
	if !errors.Is(err, store.ErrNotFound) {
		return app, err
	}
	return a.Store.GetApplication(ctx, derive(tid, "app", name))
}

func (a *Applier) applyUser(ctx context.Context, tid string, in User) error {
	data, err := os.ReadFile(in.PasswordFile)
	if err != nil {
		return fmt.Errorf("password: %w", err)
	}
	password := strings.TrimRight(string(data), "\r\n")
	upn := strings.ToLower(in.UserPrincipalName)
	have, err := a.Store.GetUserByUPN(ctx, tid, upn)
	switch {
	case err == nil && have.ManagedBy != store.ManagedBySeed:
		return notOurs("user", upn)
	case err == nil && have.DisplayName == in.DisplayName && directory.CheckPassword(have.PasswordHash, password):
		return nil
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return err
	}
	hash, herr := directory.HashPassword(password)
	if herr != nil {
		return herr
	}
	u := store.User{ObjectID: derive(tid, "user", upn), TenantID: tid, UserPrincipalName: upn, DisplayName: in.DisplayName, PasswordHash: hash, ManagedBy: store.ManagedBySeed}
	if err == nil {
		return a.Store.UpdateUser(ctx, have.ObjectID, seedOwned("user", upn, u))
	}
	return a.Store.CreateUser(ctx, u)
}
