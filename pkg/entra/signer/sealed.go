package signer

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

// KEK is a key-encryption key: the token signing keys' private halves are
// stored sealed with it (AES-256-GCM), so that a copy of the database or a
// backup holds no key that can sign tokens.
type KEK struct {
	id   [8]byte // the first bytes of the key's SHA-256: which KEK sealed a key
	aead cipher.AEAD
}

// ParseKEK reads a key-encryption key: 32 random bytes in standard base64
// (`head -c 32 /dev/urandom | base64`), surrounding space ignored.
func ParseKEK(text string) (*KEK, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	if err != nil || len(raw) != 32 {
		return nil, errors.New("a key-encryption key is 32 random bytes in base64 (44 characters), such as the output of: head -c 32 /dev/urandom | base64")
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	k := &KEK{aead: aead}
	sum := sha256.Sum256(raw)
	copy(k.id[:], sum[:])
	return k, nil
}

// ID names the key in logs and errors without revealing it.
func (k *KEK) ID() string { return hex.EncodeToString(k.id[:]) }

// sealedMagic starts a sealed private key; a PKCS#8 key starts with 0x30.
var sealedMagic = []byte("segk1:")

// seal encrypts k's private key with kek, bound to the key's id.
func seal(kek *KEK, k store.SigningKey) (store.SigningKey, error) {
	nonce := make([]byte, kek.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return k, fmt.Errorf("signer: seal key %s: %w", k.ID, err)
	}
	out := append(append(append([]byte{}, sealedMagic...), kek.id[:]...), nonce...)
	k.PrivateKeyDER = kek.aead.Seal(out, nonce, k.PrivateKeyDER, []byte(k.ID))
	return k, nil
}

// sealed reports whether a stored private key is sealed.
func sealed(der []byte) bool { return bytes.HasPrefix(der, sealedMagic) }

// open returns the PKCS#8 private key of k, opening it with the KEK that
// sealed it.
func open(keks []*KEK, k store.SigningKey) ([]byte, error) {
	if !sealed(k.PrivateKeyDER) {
		return k.PrivateKeyDER, nil
	}
	rest := k.PrivateKeyDER[len(sealedMagic):]
	if len(rest) < 8 {
		return nil, fmt.Errorf("signer: key %s: the sealed key is truncated", k.ID)
	}
	id := rest[:8]
	for _, kek := range keks {
		if !bytes.Equal(kek.id[:], id) {
			continue
		}
		n := kek.aead.NonceSize()
		if len(rest) < 8+n {
			return nil, fmt.Errorf("signer: key %s: the sealed key is truncated", k.ID)
		}
		der, err := kek.aead.Open(nil, rest[8:8+n], rest[8+n:], []byte(k.ID))
		if err != nil {
			return nil, fmt.Errorf("signer: key %s does not open with key-encryption key %s: it was altered or moved", k.ID, kek.ID())
		}
		return der, nil
	}
	return nil, fmt.Errorf("signer: key %s is sealed with key-encryption key %s, which is not configured (configure it, or keep it as a previous key while rotating)", k.ID, hex.EncodeToString(id))
}
