package seed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

func (a *Applier) applyApplication(ctx context.Context, tid string, in Application, now time.Time) (principal, error) {
	objectID := derive(tid, "app", in.Name)
	appID := strings.ToLower(in.AppID)
	if appID == "" {
		appID = derive(tid, "app", in.Name, "appId")
	}
	want := store.Application{
		ObjectID: objectID, TenantID: tid, AppID: appID, DisplayName: in.Name, IdentifierURIs: in.IdentifierURIs,
		AccessTokenAcceptedVersion: in.AccessTokenAcceptedVersion, PublicClient: in.IsFallbackPublicClient, ManagedBy: store.ManagedBySeed, CreatedAt: now.UTC(),
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
		a.AccessTokenAcceptedVersion == b.AccessTokenAcceptedVersion && a.PublicClient == b.PublicClient && slices.EqualFunc(a.AppRoles, b.AppRoles, func(x, y store.AppRole) bool {
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
			// A secret seeded by an earlier version under a fast keyed
			// hash is stored again as Argon2id, and the old one pruned.
			if c.ManagedBy == store.ManagedBySeed && directory.ChosenSecretHash(c) &&
				directory.CheckSecret([]store.PasswordCredential{c}, secret, now) == directory.SecretValid {
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
