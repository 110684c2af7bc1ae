package seed

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store/sqlstore"
)

const tid = "6f0c2a4e-1b7d-4c55-9f3e-2d8a1b7c9e10"

func doc(apps string) string {
	return `
tenants:
  - id: ` + tid + `
    displayName: Contoso
    domains: [Contoso.example]
    applications:
` + apps + `
    managedIdentities:
      - name: batch
        subscriptionId: sub
        resourceGroup: rg
        federatedCredentials:
          - {name: k8s, issuer: "https://kubernetes.default.svc", subject: "system:serviceaccount:batch:runner"}
        roleAssignments:
          - {resource: api://payments, role: Payments.Read}
`
}

const twoApps = `      - name: payments-api
        identifierUris: [api://payments]
        appRoles: [{value: Payments.Read}]
      - name: worker
        federatedCredentials:
          - {name: spiffe-worker, issuer: "https://oidc.example.org", subject: "spiffe://example.org/worker"}
          - {name: spiffe-worker-2, issuer: "https://oidc.example.org", subject: "spiffe://example.org/worker2"}
        roleAssignments:
          - {resource: payments-api, role: Payments.Read}
`

func openStore(t *testing.T) store.Store {
	t.Helper()
	s, err := sqlstore.OpenSQLite(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func apply(t *testing.T, a *Applier, yaml string) error {
	t.Helper()
	f, err := Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return a.Apply(context.Background(), f)
}

func TestApplyIsIdempotentAndPrunesOnlyItsOwn(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	a := &Applier{Store: s, ParseExpression: func(string) error { return nil }}
	if err := apply(t, a, doc(twoApps)); err != nil {
		t.Fatal(err)
	}
	tenant, err := s.GetTenantByDomain(ctx, "contoso.example")
	if err != nil || tenant.ManagedBy != store.ManagedBySeed {
		t.Fatalf("tenant by lower-cased domain: %+v %v", tenant, err)
	}
	worker, err := s.GetApplication(ctx, derive(tid, "app", "worker"))
	if err != nil {
		t.Fatal(err)
	}
	fics, _ := s.ListFederatedCredentials(ctx, worker.ObjectID)
	if len(fics) != 2 || fics[0].Audiences[0] != directory.TokenExchangeAudience || fics[0].ManagedBy != store.ManagedBySeed {
		t.Fatalf("credentials %+v", fics)
	}
	sp, _ := s.GetServicePrincipalByAppID(ctx, tid, worker.AppID)
	ras, _ := s.ListAppRoleAssignments(ctx, sp.ObjectID)
	if len(ras) != 1 {
		t.Fatalf("worker's role assignments %+v", ras)
	}
	mi, err := s.GetManagedIdentity(ctx, "/subscriptions/sub/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/batch")
	if err != nil {
		t.Fatal(err)
	}
	if ras, _ := s.ListAppRoleAssignments(ctx, mi.PrincipalID); len(ras) != 1 {
		t.Fatalf("identity's role assignments %+v", ras)
	}

	// An API-created credential on the seeded app.
	api := store.FederatedCredential{ID: "api-fic", OwnerID: worker.ObjectID, Name: "from-graph", Issuer: "https://x", Subject: "y", Audiences: []string{"a"}, CreatedAt: time.Now()}
	if err := s.CreateFederatedCredential(ctx, api); err != nil {
		t.Fatal(err)
	}

	// The same document again writes nothing new and keeps ids.
	if err := apply(t, a, doc(twoApps)); err != nil {
		t.Fatal(err)
	}
	again, _ := s.ListFederatedCredentials(ctx, worker.ObjectID)
	if len(again) != 3 || again[1].ID != fics[0].ID {
		t.Fatalf("after a second apply: %+v", again)
	}

	// Drop one credential and change another: only the seed's own change.
	changed := strings.Replace(twoApps, `          - {name: spiffe-worker-2, issuer: "https://oidc.example.org", subject: "spiffe://example.org/worker2"}
`, "", 1)
	changed = strings.Replace(changed, "spiffe://example.org/worker\"", "spiffe://example.org/worker-v2\"", 1)
	if err := apply(t, a, doc(changed)); err != nil {
		t.Fatal(err)
	}
	now, _ := s.ListFederatedCredentials(ctx, worker.ObjectID)
	if len(now) != 2 || now[0].Name != "from-graph" || now[1].Subject != "spiffe://example.org/worker-v2" {
		t.Fatalf("after the change: %+v", now)
	}

	// Removing the app deletes it and its role assignments, not the API's credential's owner... which goes with it.
	if err := apply(t, a, doc(strings.SplitAfter(twoApps, "appRoles: [{value: Payments.Read}]\n")[0])); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetApplication(ctx, worker.ObjectID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the removed app is still there: %v", err)
	}
}

func TestApplyRefusesToTakeOverAPIObjects(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	a := &Applier{Store: s, ParseExpression: func(string) error { return nil }}
	if err := apply(t, a, doc(twoApps)); err != nil {
		t.Fatal(err)
	}
	owner := derive(tid, "app", "worker")
	c, _ := s.GetFederatedCredential(ctx, owner, "spiffe-worker")
	c.ManagedBy = ""
	if err := s.UpdateFederatedCredential(ctx, c.OwnerID, c.ID, store.Replace(c)); err != nil {
		t.Fatal(err)
	}
	err := apply(t, a, doc(strings.Replace(twoApps, "example.org/worker\"", "example.org/other\"", 1)))
	if err == nil || !strings.Contains(err.Error(), "was not created by the seed") || !strings.Contains(err.Error(), "worker/spiffe-worker") {
		t.Fatalf("err = %v", err)
	}
	if got, _ := s.GetFederatedCredential(ctx, owner, "spiffe-worker"); got.Subject != "spiffe://example.org/worker" {
		t.Errorf("the API's credential was changed: %+v", got)
	}
}

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct{ name, yaml, says string }{
		{"unknown key", "tenants:\n  - id: " + tid + "\n    domain: [x]\n", "tenants[0].domain: unknown key; did you mean tenants[0].domains?"},
		{"unknown keys deep down, all at once", "tenants:\n  - id: " + tid + "\n    applications:\n      - name: a\n      - name: b\n      - name: c\n        federatedCredentials:\n          - name: f\n            subjet: s\n        roleAssignments: {resource: x}\n",
			"seed:\n  tenants[0].applications[2].federatedCredentials[0].subjet: unknown key; did you mean tenants[0].applications[2].federatedCredentials[0].subject?\n  tenants[0].applications[2].roleAssignments: want a list, not a mapping"},
		{"every rule at once", "tenants:\n  - id: contoso\n    applications:\n      - appId: x\n        accessTokenAcceptedVersion: 3\n",
			"seed:\n  tenants[0].id: \"contoso\" is not a GUID\n  tenants[0].applications[0].name is required\n  tenants[0].applications[0].appId: \"x\" is not a GUID\n  tenants[0].applications[0].accessTokenAcceptedVersion: 3 is not 1 or 2"},
		{"a number for a string", "tenants:\n  - id: " + tid + "\n    displayName: 42\n", "tenants[0].displayName: want a string, not the number 42 (quote it)"},
		{"bad tenant id", "tenants:\n  - id: contoso\n", `tenants[0].id: "contoso" is not a GUID`},
		{"app without name", "tenants:\n  - id: " + tid + "\n    applications:\n      - appId: " + tid + "\n", "tenants[0].applications[0].name is required"},
		{"duplicate app", "tenants:\n  - id: " + tid + "\n    applications:\n      - name: a\n      - name: a\n", `applications[1].name: application "a" appears twice`},
		{"bad version", "tenants:\n  - id: " + tid + "\n    applications:\n      - name: a\n        accessTokenAcceptedVersion: 3\n", "accessTokenAcceptedVersion: 3 is not 1 or 2"},
		{"role without value", "tenants:\n  - id: " + tid + "\n    applications:\n      - name: a\n        appRoles: [{displayName: x}]\n", "appRoles[0].value is required"},
		{"identity without group", "tenants:\n  - id: " + tid + "\n    managedIdentities:\n      - name: a\n        subscriptionId: s\n", "name, subscriptionId and resourceGroup are required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse([]byte(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.says) || strings.Contains(err.Error(), "JSON") {
				t.Errorf("err = %v, want %q", err, tc.says)
			}
		})
	}
}

func TestApplyValidatesCredentials(t *testing.T) {
	a := &Applier{Store: openStore(t), ParseExpression: func(string) error { return nil }}
	bad := strings.Replace(twoApps, "name: spiffe-worker-2", "name: x", 1)
	err := apply(t, a, doc(bad))
	var fe *directory.FieldError
	if !errors.As(err, &fe) || fe.Field != "name" {
		t.Fatalf("err = %v, want the name rule", err)
	}
}

func TestSecretsAndUsersFromFiles(t *testing.T) {
	dir := t.TempDir()
	secretFile, passwordFile := filepath.Join(dir, "secret"), filepath.Join(dir, "password")
	os.WriteFile(secretFile, []byte("first-secret-of-some-length\n"), 0o600)
	os.WriteFile(passwordFile, []byte("correct horse"), 0o600)
	s := openStore(t)
	ctx := context.Background()
	a := &Applier{Store: s, ParseExpression: func(string) error { return nil }}
	y := "tenants:\n  - id: " + tid + "\n    applications:\n      - name: a\n        clientSecretFiles: [" + secretFile + "]\n" +
		"    users:\n      - {userPrincipalName: Alice@Contoso.example, passwordFile: " + passwordFile + "}\n"
	for range 2 {
		if err := apply(t, a, y); err != nil {
			t.Fatal(err)
		}
	}
	owner := derive(tid, "app", "a")
	creds, _ := s.ListPasswordCredentials(ctx, owner)
	if len(creds) != 1 || directory.CheckSecret(creds, "first-secret-of-some-length", time.Now()) != directory.SecretValid {
		t.Fatalf("after two applies: %d secrets", len(creds))
	}
	os.WriteFile(secretFile, []byte("second-secret-of-some-length"), 0o600)
	if err := apply(t, a, y); err != nil {
		t.Fatal(err)
	}
	creds, _ = s.ListPasswordCredentials(ctx, owner)
	if len(creds) != 1 || directory.CheckSecret(creds, "second-secret-of-some-length", time.Now()) != directory.SecretValid {
		t.Fatalf("the rotated secret is not the only one: %d", len(creds))
	}
	u, err := s.GetUserByUPN(ctx, tid, "alice@contoso.example")
	if err != nil || !directory.CheckPassword(u.PasswordHash, "correct horse") || directory.CheckPassword(u.PasswordHash, "wrong") {
		t.Fatalf("user %+v %v", u, err)
	}
}

func TestWatchAppliesChanges(t *testing.T) {
	s := openStore(t)
	path := filepath.Join(t.TempDir(), "seed.yaml")
	os.WriteFile(path, []byte(doc(twoApps)), 0o600)
	a := &Applier{Store: s, ParseExpression: func(string) error { return nil }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	applied, err := a.ApplyFile(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { a.Watch(ctx, path, applied, 20*time.Millisecond); close(done) }()
	os.WriteFile(path, []byte("tenants: [broken"), 0o600) // refused, state kept
	time.Sleep(100 * time.Millisecond)
	os.WriteFile(path, []byte(doc(strings.Replace(twoApps, "example.org/worker2", "example.org/worker3", 1))), 0o600)
	waitForWorker2Subject(t, s, "spiffe://example.org/worker3")
	cancel()
	<-done
}

// waitForWorker2Subject waits until the worker's second credential has
// subject, as a watch applies a changed file.
func waitForWorker2Subject(t *testing.T, s store.Store, subject string) {
	t.Helper()
	owner := derive(tid, "app", "worker")
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := s.GetFederatedCredential(context.Background(), owner, "spiffe-worker-2")
		if err == nil && c.Subject == subject {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the change was not applied: %+v %v", c, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestWarnsAboutFlexibleCredentialsEntraRefuses(t *testing.T) {
	var logs strings.Builder
	a := &Applier{Store: openStore(t), ParseExpression: func(string) error { return nil },
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	err := apply(t, a, doc(`      - name: payments-api
        identifierUris: [api://payments]
        appRoles: [{value: Payments.Read}]
      - name: worker
        federatedCredentials:
          - {name: spiffe-any, issuer: "https://oidc.example.org", claimsMatchingExpression: "claims['sub'] matches 'spiffe://example.org/ns/*'"}
          - {name: github, issuer: "https://token.actions.githubusercontent.com", claimsMatchingExpression: "claims['sub'] matches 'repo:contoso/*'"}
`))
	if err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if !strings.Contains(out, "Entra would refuse") || !strings.Contains(out, "worker/spiffe-any") {
		t.Errorf("no warning for a flexible credential of a non-Entra issuer:\n%s", out)
	}
	if strings.Contains(out, "worker/github") {
		t.Errorf("warned about a flexible credential Entra accepts:\n%s", out)
	}
}

func TestEveryTenantHoldsGraphAndARM(t *testing.T) {
	s := openStore(t)
	a := &Applier{Store: s, ParseExpression: func(string) error { return nil }}
	if err := apply(t, a, `
tenants:
  - id: 6f0c2a4e-1b7d-4c55-9f3e-2d8a1b7c9e10
    applications:
      - name: automation
        roleAssignments:
          - {resource: "https://graph.microsoft.com", role: Application.ReadWrite.All}
`); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const tid = "6f0c2a4e-1b7d-4c55-9f3e-2d8a1b7c9e10"
	for _, appID := range []string{directory.GraphAppID, directory.ARMAppID} {
		if _, err := s.GetServicePrincipalByAppID(ctx, tid, appID); err != nil {
			t.Errorf("service principal of %s: %v", appID, err)
		}
	}
	arm, err := s.GetApplicationByIdentifierURI(ctx, tid, "https://management.core.windows.net/")
	if err != nil || arm.AppID != directory.ARMAppID {
		t.Errorf("ARM by identifier URI: %v %v", arm.AppID, err)
	}
	apps, _ := s.ListApplications(ctx, tid)
	var automation store.Application
	for _, app := range apps {
		if app.DisplayName == "automation" {
			automation = app
		}
	}
	sp, err := s.GetServicePrincipalByAppID(ctx, tid, automation.AppID)
	if err != nil {
		t.Fatal(err)
	}
	as, _ := s.ListAppRoleAssignments(ctx, sp.ObjectID)
	if len(as) != 1 || as[0].AppRoleID != directory.GraphApplicationReadWriteAllID {
		t.Fatalf("assignments %+v", as)
	}
	// Applying again keeps them; the seed does not prune Microsoft's own.
	if err := apply(t, a, "tenants: [{id: "+tid+"}]\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetApplicationByAppID(ctx, tid, directory.GraphAppID); err != nil {
		t.Fatalf("Graph was pruned: %v", err)
	}
}

// TestWatchSeesAChangeMadeBeforeItStarted: the watch starts from what was
// applied, not from what the file holds when it starts.
func TestWatchSeesAChangeMadeBeforeItStarted(t *testing.T) {
	s := openStore(t)
	path := filepath.Join(t.TempDir(), "seed.yaml")
	os.WriteFile(path, []byte(doc(twoApps)), 0o600)
	a := &Applier{Store: s, ParseExpression: func(string) error { return nil }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	applied, err := a.ApplyFile(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, []byte(doc(strings.Replace(twoApps, "example.org/worker2", "example.org/worker4", 1))), 0o600)
	go a.Watch(ctx, path, applied, 20*time.Millisecond)
	waitForWorker2Subject(t, s, "spiffe://example.org/worker4")
}

// TestSeededSecretsMoveToArgon2id: a secret an earlier version seeded under
// the fast keyed hash is stored again as Argon2id on the next apply, and
// the old credential goes.
func TestSeededSecretsMoveToArgon2id(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	const secret = "a-secret-a-person-chose"
	os.WriteFile(secretFile, []byte(secret), 0o600)
	s := openStore(t)
	ctx := context.Background()
	a := &Applier{Store: s, ParseExpression: func(string) error { return nil }}
	y := "tenants:\n  - id: " + tid + "\n    applications:\n      - name: a\n"
	if err := apply(t, a, y); err != nil {
		t.Fatal(err)
	}
	owner := derive(tid, "app", "a")
	salt := []byte("0123456789abcdef")
	m := hmac.New(sha256.New, salt)
	m.Write([]byte(secret))
	legacy := store.PasswordCredential{KeyID: "legacy", OwnerID: owner, DisplayName: "seed: " + secretFile, Hint: secret[:3], Salt: salt, Hash: m.Sum(nil),
		StartDateTime: time.Now().Add(-time.Hour), EndDateTime: time.Now().Add(time.Hour), ManagedBy: store.ManagedBySeed}
	if err := s.AddPasswordCredential(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	if directory.CheckSecret([]store.PasswordCredential{legacy}, secret, time.Now()) != directory.SecretValid {
		t.Fatal("the legacy credential does not accept its secret")
	}
	if err := apply(t, a, y+"        clientSecretFiles: ["+secretFile+"]\n"); err != nil {
		t.Fatal(err)
	}
	creds, _ := s.ListPasswordCredentials(ctx, owner)
	if len(creds) != 1 || creds[0].KeyID == "legacy" || !directory.ChosenSecretHash(creds[0]) || creds[0].Hint != "" ||
		directory.CheckSecret(creds, secret, time.Now()) != directory.SecretValid {
		t.Fatalf("after the apply: %+v", creds)
	}
}
