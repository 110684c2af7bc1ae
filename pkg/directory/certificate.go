package directory

import (
	"crypto/sha1" //nolint:gosec // x5t is defined as a SHA-1 thumbprint.
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

// KeyCredential makes a certificate credential of the first certificate in
// pemData for ownerID, valid over the certificate's own validity, with the
// SHA-1 (x5t) and SHA-256 (x5t#S256) thumbprints clients name it by. keyID
// identifies it among the owner's credentials.
func KeyCredential(ownerID, keyID, displayName string, pemData []byte) (store.KeyCredential, error) {
	block, _ := pem.Decode(pemData)
	if block == nil || block.Type != "CERTIFICATE" {
		return store.KeyCredential{}, errors.New("no PEM CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return store.KeyCredential{}, fmt.Errorf("certificate: %w", err)
	}
	s1, s256 := sha1.Sum(cert.Raw), sha256.Sum256(cert.Raw) //nolint:gosec
	return store.KeyCredential{
		KeyID: keyID, OwnerID: ownerID, DisplayName: displayName, CertDER: cert.Raw,
		ThumbprintSHA1: s1[:], ThumbprintSHA256: s256[:],
		StartDateTime: cert.NotBefore.UTC(), EndDateTime: cert.NotAfter.UTC(),
	}, nil
}
