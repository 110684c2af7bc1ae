package directory

import (
	"strings"
	"testing"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

// TestChosenSecretsAreHashedSlowly: a secret a person chose (a seed's file)
// is stored as an Argon2id hash with no hint, so that a copy of the
// database reveals neither its start nor a fast way to guess it; a
// generated 240-bit secret keeps the fast keyed hash and Entra's
// three-character hint.
func TestChosenSecretsAreHashedSlowly(t *testing.T) {
	now := time.Now()
	chosen, err := HashedSecret("app", "seed", "correct-horse-battery-staple", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if chosen.Hint != "" || !strings.HasPrefix(string(chosen.Hash), "$argon2id$") || strings.Contains(string(chosen.Hash), "cor") {
		t.Fatalf("a chosen secret's credential: hint %q hash %q", chosen.Hint, chosen.Hash)
	}
	for secret, want := range map[string]SecretCheck{"correct-horse-battery-staple": SecretValid, "correct-horse-battery-stapl": SecretInvalid, "": SecretInvalid} {
		for range 2 { // the second check is answered from memory
			if got := CheckSecret([]store.PasswordCredential{chosen}, secret, now); got != want {
				t.Errorf("CheckSecret(%q) = %v, want %v", secret, got, want)
			}
		}
	}
	generated, secret, err := NewPasswordCredential("app", "api", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if generated.Hint != secret[:3] || strings.HasPrefix(string(generated.Hash), "$argon2id$") || len(generated.Salt) == 0 {
		t.Fatalf("a generated secret's credential: hint %q", generated.Hint)
	}
	if CheckSecret([]store.PasswordCredential{chosen, generated}, secret, now) != SecretValid {
		t.Error("the generated secret among both kinds")
	}
}

// BenchmarkCheckSecret: what a token request pays to check a client secret,
// generated (keyed hash) or chosen (Argon2id, first check of the process
// and later ones answered from memory).
func BenchmarkCheckSecret(b *testing.B) {
	now := time.Now()
	generated, secret, _ := NewPasswordCredential("app", "api", now, time.Hour)
	chosen, _ := HashedSecret("app", "seed", "correct-horse-battery-staple", now, time.Hour)
	b.Run("generated", func(b *testing.B) {
		for b.Loop() {
			CheckSecret([]store.PasswordCredential{generated}, secret, now)
		}
	})
	b.Run("chosen, wrong secret", func(b *testing.B) {
		for b.Loop() {
			CheckSecret([]store.PasswordCredential{chosen}, "wrong-horse-battery-staple", now)
		}
	})
	b.Run("chosen, verified before", func(b *testing.B) {
		CheckSecret([]store.PasswordCredential{chosen}, "correct-horse-battery-staple", now)
		for b.Loop() {
			CheckSecret([]store.PasswordCredential{chosen}, "correct-horse-battery-staple", now)
		}
	})
}
