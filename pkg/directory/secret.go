package directory

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"sync"
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
	c, err := generatedCredential(ownerID, displayName, secret, now, lifetime)
	return c, secret, err
}

// Argon2id parameters for client secrets a person chose (OWASP's minimum:
// 19 MiB, two passes): lighter than user passwords', since each check is on
// the token path, but a copy of the database still cannot be searched
// for them at a fast hash's speed.
const (
	chosenSecretTime    = 2
	chosenSecretMemory  = 19 << 10
	chosenSecretThreads = 1
)

// argonPrefix starts the Hash of a credential whose secret a person chose.
const argonPrefix = "$argon2id$"

// HashedSecret returns the credential that accepts secret, a secret chosen
// elsewhere (such as a seed's Kubernetes Secret). A person may have chosen
// it, so it is stored as an Argon2id hash, and its hint is empty: the first
// characters of a chosen secret help guess the rest (Entra shows a hint for
// the secrets it generates only).
func HashedSecret(ownerID, displayName, secret string, now time.Time, lifetime time.Duration) (store.PasswordCredential, error) {
	encoded, err := argon2Hash(secret, chosenSecretTime, chosenSecretMemory, chosenSecretThreads)
	if err != nil {
		return store.PasswordCredential{}, err
	}
	return store.PasswordCredential{
		KeyID: uuid.NewString(), OwnerID: ownerID, DisplayName: displayName, Hash: []byte(encoded), Salt: []byte{}, // the salt is in the encoded hash
		StartDateTime: now.UTC(), EndDateTime: now.UTC().Add(lifetime),
	}, nil
}

// ChosenSecretHash reports whether c stores its secret as HashedSecret
// does (Argon2id), not as a generated secret's keyed hash.
func ChosenSecretHash(c store.PasswordCredential) bool {
	return bytes.HasPrefix(c.Hash, []byte(argonPrefix))
}

// generatedCredential is the credential of a secret NewPasswordCredential
// generated: a salted HMAC-SHA256, and its first three characters as the
// hint, as Entra shows.
func generatedCredential(ownerID, displayName, secret string, now time.Time, lifetime time.Duration) (store.PasswordCredential, error) {
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

// argonSlots bounds concurrent Argon2id checks (19 MiB each), so that a
// burst of requests with wrong secrets cannot exhaust memory.
var argonSlots = make(chan struct{}, 4)

// verified remembers chosen secrets already checked against their stored
// hash (by a digest of both), so that a client pays the Argon2id cost once
// per process, not per token.
var verified sync.Map

// matches reports whether secret is the one c accepts.
func matches(c store.PasswordCredential, secret string) bool {
	if !ChosenSecretHash(c) {
		return hmac.Equal(hashSecret(c.Salt, secret), c.Hash)
	}
	key := sha256.Sum256(append(append(append([]byte{}, c.Hash...), 0), secret...))
	if _, ok := verified.Load(key); ok {
		return true
	}
	argonSlots <- struct{}{}
	ok := CheckPassword(string(c.Hash), secret)
	<-argonSlots
	if ok {
		verified.Store(key, true)
	}
	return ok
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
		if !matches(c, secret) {
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
