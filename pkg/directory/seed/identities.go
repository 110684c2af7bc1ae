package seed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

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
