package seed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
