package entra

import (
	"fmt"
	"net"
	"net/http"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/aadsts"
)

// jwtBearer is the only client_assertion_type Entra accepts.
const jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// authResult is an authenticated client and how it authenticated.
type authResult struct {
	client client
	acr    string // "0" public client, "1" secret, "2" certificate or federated assertion
}

// authenticate checks the client's secret, certificate assertion or
// federated assertion.
func (s *Server) authenticate(r *http.Request, req tokenRequest, cl client, secret string) (authResult, error) {
	assertion := req.form.Get("client_assertion")
	switch {
	case assertion != "" && secret != "":
		// One client authentication per request (RFC 6749, section 2.3):
		// a request carrying two is refused, not decided by either.
		return authResult{}, aadsts.New(aadsts.InvalidClientAssertionType, "The request body must contain only one of the following parameters: 'client_assertion' or 'client_secret'.")
	case assertion != "":
		if t := req.form.Get("client_assertion_type"); t != jwtBearer {
			if t == "" {
				return authResult{}, missing("client_assertion_type")
			}
			return authResult{}, aadsts.New(aadsts.InvalidClientAssertionType, "The client_assertion_type '%s' is not supported. Use '%s'.", t, jwtBearer)
		}
		var err error
		if tok := certificateAssertion(assertion, cl.AppID); tok != nil {
			err = s.verifyCertificateAssertion(r, req, cl, tok)
		} else {
			err = s.verifyFederatedAssertion(r, req, cl, assertion)
		}
		if err != nil {
			return authResult{}, err
		}
		return authResult{client: cl, acr: "2"}, nil
	case secret != "":
		if err := s.verifySecret(r, req, cl, secret); err != nil {
			return authResult{}, err
		}
		return authResult{client: cl, acr: "1"}, nil
	}
	return authResult{}, aadsts.New(aadsts.NoClientCredential, "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.")
}

// verifyFederatedAssertion checks an external JWT against the client's
// federated identity credentials.
func (s *Server) verifyFederatedAssertion(r *http.Request, req tokenRequest, cl client, assertion string) error {
	creds, err := req.dir.ListFederatedCredentials(r.Context(), cl.OwnerID)
	if err != nil {
		return fmt.Errorf("list federated credentials: %w", err)
	}
	_, err = s.verifier.Verify(r.Context(), assertion, creds)
	return err
}

// verifySecret checks a client secret against the application's password
// credentials; managed identities have none.
func (s *Server) verifySecret(r *http.Request, req tokenRequest, cl client, secret string) error {
	if !cl.Application {
		return invalidSecret(cl)
	}
	// Guessing is throttled per client from one address and per client:
	// past the limit even the right secret waits for the window's end.
	now := s.opts.now()
	sourceKey, clientKey := cl.AppID+"|"+sourceAddress(r), "secret|"+cl.AppID
	if wait := max(s.sourceFailures.blocked(sourceKey, now), s.clientFailures.blocked(clientKey, now)); wait > 0 {
		return throttled(wait)
	}
	creds, err := req.dir.ListPasswordCredentials(r.Context(), cl.OwnerID)
	if err != nil {
		return fmt.Errorf("list password credentials: %w", err)
	}
	switch directory.CheckSecret(creds, secret, now) {
	case directory.SecretValid:
		return nil
	case directory.SecretInvalid:
		s.sourceFailures.failed(sourceKey, now)
		s.clientFailures.failed(clientKey, now)
	case directory.SecretExpired:
		return aadsts.New(aadsts.ExpiredClientSecret, "The provided client secret keys for app '%s' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.", cl.AppID)
	}
	return invalidSecret(cl)
}

func invalidSecret(cl client) error {
	return aadsts.New(aadsts.InvalidClientSecret, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", cl.AppID)
}

// sourceAddress is the request's peer address without its port.
func sourceAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
