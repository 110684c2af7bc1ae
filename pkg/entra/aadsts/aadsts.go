// Package aadsts holds Entra's token endpoint error codes and writes them in
// the body shape Entra uses, so that MSAL and the Azure SDKs surface them
// exactly as they would surface Entra's own.
package aadsts

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// Error is one Entra token endpoint failure.
type Error struct {
	Code    int    // the AADSTS number
	OAuth   string // the OAuth 2.0 error, such as "invalid_client"
	Status  int    // the HTTP status
	Message string // the text after "AADSTSnnnn: "
	// RetryAfter, when set, is sent as a Retry-After header (503s).
	RetryAfter time.Duration
}

// Error returns the message as Entra prints it, without the trace suffix.
func (e *Error) Error() string {
	return "AADSTS" + strconv.Itoa(e.Code) + ": " + e.Message
}

// Error codes the gateway returns. Their OAuth error and status follow
// Entra (reference/entra.md, section 2.3): invalid_client is 401, every other
// error 400, temporarily_unavailable 503.
const (
	MissingParameter            = 900144
	MissingCredentialField      = 90014 // scope of client credentials, iss or aud of an assertion; 900144 is every other missing parameter
	MissingServicePrincipal     = 7000229
	InvalidJWTHeaderType        = 5002727
	NoKeyIdentifier             = 5002723
	InvalidTenantIdentifier     = 900023
	DuplicateParameter          = 9000411
	MalformedRequestBody        = 900143
	UnsupportedGrantType        = 70003
	TenantNotFound              = 90002
	ApplicationNotFound         = 700016
	InvalidApplicationID        = 700038
	InvalidClientSecret         = 7000215
	ExpiredClientSecret         = 7000222
	NoClientCredential          = 7000216
	InvalidClientAssertionType  = 70002 // reused by Entra for several client authentication failures
	ClientAssertionSignature    = 700027
	ClientAssertionClient       = 700021
	ScopeNotDefault             = 1002012
	InvalidScope                = 70011
	MultipleResources           = 700022
	ResourceNotFound            = 500011
	NoFederatedCredentials      = 70025
	NoMatchingIssuer            = 700211
	NoMatchingAudience          = 700212
	NoMatchingSubject           = 700213
	NoMatchingSubjectCase       = 7002138
	NoMatchingExpression        = 7002131
	EntraIssuedAssertion        = 700222
	AssertionTimeRange          = 700024
	AssertionLifetime           = 70023
	SigningKeyNotFound          = 7000272
	IssuerMetadataUnavailable   = 90061
	UnsupportedSigningAlgorithm = 5002738
	UnsupportedKeyForAlgorithm  = 5002730
	InvalidJWT                  = 50027
	InvalidUsernameOrPassword   = 50126
	UserNotFound                = 50034
	ServiceUnavailable          = 90033
	AccountLocked               = 50053 // smart lockout
	MethodNotAccepted           = 900561
	TooManyRequests             = 90055 // TenantThrottlingThreshold
	InvalidInstance             = 50049
	ConfidentialClientNoSecret  = 7000218 // a confidential client without a secret or assertion in a public-client flow
	PublicClientWithCredential  = 700025
)

type kind struct {
	oauth  string
	status int
	uri    bool // Entra adds error_uri for some codes only
}

var kinds = map[int]kind{
	MissingParameter:            {"invalid_request", 400, false},
	MissingCredentialField:      {"invalid_request", 400, true},
	MissingServicePrincipal:     {"invalid_client", 401, false},
	InvalidJWTHeaderType:        {"invalid_request", 400, false},
	NoKeyIdentifier:             {"invalid_client", 401, true},
	InvalidTenantIdentifier:     {"invalid_request", 400, true},
	DuplicateParameter:          {"invalid_request", 400, false},
	MalformedRequestBody:        {"invalid_request", 400, false},
	UnsupportedGrantType:        {"unsupported_grant_type", 400, false},
	TenantNotFound:              {"invalid_tenant", 400, true},
	ApplicationNotFound:         {"unauthorized_client", 400, true},
	InvalidApplicationID:        {"unauthorized_client", 400, false},
	InvalidClientSecret:         {"invalid_client", 401, true},
	ExpiredClientSecret:         {"invalid_client", 401, true},
	NoClientCredential:          {"invalid_client", 401, true},
	InvalidClientAssertionType:  {"invalid_client", 401, true},
	ClientAssertionSignature:    {"invalid_client", 401, true},
	ClientAssertionClient:       {"invalid_client", 401, true},
	ScopeNotDefault:             {"invalid_scope", 400, false}, // no error_uri in a 2023-12 capture
	InvalidScope:                {"invalid_scope", 400, true},
	MultipleResources:           {"invalid_scope", 400, true},
	ResourceNotFound:            {"invalid_resource", 400, true},
	NoFederatedCredentials:      {"invalid_client", 401, true},
	NoMatchingIssuer:            {"invalid_client", 401, true},
	NoMatchingAudience:          {"invalid_client", 401, true},
	NoMatchingSubject:           {"invalid_client", 401, true},
	NoMatchingSubjectCase:       {"invalid_client", 401, true},
	NoMatchingExpression:        {"invalid_client", 401, true},
	EntraIssuedAssertion:        {"invalid_client", 401, true},
	AssertionTimeRange:          {"invalid_client", 401, true},
	AssertionLifetime:           {"invalid_client", 401, true}, // invalid_request in a 2022 capture, invalid_client in 2023's
	SigningKeyNotFound:          {"invalid_client", 401, true},
	IssuerMetadataUnavailable:   {"invalid_request", 400, true},
	UnsupportedSigningAlgorithm: {"invalid_client", 401, true}, // invalid_request in a 2021 capture, invalid_client in 2023's
	UnsupportedKeyForAlgorithm:  {"invalid_request", 400, true},
	InvalidJWT:                  {"invalid_request", 400, true},
	InvalidUsernameOrPassword:   {"invalid_grant", 400, true},
	UserNotFound:                {"invalid_grant", 400, true},
	ServiceUnavailable:          {"temporarily_unavailable", 503, false},
	AccountLocked:               {"invalid_grant", 400, true},
	MethodNotAccepted:           {"invalid_request", 400, false},
	TooManyRequests:             {"temporarily_unavailable", 429, false},
	InvalidInstance:             {"invalid_instance", 400, false},
	ConfidentialClientNoSecret:  {"invalid_client", 401, true}, // error_uri in a 2024-12 capture
	PublicClientWithCredential:  {"invalid_client", 401, true},
}

// New returns the error for code with a formatted message. It panics on a
// code missing from the table: that is a programming error caught by tests.
func New(code int, format string, args ...any) *Error {
	k, ok := kinds[code]
	if !ok {
		panic(fmt.Sprintf("aadsts: code %d is not in the table", code))
	}
	return &Error{Code: code, OAuth: k.oauth, Status: k.status, Message: fmt.Sprintf(format, args...)}
}

// Body is the JSON body of an Entra token endpoint error.
type Body struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	Timestamp        string `json:"timestamp"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
	ErrorURI         string `json:"error_uri,omitempty"`
}

// timestampLayout is Entra's "2026-08-13 10:11:12Z".
const timestampLayout = "2006-01-02 15:04:05Z"

// NewBody renders e as Entra does at time now. correlationID is the
// client's client-request-id when it sent one; otherwise a new id is used.
func NewBody(e *Error, correlationID string, now time.Time) Body {
	now = now.UTC()
	trace := uuid.NewString()
	if _, err := uuid.Parse(correlationID); err != nil {
		correlationID = uuid.NewString()
	}
	b := Body{
		Error: e.OAuth,
		ErrorDescription: e.Error() + " Trace ID: " + trace + " Correlation ID: " + correlationID +
			" Timestamp: " + now.Format(timestampLayout),
		ErrorCodes:    []int{e.Code},
		Timestamp:     now.Format(timestampLayout),
		TraceID:       trace,
		CorrelationID: correlationID,
	}
	if kinds[e.Code].uri {
		b.ErrorURI = "https://login.microsoftonline.com/error?code=" + strconv.Itoa(e.Code)
	}
	return b
}

// CorrelationID returns the client-request-id a client sent, from the
// header MSAL uses or the form field msal-node uses.
func CorrelationID(r *http.Request) string {
	if id := r.Header.Get("client-request-id"); id != "" {
		return id
	}
	return r.URL.Query().Get("client-request-id")
}

// Write sends e as Entra's JSON error with Entra's status and no-cache headers.
func Write(w http.ResponseWriter, r *http.Request, e *Error, now time.Time) {
	body, _ := json.Marshal(NewBody(e, CorrelationID(r), now))
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store, no-cache")
	h.Set("Pragma", "no-cache")
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(e.RetryAfter.Seconds())))
	}
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}
