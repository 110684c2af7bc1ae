// Package store defines the directory's persistent model and the interface
// every storage backend implements. Backends live in sub-packages and are
// checked by one shared suite in store/conformance.
package store

import (
	"context"
	"errors"
	"time"
)

// Errors returned by every backend. Callers test them with errors.Is.
var (
	// ErrNotFound means the addressed object does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrAlreadyExists means a unique key (id, name, appId, identifier URI,
	// issuer and subject of a federated credential, ...) is already taken.
	ErrAlreadyExists = errors.New("store: already exists")
	// ErrLimitExceeded means a per-owner limit (such as MaxFederatedCredentials)
	// would be exceeded by the write.
	ErrLimitExceeded = errors.New("store: limit exceeded")
	// ErrConflict means another write to the same owner's federated
	// credentials was in progress, from this process or another replica,
	// and the caller asked not to wait for it (FailIfBusy).
	ErrConflict = errors.New("store: a conflicting write is in progress")
	// ErrUnavailable wraps failures of the backend itself (database down,
	// read-only or corrupt file): the request may succeed later.
	ErrUnavailable = errors.New("store: unavailable")
)

// MaxFederatedCredentials is Entra's limit of federated identity credentials
// on one application or user-assigned managed identity.
const MaxFederatedCredentials = 20

// ManagedBySeed marks objects created by the declarative seed; objects created
// through an API have an empty ManagedBy and are never deleted by the seed.
const ManagedBySeed = "seed"

// Tenant is an Entra directory.
type Tenant struct {
	ID          string   // GUID
	DisplayName string   //
	Domains     []string // verified domains, lower case, unique across tenants
	ManagedBy   string
}

// AppRole is a role an application defines and other principals are granted.
type AppRole struct {
	ID                 string   `json:"id"`
	Value              string   `json:"value"`
	DisplayName        string   `json:"displayName"`
	Description        string   `json:"description"`
	AllowedMemberTypes []string `json:"allowedMemberTypes"`
	IsEnabled          bool     `json:"isEnabled"`
}

// PermissionScope is a delegated permission an application publishes
// (Graph's api.oauth2PermissionScopes), issued in scp to a signed-in user.
type PermissionScope struct {
	ID                      string `json:"id"`
	Value                   string `json:"value"`
	AdminConsentDisplayName string `json:"adminConsentDisplayName"`
	IsEnabled               bool   `json:"isEnabled"`
}

// Application is an app registration.
type Application struct {
	ObjectID       string
	TenantID       string
	AppID          string // client id, unique per tenant
	DisplayName    string
	IdentifierURIs []string // unique per tenant
	AppRoles       []AppRole
	// PermissionScopes are the delegated permissions the app publishes.
	PermissionScopes []PermissionScope
	// AccessTokenAcceptedVersion is 1 or 2; 0 means unset, which Entra treats as 1.
	AccessTokenAcceptedVersion int
	// PublicClient is Graph's isFallbackPublicClient: the application may
	// use public-client flows, such as the password grant without a
	// secret. A confidential client (the default) must authenticate.
	PublicClient bool
	ManagedBy    string
	CreatedAt    time.Time
}

// ServicePrincipal is an application's (or managed identity's) instance in a
// tenant: the object that holds role assignments and appears as oid/sub.
type ServicePrincipal struct {
	ObjectID    string
	TenantID    string
	AppID       string // unique per tenant
	DisplayName string
	ManagedBy   string
}

// PasswordCredential is a client secret. Only a keyed hash is kept.
type PasswordCredential struct {
	KeyID         string
	OwnerID       string // application object id
	DisplayName   string
	Hint          string // first three characters, as Entra shows
	Salt          []byte
	Hash          []byte
	StartDateTime time.Time
	EndDateTime   time.Time
	ManagedBy     string
}

// KeyCredential is a certificate registered on an application.
type KeyCredential struct {
	KeyID            string
	OwnerID          string // application object id
	DisplayName      string
	CertDER          []byte
	ThumbprintSHA1   []byte // x5t
	ThumbprintSHA256 []byte // x5t#S256
	StartDateTime    time.Time
	EndDateTime      time.Time
	ManagedBy        string
}

// FederatedCredential is a federated identity credential on an application
// or a user-assigned managed identity.
type FederatedCredential struct {
	ID          string
	OwnerID     string // application object id or managed identity principal id
	Name        string // unique per owner, immutable
	Issuer      string
	Subject     string // empty when ClaimsMatchingExpression is set
	Audiences   []string
	Description string
	// ClaimsMatchingExpression is a flexible credential's expression
	// (languageVersion 1); empty for an ordinary credential.
	ClaimsMatchingExpression string
	ManagedBy                string
	CreatedAt                time.Time
}

// AppRoleAssignment grants AppRoleID of Resource to Principal.
type AppRoleAssignment struct {
	ID          string
	PrincipalID string // service principal object id of the client
	ResourceID  string // service principal object id of the resource
	AppRoleID   string
	ManagedBy   string
}

// ManagedIdentity is a user-assigned managed identity.
type ManagedIdentity struct {
	ID             string // ARM resource id
	TenantID       string
	SubscriptionID string
	ResourceGroup  string
	Name           string
	Location       string
	ClientID       string // unique per tenant
	PrincipalID    string // its service principal's object id
	ManagedBy      string
}

// Subscription is an Azure subscription. It belongs to exactly one tenant:
// ARM resources under it are that tenant's, and a caller of another tenant
// cannot reach them.
type Subscription struct {
	ID          string // GUID, stored lower case
	TenantID    string
	DisplayName string
	ManagedBy   string
}

// RoleAssignment grants an Azure role (RBAC) to a principal at an ARM scope
// and everything below it, as Microsoft.Authorization/roleAssignments does.
type RoleAssignment struct {
	ID       string // the assignment's name, a GUID
	TenantID string
	// Scope is /subscriptions/{id}[/resourcegroups/{rg}[/providers/...]],
	// stored lower case: ARM compares scopes case-insensitively.
	Scope            string
	RoleDefinitionID string // a built-in role's GUID
	PrincipalID      string // service principal or managed identity principal object id
	ManagedBy        string
	CreatedAt        time.Time
}

// User is a directory user that can sign in with a password (ROPC).
type User struct {
	ObjectID          string
	TenantID          string
	UserPrincipalName string // stored lower case; unique and matched case-insensitively per tenant
	DisplayName       string
	PasswordHash      string // encoded password-KDF output
	ManagedBy         string
}

// SigningKey is one of the gateway's token signing keys.
type SigningKey struct {
	ID            string // kid
	PrivateKeyDER []byte // PKCS#8, possibly encrypted by the caller
	CertDER       []byte // self-signed certificate published as x5c
	// NotBefore is when the key may start signing; it is published earlier.
	NotBefore time.Time
	// NotAfter is when the key stops signing; it stays published until
	// its last token expires.
	NotAfter  time.Time
	CreatedAt time.Time
}

type failIfBusyKey struct{}

// FailIfBusy marks ctx so that a federated-credential write that finds
// another in progress for the same owner fails with ErrConflict instead of
// waiting: ARM refuses concurrent writes under one managed identity with
// 409, and the database, not one process's memory, knows about them.
func FailIfBusy(ctx context.Context) context.Context {
	return context.WithValue(ctx, failIfBusyKey{}, true)
}

// FailsIfBusy reports whether ctx was marked by FailIfBusy.
func FailsIfBusy(ctx context.Context) bool {
	v, _ := ctx.Value(failIfBusyKey{}).(bool)
	return v
}

// Update is a read-modify-write: it receives the object as stored and
// returns what to store instead. The backend calls it inside the write's
// transaction, holding the object's row lock, so that concurrent updates,
// from this process or another replica, apply one after the other and
// none is lost. An error from fn aborts the write and is returned as is.
// fn must not call the store: it runs while the transaction holds a
// connection, and SQLite has only one.
type Update[T any] func(old T) (T, error)

// Replace is the Update of a writer that owns the whole object, such as the
// seed: it stores v whatever is stored.
func Replace[T any](v T) Update[T] { return func(T) (T, error) { return v, nil } }

// Store is the directory's persistence. Every method is safe for concurrent
// use, every write is transactional, and failures of the backend wrap
// ErrUnavailable.
type Store interface {
	CreateTenant(ctx context.Context, t Tenant) error
	GetTenant(ctx context.Context, id string) (Tenant, error)
	// GetTenantByDomain finds a tenant by a verified domain (case-insensitive).
	GetTenantByDomain(ctx context.Context, domain string) (Tenant, error)
	ListTenants(ctx context.Context) ([]Tenant, error)
	// UpdateTenant replaces the tenant's display name, domains and marker
	// with what fn makes of the stored tenant (see Update).
	UpdateTenant(ctx context.Context, id string, fn Update[Tenant]) error

	// CreateApplication stores the application, its owners (service
	// principal object ids) and its certificates in one transaction: all or
	// nothing.
	CreateApplication(ctx context.Context, a Application, owners []string, keys []KeyCredential) error
	GetApplication(ctx context.Context, objectID string) (Application, error)
	GetApplicationByAppID(ctx context.Context, tenantID, appID string) (Application, error)
	GetApplicationByIdentifierURI(ctx context.Context, tenantID, uri string) (Application, error)
	ListApplications(ctx context.Context, tenantID string) ([]Application, error)
	// UpdateApplication replaces everything but the object id, tenant and
	// creation time with what fn makes of the stored application.
	UpdateApplication(ctx context.Context, objectID string, fn Update[Application]) error
	// DeleteApplication removes the application with its credentials,
	// federated credentials, service principal and role assignments.
	DeleteApplication(ctx context.Context, objectID string) error

	// AddApplicationOwner makes the service principal principalID an owner
	// of the application; adding an owner twice is not an error.
	AddApplicationOwner(ctx context.Context, objectID, principalID string) error
	// ListApplicationOwners lists the service principals owning the
	// application, ordered.
	ListApplicationOwners(ctx context.Context, objectID string) ([]string, error)

	CreateServicePrincipal(ctx context.Context, sp ServicePrincipal) error
	GetServicePrincipal(ctx context.Context, objectID string) (ServicePrincipal, error)
	GetServicePrincipalByAppID(ctx context.Context, tenantID, appID string) (ServicePrincipal, error)
	// GetApplicationWithPrincipalByAppID and
	// GetApplicationWithPrincipalByIdentifierURI find an application with
	// its service principal in one lookup, as the token endpoint needs both
	// for every client and resource; the service principal is the zero
	// value when the application has none.
	GetApplicationWithPrincipalByAppID(ctx context.Context, tenantID, appID string) (Application, ServicePrincipal, error)
	GetApplicationWithPrincipalByIdentifierURI(ctx context.Context, tenantID, uri string) (Application, ServicePrincipal, error)
	ListServicePrincipals(ctx context.Context, tenantID string) ([]ServicePrincipal, error)

	AddPasswordCredential(ctx context.Context, c PasswordCredential) error
	ListPasswordCredentials(ctx context.Context, ownerID string) ([]PasswordCredential, error)
	DeletePasswordCredential(ctx context.Context, ownerID, keyID string) error

	AddKeyCredential(ctx context.Context, c KeyCredential) error
	ListKeyCredentials(ctx context.Context, ownerID string) ([]KeyCredential, error)
	DeleteKeyCredential(ctx context.Context, ownerID, keyID string) error

	// CreateFederatedCredential enforces, in one transaction, unique name
	// per owner, unique issuer and subject per owner (ErrAlreadyExists) and
	// MaxFederatedCredentials per owner (ErrLimitExceeded).
	CreateFederatedCredential(ctx context.Context, c FederatedCredential) error
	// GetFederatedCredential finds a credential of owner by id or by name.
	GetFederatedCredential(ctx context.Context, ownerID, idOrName string) (FederatedCredential, error)
	// ListFederatedCredentials lists owner's credentials ordered by name.
	ListFederatedCredentials(ctx context.Context, ownerID string) ([]FederatedCredential, error)
	// UpdateFederatedCredential replaces everything but ID, OwnerID, Name
	// and CreatedAt with what fn makes of owner's stored credential id,
	// enforcing the uniqueness rules of CreateFederatedCredential.
	UpdateFederatedCredential(ctx context.Context, ownerID, id string, fn Update[FederatedCredential]) error
	DeleteFederatedCredential(ctx context.Context, ownerID, id string) error
	// FindFederatedCredentials returns every credential, of any owner, with
	// exactly this issuer and subject (an indexed lookup).
	FindFederatedCredentials(ctx context.Context, issuer, subject string) ([]FederatedCredential, error)
	// HasFederatedIssuer reports whether any stored credential names issuer:
	// only such issuers are ever fetched.
	HasFederatedIssuer(ctx context.Context, issuer string) (bool, error)

	CreateAppRoleAssignment(ctx context.Context, a AppRoleAssignment) error
	ListAppRoleAssignments(ctx context.Context, principalID string) ([]AppRoleAssignment, error)
	DeleteAppRoleAssignment(ctx context.Context, id string) error

	CreateManagedIdentity(ctx context.Context, mi ManagedIdentity) error
	GetManagedIdentity(ctx context.Context, id string) (ManagedIdentity, error)
	GetManagedIdentityByClientID(ctx context.Context, tenantID, clientID string) (ManagedIdentity, error)
	ListManagedIdentities(ctx context.Context, tenantID string) ([]ManagedIdentity, error)
	// DeleteManagedIdentity removes the identity with its federated
	// credentials and the role assignments it holds.
	DeleteManagedIdentity(ctx context.Context, id string) error

	// CreateSubscription stores sub; a subscription id is unique across
	// tenants (ErrAlreadyExists).
	CreateSubscription(ctx context.Context, sub Subscription) error
	GetSubscription(ctx context.Context, id string) (Subscription, error)
	ListSubscriptions(ctx context.Context, tenantID string) ([]Subscription, error)

	// CreateRoleAssignment stores a; an id, or a scope, role and principal,
	// already assigned is ErrAlreadyExists.
	CreateRoleAssignment(ctx context.Context, a RoleAssignment) error
	GetRoleAssignment(ctx context.Context, id string) (RoleAssignment, error)
	// ListRoleAssignments lists a tenant's Azure role assignments by id.
	ListRoleAssignments(ctx context.Context, tenantID string) ([]RoleAssignment, error)
	// ListPrincipalRoleAssignments lists the Azure role assignments a
	// principal holds, by id.
	ListPrincipalRoleAssignments(ctx context.Context, principalID string) ([]RoleAssignment, error)
	DeleteRoleAssignment(ctx context.Context, id string) error

	CreateUser(ctx context.Context, u User) error
	GetUserByUPN(ctx context.Context, tenantID, upn string) (User, error)
	// UpdateUser replaces the user's name, password hash and marker with
	// what fn makes of the stored user.
	UpdateUser(ctx context.Context, objectID string, fn Update[User]) error

	// CreateSigningKey stores a key unless one with an overlapping
	// NotBefore..NotAfter window exists, in which case it returns
	// ErrAlreadyExists: two replicas racing create one key, not two.
	CreateSigningKey(ctx context.Context, k SigningKey) error
	// ListSigningKeys lists keys ordered by NotBefore.
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	DeleteSigningKey(ctx context.Context, id string) error

	// Generation names the state of the whole directory: it changes once
	// any write has committed, through this handle or, on a shared
	// database, any other replica's, and reading leaves it as it is. So
	// what was read while the generation stayed the same is still what
	// the store holds, and a reader may keep it until the generation
	// changes (readcache does). It may also change with no directory
	// write: that costs such a reader a miss, never a stale answer.
	Generation(ctx context.Context) (string, error)

	// Ping checks that the backend answers.
	Ping(ctx context.Context) error
	Close() error
}
