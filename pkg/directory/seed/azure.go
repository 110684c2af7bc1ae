package seed

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

// applySubscriptions makes the tenant's subscriptions — those it declares
// and those its managed identities name — exist and be its own. A
// subscription of another tenant is an error naming that tenant: ARM
// resources under it are the other tenant's.
func (a *Applier) applySubscriptions(ctx context.Context, tid string, t Tenant) error {
	want := map[string]string{}
	var order []string
	add := func(id, name string) {
		id = strings.ToLower(id)
		if _, ok := want[id]; !ok {
			order = append(order, id)
		}
		if name != "" || want[id] == "" {
			want[id] = name
		}
	}
	for _, s := range t.Subscriptions {
		add(s.ID, s.DisplayName)
	}
	for _, mi := range t.ManagedIdentities {
		add(mi.SubscriptionID, "")
	}
	for _, id := range order {
		have, err := a.Store.GetSubscription(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			err = a.Store.CreateSubscription(ctx, store.Subscription{ID: id, TenantID: tid, DisplayName: want[id], ManagedBy: store.ManagedBySeed})
			if errors.Is(err, store.ErrAlreadyExists) {
				have, err = a.Store.GetSubscription(ctx, id)
			} else if err == nil {
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("subscription %s: %w", id, err)
		}
		if have.TenantID != tid {
			return fmt.Errorf("subscription %s belongs to tenant %s; a subscription belongs to one tenant", id, have.TenantID)
		}
	}
	return nil
}

// applyAzureRoleAssignments makes p hold exactly the seed's Azure role
// assignments in; assignments made through ARM are left alone.
func (a *Applier) applyAzureRoleAssignments(ctx context.Context, tid string, p principal, in []AzureRoleAssignment, now time.Time) error {
	existing, err := a.Store.ListPrincipalRoleAssignments(ctx, p.principalID)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, ra := range existing {
		have[ra.ID] = true
	}
	wanted := map[string]bool{}
	for _, r := range in {
		role, _ := directory.FindAzureRole(r.Role) // checked by Parse
		scope, sub, _ := directory.AzureScope(r.Scope)
		s, err := a.Store.GetSubscription(ctx, sub)
		switch {
		case errors.Is(err, store.ErrNotFound) || (err == nil && s.TenantID != tid):
			return fmt.Errorf("role %q (Azure) at %s: subscription %s is not one of the tenant's (list it under subscriptions)", r.Role, r.Scope, sub)
		case err != nil:
			return err
		}
		id := derive(p.principalID, "azure-role", scope, role.ID)
		wanted[id] = true
		if have[id] {
			continue
		}
		err = a.Store.CreateRoleAssignment(ctx, store.RoleAssignment{ID: id, TenantID: tid, Scope: scope, RoleDefinitionID: role.ID,
			PrincipalID: p.principalID, ManagedBy: store.ManagedBySeed, CreatedAt: now.UTC()})
		if errors.Is(err, store.ErrAlreadyExists) {
			continue // assigned through ARM already
		}
		if err != nil {
			return fmt.Errorf("role %q (Azure) at %s: %w", r.Role, r.Scope, err)
		}
	}
	for _, ra := range existing {
		if ra.ManagedBy == store.ManagedBySeed && !wanted[ra.ID] {
			if err := a.Store.DeleteRoleAssignment(ctx, ra.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
	}
	return nil
}
