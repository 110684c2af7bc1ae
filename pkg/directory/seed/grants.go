package seed

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

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
