package entra

import (
	"errors"
	"net/http"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/aadsts"
)

// writeError is the endpoint's one error writer. A refusal (*aadsts.Error
// anywhere in err's chain) is written as Entra writes it; anything else is
// a failure of the store or the signer, logged with its cause and answered
// with Entra's 503, which the SDKs retry. Request secrets are never logged.
// It returns the AADSTS code written, which the token endpoint counts.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) int {
	var e *aadsts.Error
	if errors.As(err, &e) {
		s.opts.logger.Info("token request refused", "path", r.URL.Path, "code", e.Code, "error", e.OAuth)
	} else {
		s.opts.logger.Error("token endpoint backend failure", "path", r.URL.Path, "error", err)
		e = aadsts.New(aadsts.ServiceUnavailable, "A transient error has occurred. Please try again.")
		e.RetryAfter = 5 * time.Second
	}
	aadsts.Write(w, r, e, s.opts.now())
	return e.Code
}

// missing is Entra's refusal of a request without parameter name.
func missing(name string) error {
	return aadsts.New(aadsts.MissingParameter, "The request body must contain the following parameter: '%s'.", name)
}
