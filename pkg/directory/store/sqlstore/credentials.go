package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

const passwordColumns = "owner_id, key_id, display_name, hint, salt, hash, start_at, end_at, managed_by"

// AddPasswordCredential stores a client secret's hash.
func (s *Store) AddPasswordCredential(ctx context.Context, c store.PasswordCredential) error {
	return s.exec(ctx, false, "INSERT INTO password_credentials ("+passwordColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
		c.OwnerID, c.KeyID, c.DisplayName, c.Hint, c.Salt, c.Hash, ms(c.StartDateTime), ms(c.EndDateTime), c.ManagedBy)
}

// ListPasswordCredentials lists owner's secrets ordered by start time.
func (s *Store) ListPasswordCredentials(ctx context.Context, ownerID string) ([]store.PasswordCredential, error) {
	return many(ctx, s, s.d, func(r scanner) (store.PasswordCredential, error) {
		var c store.PasswordCredential
		var start, end int64
		err := r.Scan(&c.OwnerID, &c.KeyID, &c.DisplayName, &c.Hint, &c.Salt, &c.Hash, &start, &end, &c.ManagedBy)
		c.StartDateTime, c.EndDateTime = fromMS(start), fromMS(end)
		return c, err
	}, "SELECT "+passwordColumns+" FROM password_credentials WHERE owner_id = ? ORDER BY start_at, key_id", ownerID)
}

// DeletePasswordCredential removes one secret.
func (s *Store) DeletePasswordCredential(ctx context.Context, ownerID, keyID string) error {
	return s.exec(ctx, true, "DELETE FROM password_credentials WHERE owner_id = ? AND key_id = ?", ownerID, keyID)
}

const keyColumns = "owner_id, key_id, display_name, cert, sha1, sha256, start_at, end_at, managed_by"

// AddKeyCredential stores a certificate credential.
func (s *Store) AddKeyCredential(ctx context.Context, c store.KeyCredential) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return s.insertKey(ctx, tx, c) })
}

func (s *Store) insertKey(ctx context.Context, tx *sql.Tx, c store.KeyCredential) error {
	_, err := tx.ExecContext(ctx, s.d.rebind("INSERT INTO key_credentials ("+keyColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
		c.OwnerID, c.KeyID, c.DisplayName, c.CertDER, c.ThumbprintSHA1, c.ThumbprintSHA256, ms(c.StartDateTime), ms(c.EndDateTime), c.ManagedBy)
	return err
}

// ListKeyCredentials lists owner's certificates ordered by start time.
func (s *Store) ListKeyCredentials(ctx context.Context, ownerID string) ([]store.KeyCredential, error) {
	return many(ctx, s, s.d, func(r scanner) (store.KeyCredential, error) {
		var c store.KeyCredential
		var start, end int64
		err := r.Scan(&c.OwnerID, &c.KeyID, &c.DisplayName, &c.CertDER, &c.ThumbprintSHA1, &c.ThumbprintSHA256, &start, &end, &c.ManagedBy)
		c.StartDateTime, c.EndDateTime = fromMS(start), fromMS(end)
		return c, err
	}, "SELECT "+keyColumns+" FROM key_credentials WHERE owner_id = ? ORDER BY start_at, key_id", ownerID)
}

// DeleteKeyCredential removes one certificate.
func (s *Store) DeleteKeyCredential(ctx context.Context, ownerID, keyID string) error {
	return s.exec(ctx, true, "DELETE FROM key_credentials WHERE owner_id = ? AND key_id = ?", ownerID, keyID)
}

const ficColumns = "id, owner_id, name, issuer, subject, audiences, description, expression, managed_by, created_at"

// CreateFederatedCredential stores c, enforcing uniqueness and the per-owner
// limit in the same transaction.
func (s *Store) CreateFederatedCredential(ctx context.Context, c store.FederatedCredential) error {
	aud, err := json.Marshal(nonNil(c.Audiences))
	if err != nil {
		return err
	}
	return s.ownerTx(ctx, c.OwnerID, func(tx *sql.Tx) error {
		if err := s.d.lockOwner(ctx, tx, c.OwnerID); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, s.d.rebind("SELECT COUNT(*) FROM federated_credentials WHERE owner_id = ?"), c.OwnerID).Scan(&n); err != nil {
			return err
		}
		if n >= store.MaxFederatedCredentials {
			return store.ErrLimitExceeded
		}
		_, err := tx.ExecContext(ctx, s.d.rebind("INSERT INTO federated_credentials ("+ficColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
			c.ID, c.OwnerID, c.Name, c.Issuer, c.Subject, string(aud), c.Description, c.ClaimsMatchingExpression, c.ManagedBy, ms(c.CreatedAt))
		return err
	})
}

// GetFederatedCredential finds owner's credential by id or name.
func (s *Store) GetFederatedCredential(ctx context.Context, ownerID, idOrName string) (store.FederatedCredential, error) {
	return one(ctx, s, scanFIC, "SELECT "+ficColumns+" FROM federated_credentials WHERE owner_id = ? AND (id = ? OR name = ?)", ownerID, idOrName, idOrName)
}

// ListFederatedCredentials lists owner's credentials by name.
func (s *Store) ListFederatedCredentials(ctx context.Context, ownerID string) ([]store.FederatedCredential, error) {
	return many(ctx, s, s.d, scanFIC, "SELECT "+ficColumns+" FROM federated_credentials WHERE owner_id = ? ORDER BY name", ownerID)
}

// UpdateFederatedCredential replaces everything but id, owner, name and
// creation time with what fn makes of the stored credential, in one
// transaction holding the owner's lock.
func (s *Store) UpdateFederatedCredential(ctx context.Context, ownerID, id string, fn store.Update[store.FederatedCredential]) error {
	return s.ownerTx(ctx, ownerID, func(tx *sql.Tx) error {
		if err := s.d.lockOwner(ctx, tx, ownerID); err != nil {
			return err
		}
		old, err := scanFIC(tx.QueryRowContext(ctx, s.d.rebind("SELECT "+ficColumns+" FROM federated_credentials WHERE owner_id = ? AND id = ?"+s.d.forUpdate), ownerID, id))
		if err != nil {
			return err
		}
		c, err := apply(fn, old)
		if err != nil {
			return err
		}
		aud, err := json.Marshal(nonNil(c.Audiences))
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.d.rebind("UPDATE federated_credentials SET issuer = ?, subject = ?, audiences = ?, description = ?, expression = ?, managed_by = ? WHERE owner_id = ? AND id = ?"),
			c.Issuer, c.Subject, string(aud), c.Description, c.ClaimsMatchingExpression, c.ManagedBy, ownerID, id)
		return err
	})
}

// DeleteFederatedCredential removes one credential.
func (s *Store) DeleteFederatedCredential(ctx context.Context, ownerID, id string) error {
	return s.exec(ctx, true, "DELETE FROM federated_credentials WHERE owner_id = ? AND id = ?", ownerID, id)
}

// FindFederatedCredentials is the indexed lookup by issuer and subject.
func (s *Store) FindFederatedCredentials(ctx context.Context, issuer, subject string) ([]store.FederatedCredential, error) {
	return many(ctx, s, s.d, scanFIC, "SELECT "+ficColumns+" FROM federated_credentials WHERE issuer = ? AND subject = ? ORDER BY owner_id, name", issuer, subject)
}

// HasFederatedIssuer reports whether a stored credential names issuer.
func (s *Store) HasFederatedIssuer(ctx context.Context, issuer string) (bool, error) {
	ids, err := many(ctx, s, s.d, scanString, "SELECT id FROM federated_credentials WHERE issuer = ? LIMIT 1", issuer)
	return len(ids) > 0, err
}

func scanFIC(r scanner) (store.FederatedCredential, error) {
	var c store.FederatedCredential
	var aud string
	var created int64
	if err := r.Scan(&c.ID, &c.OwnerID, &c.Name, &c.Issuer, &c.Subject, &aud, &c.Description, &c.ClaimsMatchingExpression, &c.ManagedBy, &created); err != nil {
		return c, err
	}
	c.CreatedAt = fromMS(created)
	return c, json.Unmarshal([]byte(aud), &c.Audiences)
}

// ownerTx is tx for a write to owner's federated credentials. With
// store.FailIfBusy it first claims the owner in this process, failing with
// store.ErrConflict while another such write is in flight here; across
// processes (PostgreSQL) lockOwner's try-lock does the same.
func (s *Store) ownerTx(ctx context.Context, owner string, fn func(*sql.Tx) error) error {
	if store.FailsIfBusy(ctx) {
		if _, busy := s.owners.LoadOrStore(owner, struct{}{}); busy {
			return store.ErrConflict
		}
		defer s.owners.Delete(owner)
	}
	return s.tx(ctx, fn)
}
