package directory

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"time"

	"github.com/google/uuid"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

// secretBytes is the entropy of a generated client secret: 240 bits, well
// above the 128 bits that make a fast hash safe to store.
const secretBytes = 30

// NewPasswordCredential generates a client secret for the application with
// object id ownerID. It returns the credential to store, which holds only a
// salted HMAC-SHA256 of the secret, and the secret itself, shown once.
//
// A password KDF would cost tens of milliseconds per token request for no
// gain: a random 240-bit secret cannot be guessed, so a keyed hash suffices.
func NewPasswordCredential(ownerID, displayName string, now time.Time, lifetime time.Duration) (store.PasswordCredential, string, error) {
	raw := make([]byte, secretBytes)
	if _, err := rand.Read(raw); err != nil {
		return store.PasswordCredential{}, "", err
	}
	secret := base64.RawURLEncoding.EncodeToString(raw)
	c, err := HashedSecret(ownerID, displayName, secret, now, lifetime)
	return c, secret, err
}

// HashedSecret returns the credential that accepts secret, a secret chosen
// elsewhere (such as a seed's Kubernetes Secret).
func HashedSecret(ownerID, displayName, secret string, now time.Time, lifetime time.Duration) (store.PasswordCredential, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return store.PasswordCredential{}, err
	}
	return store.PasswordCredential{
		KeyID:         uuid.NewString(),
		OwnerID:       ownerID,
		DisplayName:   displayName,
		Hint:          secret[:min(3, len(secret))],
		Salt:          salt,
		Hash:          hashSecret(salt, secret),
		StartDateTime: now.UTC(),
		EndDateTime:   now.UTC().Add(lifetime),
	}, nil
}

func hashSecret(salt []byte, secret string) []byte {
	m := hmac.New(sha256.New, salt)
	m.Write([]byte(secret))
	return m.Sum(nil)
}

// SecretCheck is the outcome of checking a presented client secret.
type SecretCheck int

// Outcomes of CheckSecret.
const (
	SecretInvalid SecretCheck = iota
	SecretValid
	SecretExpired
)

// CheckSecret compares secret with every credential in constant time per
// credential and reports whether one matches and is current.
func CheckSecret(creds []store.PasswordCredential, secret string, now time.Time) SecretCheck {
	result := SecretInvalid
	for _, c := range creds {
		if !hmac.Equal(hashSecret(c.Salt, secret), c.Hash) {
			continue
		}
		if now.Before(c.StartDateTime) || !now.Before(c.EndDateTime) {
			result = SecretExpired
			continue
		}
		return SecretValid
	}
	return result
}
