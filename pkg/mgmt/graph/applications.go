package graph

import (
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

type apiSettings struct {
	RequestedAccessTokenVersion *int `json:"requestedAccessTokenVersion"`
}

type appJSON struct {
	Context             string          `json:"@odata.context,omitempty"`
	ID                  string          `json:"id"`
	AppID               string          `json:"appId"`
	DisplayName         string          `json:"displayName"`
	IdentifierURIs      []string        `json:"identifierUris"`
	AppRoles            []store.AppRole `json:"appRoles"`
	API                 apiSettings     `json:"api"`
	PublicClient        bool            `json:"isFallbackPublicClient"`
	PasswordCredentials []passwordJSON  `json:"passwordCredentials"`
	KeyCredentials      []keyJSON       `json:"keyCredentials"`
	CreatedDateTime     string          `json:"createdDateTime"`
}

// appInput is a create or PATCH body: absent properties stay as they are.
type appInput struct {
	DisplayName    *string          `json:"displayName"`
	IdentifierURIs *[]string        `json:"identifierUris"`
	AppRoles       *[]store.AppRole `json:"appRoles"`
	API            *apiSettings     `json:"api"`
	PublicClient   *bool            `json:"isFallbackPublicClient"`
	KeyCredentials *[]keyJSON       `json:"keyCredentials"`
	SignInAudience *string          `json:"signInAudience"`
}

func graphTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// applications routes applications, applications/{id},
// applications(appId='...') and what lies below them.
func (s *Server) applications(q *request, segs []string) error {
	var ref string
	var byAppID bool
	rest := segs[1:]
	if segs[0] == "applications" {
		if len(segs) == 1 {
			switch q.r.Method {
			case http.MethodGet:
				return s.listApplications(q)
			case http.MethodPost:
				return s.createApplication(q)
			}
			return methodNotAllowed()
		}
		ref, rest = segs[1], segs[2:]
	} else {
		var ok bool
		if ref, ok = keyRef(segs[0], "applications", "appId"); !ok {
			return badRequest("BadRequest", "Invalid object identifier '%s'.", segs[0])
		}
		byAppID = true
	}
	app, aerr := s.findApplication(q, ref, byAppID)
	if aerr != nil {
		return aerr
	}
	if len(rest) == 0 {
		switch q.r.Method {
		case http.MethodGet:
			return s.writeApplication(q, http.StatusOK, app)
		case http.MethodPatch:
			return s.patchApplication(q, app)
		case http.MethodDelete:
			if err := s.store.DeleteApplication(q.ctx(), app.ObjectID); err != nil {
				return err
			}
			q.w.WriteHeader(http.StatusNoContent)
			return nil
		}
		return methodNotAllowed()
	}
	switch {
	case rest[0] == "addPassword" && len(rest) == 1 && q.r.Method == http.MethodPost:
		return s.addPassword(q, app)
	case rest[0] == "removePassword" && len(rest) == 1 && q.r.Method == http.MethodPost:
		return s.removePassword(q, app)
	case rest[0] == "federatedIdentityCredentials" || strings.HasPrefix(rest[0], "federatedIdentityCredentials("):
		return s.federatedCredentials(q, app, rest)
	}
	return badRequest("BadRequest", "Resource not found for the segment '%s'.", rest[0])
}

func methodNotAllowed() error {
	return newError(http.StatusMethodNotAllowed, "Request_BadRequest", "The HTTP method is not allowed on this resource.")
}

func (s *Server) findApplication(q *request, ref string, byAppID bool) (store.Application, error) {
	var app store.Application
	var err error
	if byAppID {
		app, err = s.store.GetApplicationByAppID(q.ctx(), q.caller.TenantID, ref)
	} else {
		app, err = s.store.GetApplication(q.ctx(), ref)
		if err == nil && app.TenantID != q.caller.TenantID {
			err = store.ErrNotFound // another tenant's object does not exist here
		}
	}
	if err == nil && app.ManagedBy == directory.ManagedByMicrosoft {
		// Microsoft's applications are registered in Microsoft's tenant:
		// a customer tenant holds only their service principals, and
		// cannot change or delete them.
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) {
		return app, notFound("Resource '%s' does not exist or one of its queried reference-property objects are not present.", ref)
	}
	if err != nil {
		return app, err
	}
	if q.ownedOnly {
		owned, err := s.owns(q, app.ObjectID)
		if err != nil {
			return app, err
		}
		if !owned {
			return app, denied()
		}
	}
	return app, nil
}

// owns reports whether the caller owns the application.
func (s *Server) owns(q *request, objectID string) (bool, error) {
	owners, err := s.store.ListApplicationOwners(q.ctx(), objectID)
	return slices.Contains(owners, q.caller.ObjectID), err
}

func (s *Server) appJSON(q *request, app store.Application) (appJSON, error) {
	out := appJSON{ID: app.ObjectID, AppID: app.AppID, DisplayName: app.DisplayName, IdentifierURIs: app.IdentifierURIs,
		AppRoles: app.AppRoles, CreatedDateTime: graphTime(app.CreatedAt), PublicClient: app.PublicClient,
		PasswordCredentials: []passwordJSON{}, KeyCredentials: []keyJSON{}}
	if out.IdentifierURIs == nil {
		out.IdentifierURIs = []string{}
	}
	if out.AppRoles == nil {
		out.AppRoles = []store.AppRole{}
	}
	if app.AccessTokenAcceptedVersion != 0 {
		v := app.AccessTokenAcceptedVersion
		out.API.RequestedAccessTokenVersion = &v
	}
	pws, err := s.store.ListPasswordCredentials(q.ctx(), app.ObjectID)
	if err != nil {
		return out, err
	}
	for _, p := range pws {
		out.PasswordCredentials = append(out.PasswordCredentials, passwordJSON{KeyID: p.KeyID, DisplayName: p.DisplayName, Hint: p.Hint,
			StartDateTime: graphTime(p.StartDateTime), EndDateTime: graphTime(p.EndDateTime)})
	}
	keys, err := s.store.ListKeyCredentials(q.ctx(), app.ObjectID)
	if err != nil {
		return out, err
	}
	for _, k := range keys {
		out.KeyCredentials = append(out.KeyCredentials, keyJSON{KeyID: k.KeyID, DisplayName: k.DisplayName, Type: "AsymmetricX509Cert", Usage: "Verify",
			CustomKeyIdentifier: strings.ToUpper(hex.EncodeToString(k.ThumbprintSHA1)), StartDateTime: graphTime(k.StartDateTime), EndDateTime: graphTime(k.EndDateTime)})
	}
	return out, nil
}

func (s *Server) writeApplication(q *request, status int, app store.Application) error {
	out, aerr := s.appJSON(q, app)
	if aerr != nil {
		return aerr
	}
	out.Context = base(q.r) + "applications/$entity"
	writeJSON(q.w, status, out)
	return nil
}

// listApplications supports $filter on appId and displayName (eq), on
// displayName (startswith, case-insensitive as in Graph), $top and
// paging through @odata.nextLink.
func (s *Server) listApplications(q *request) error {
	apps, err := s.store.ListApplications(q.ctx(), q.caller.TenantID)
	if err != nil {
		return err
	}
	apps = slices.DeleteFunc(apps, func(a store.Application) bool { return a.ManagedBy == directory.ManagedByMicrosoft })
	if q.ownedOnly {
		var owned []store.Application
		for _, a := range apps {
			ok, err := s.owns(q, a.ObjectID)
			if err != nil {
				return err
			}
			if ok {
				owned = append(owned, a)
			}
		}
		apps = owned
	}
	query := q.r.URL.Query()
	if f := query.Get("$filter"); f != "" {
		prop, value, ok := parseEqFilter(f)
		match := func(a store.Application) bool {
			return (prop == "appId" && a.AppID == value) || (prop == "displayName" && a.DisplayName == value)
		}
		if p, v, sw := parseStartsWith(f); sw {
			prop, value, ok = p, v, p == "displayName"
			match = func(a store.Application) bool {
				return strings.HasPrefix(strings.ToLower(a.DisplayName), strings.ToLower(v))
			}
		}
		if !ok || (prop != "appId" && prop != "displayName") {
			return badRequest("Request_UnsupportedQuery", "Unsupported or invalid query filter clause specified for property '%s' of resource 'Application'.", prop)
		}
		var kept []store.Application
		for _, a := range apps {
			if match(a) {
				kept = append(kept, a)
			}
		}
		apps = kept
	}
	top, skip := 100, 0
	if t := query.Get("$top"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 || n > 999 {
			return badRequest("Request_BadRequest", "Invalid page size specified: '%s'. Must be between 1 and 999 inclusive.", t)
		}
		top = n
	}
	if t := query.Get("$skiptoken"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 || n > len(apps) {
			return badRequest("Request_BadRequest", "Invalid skip token '%s'.", t)
		}
		skip = n
	}
	page := []appJSON{}
	for i := skip; i < len(apps) && i < skip+top; i++ {
		a, aerr := s.appJSON(q, apps[i])
		if aerr != nil {
			return aerr
		}
		page = append(page, a)
	}
	body := map[string]any{"@odata.context": base(q.r) + "applications", "value": page}
	if skip+top < len(apps) {
		next := *q.r.URL
		nq := next.Query()
		nq.Set("$skiptoken", strconv.Itoa(skip+top))
		nq.Set("$top", strconv.Itoa(top))
		next.RawQuery = nq.Encode()
		body["@odata.nextLink"] = origin(q.r) + next.RequestURI()
	}
	writeJSON(q.w, http.StatusOK, body)
	return nil
}

// parseEqFilter reads `prop eq 'value'`.
func parseEqFilter(f string) (prop, value string, ok bool) {
	prop, rest, ok := strings.Cut(strings.TrimSpace(f), " eq ")
	rest = strings.TrimSpace(rest)
	if !ok || len(rest) < 2 || rest[0] != '\'' || rest[len(rest)-1] != '\'' {
		return strings.TrimSpace(prop), "", false
	}
	return strings.TrimSpace(prop), strings.ReplaceAll(rest[1:len(rest)-1], "''", "'"), true
}

func (s *Server) createApplication(q *request) error {
	var in appInput
	if aerr := decode(q.r, &in); aerr != nil {
		return aerr
	}
	if in.DisplayName == nil || strings.TrimSpace(*in.DisplayName) == "" {
		return badRequest("Request_BadRequest", "Property 'displayName' is required.")
	}
	app := store.Application{ObjectID: uuid.NewString(), TenantID: q.caller.TenantID, AppID: uuid.NewString(), CreatedAt: s.now().UTC()}
	if aerr := applyAppInput(&app, in); aerr != nil {
		return aerr
	}
	var keys []store.KeyCredential
	if in.KeyCredentials != nil {
		var err error
		if _, keys, err = parseKeys(app.ObjectID, *in.KeyCredentials); err != nil {
			return err
		}
	}
	// As in Graph, an application created by an app belongs to it. The
	// application, its owner and its certificates are stored together, so
	// that a failure leaves none of them.
	if err := s.store.CreateApplication(q.ctx(), app, []string{q.caller.ObjectID}, keys); err != nil {
		if errors.Is(err, store.ErrAlreadyExists) {
			return badRequest("Request_BadRequest", "Another object with the same value for property identifierUris already exists.")
		}
		return err
	}
	return s.writeApplication(q, http.StatusCreated, app)
}

func applyAppInput(app *store.Application, in appInput) error {
	if err := checkAppLimits(in); err != nil {
		return err
	}
	if in.DisplayName != nil {
		app.DisplayName = *in.DisplayName
	}
	if in.IdentifierURIs != nil {
		for _, u := range *in.IdentifierURIs {
			if pu, err := url.Parse(u); err != nil || pu.Scheme == "" {
				return badRequest("Request_BadRequest", "Values of identifierUris property must follow the format api://<appId>, api://<tenantId>/<string>, or a verified domain; '%s' is not a URI.", u)
			}
		}
		app.IdentifierURIs = *in.IdentifierURIs
	}
	if in.AppRoles != nil {
		roles := *in.AppRoles
		for i := range roles {
			if roles[i].ID == "" {
				roles[i].ID = uuid.NewString()
			}
			if roles[i].Value == "" {
				return badRequest("Request_BadRequest", "Property 'value' is required on an app role.")
			}
		}
		app.AppRoles = roles
	}
	if in.PublicClient != nil {
		app.PublicClient = *in.PublicClient
	}
	if in.API != nil && in.API.RequestedAccessTokenVersion != nil {
		v := *in.API.RequestedAccessTokenVersion
		if v != 1 && v != 2 {
			return badRequest("Request_BadRequest", "Property 'requestedAccessTokenVersion' must be 1, 2 or null; %d is not.", v)
		}
		app.AccessTokenAcceptedVersion = v
	}
	return nil
}

func (s *Server) patchApplication(q *request, app store.Application) error {
	var in appInput
	if aerr := decode(q.r, &in); aerr != nil {
		return aerr
	}
	var keep map[string]bool
	var add []store.KeyCredential
	if in.KeyCredentials != nil {
		var err error
		if keep, add, err = parseKeys(app.ObjectID, *in.KeyCredentials); err != nil {
			return err
		}
	}
	// The input applies to the application as stored when the write
	// begins, so that a concurrent PATCH of other properties is kept.
	err := s.store.UpdateApplication(q.ctx(), app.ObjectID, func(old store.Application) (store.Application, error) {
		return old, applyAppInput(&old, in)
	})
	if errors.Is(err, store.ErrAlreadyExists) {
		return badRequest("Request_BadRequest", "Another object with the same value for property identifierUris already exists.")
	}
	if err != nil {
		return err
	}
	if in.KeyCredentials != nil {
		if err := s.replaceKeys(q, app.ObjectID, keep, add); err != nil {
			return err
		}
	}
	q.w.WriteHeader(http.StatusNoContent)
	return nil
}
