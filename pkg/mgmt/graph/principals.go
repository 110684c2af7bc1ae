package graph

import (
	"errors"
	"net/http"
	"slices"

	"github.com/google/uuid"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

type spJSON struct {
	Context               string          `json:"@odata.context,omitempty"`
	ID                    string          `json:"id"`
	AppID                 string          `json:"appId"`
	DisplayName           string          `json:"displayName"`
	AccountEnabled        bool            `json:"accountEnabled"`
	ServicePrincipalNames []string        `json:"servicePrincipalNames"`
	AppRoles              []store.AppRole `json:"appRoles"`
}

type assignmentJSON struct {
	Context     string `json:"@odata.context,omitempty"`
	ID          string `json:"id"`
	PrincipalID string `json:"principalId"`
	ResourceID  string `json:"resourceId"`
	AppRoleID   string `json:"appRoleId"`
}

// servicePrincipals routes servicePrincipals, servicePrincipals/{id},
// servicePrincipals(appId='...') and their appRoleAssignments.
func (s *Server) servicePrincipals(q *request, segs []string) error {
	tenant := q.caller.TenantID
	if segs[0] == "servicePrincipals" && len(segs) == 1 {
		switch q.r.Method {
		case http.MethodGet:
			sps, err := s.store.ListServicePrincipals(q.ctx(), tenant)
			if err != nil {
				return err
			}
			match := func(spJSON) bool { return true }
			if f := q.r.URL.Query().Get("$filter"); f != "" {
				prop, value, ok := parseEqFilter(f)
				match = func(sp spJSON) bool { return sp.AppID == value }
				if coll, v, anyEq := parseAnyEq(f); anyEq {
					// az ad sp create looks for the application's principal by name.
					prop, ok = coll, coll == "servicePrincipalNames"
					match = func(sp spJSON) bool { return slices.Contains(sp.ServicePrincipalNames, v) }
				}
				if !ok || (prop != "appId" && prop != "servicePrincipalNames") {
					return badRequest("Request_UnsupportedQuery", "Unsupported or invalid query filter clause specified for property '%s' of resource 'ServicePrincipal'.", prop)
				}
			}
			out := []spJSON{}
			for _, sp := range sps {
				j := s.spJSON(q, sp)
				if !match(j) {
					continue
				}
				if q.ownedOnly {
					if owned, err := s.ownsPrincipal(q, sp); err != nil {
						return err
					} else if !owned {
						continue
					}
				}
				out = append(out, j)
			}
			writeJSON(q.w, http.StatusOK, map[string]any{"@odata.context": base(q.r) + "servicePrincipals", "value": out})
			return nil
		case http.MethodPost:
			var in struct {
				AppID          string `json:"appId"`
				AccountEnabled *bool  `json:"accountEnabled"`
			}
			if aerr := decode(q.r, &in); aerr != nil {
				return aerr
			}
			if in.AccountEnabled != nil && !*in.AccountEnabled {
				// The gateway keeps no disabled principals: say so rather than
				// create one that signs in.
				return badRequest("Request_BadRequest", "Property 'accountEnabled' can only be true here: disabled service principals are not supported.")
			}
			app, err := s.store.GetApplicationByAppID(q.ctx(), tenant, in.AppID)
			if errors.Is(err, store.ErrNotFound) {
				return badRequest("Request_BadRequest", "The appId '%s' of the service principal does not reference a valid application object.", in.AppID)
			} else if err != nil {
				return err
			}
			if q.ownedOnly {
				if owned, err := s.owns(q, app.ObjectID); err != nil {
					return err
				} else if !owned {
					return denied()
				}
			}
			sp := store.ServicePrincipal{ObjectID: uuid.NewString(), TenantID: tenant, AppID: app.AppID, DisplayName: app.DisplayName}
			if err := s.store.CreateServicePrincipal(q.ctx(), sp); err != nil {
				if errors.Is(err, store.ErrAlreadyExists) {
					return newError(http.StatusConflict, "Request_MultipleObjectsWithSameKeyValue", "The service principal cannot be created, updated, or restored because the service principal name "+app.AppID+" is already in use.")
				}
				return err
			}
			out := s.spJSON(q, sp)
			out.Context = base(q.r) + "servicePrincipals/$entity"
			writeJSON(q.w, http.StatusCreated, out)
			return nil
		}
		return methodNotAllowed()
	}
	var sp store.ServicePrincipal
	var err error
	rest := segs[1:]
	if appID, ok := keyRef(segs[0], "servicePrincipals", "appId"); ok {
		sp, err = s.store.GetServicePrincipalByAppID(q.ctx(), tenant, appID)
	} else if segs[0] == "servicePrincipals" {
		sp, err = s.store.GetServicePrincipal(q.ctx(), segs[1])
		if err == nil && sp.TenantID != tenant {
			err = store.ErrNotFound
		}
		rest = segs[2:]
	} else {
		return badRequest("BadRequest", "Invalid object identifier '%s'.", segs[0])
	}
	if err != nil {
		return err
	}
	if q.ownedOnly {
		// Application.ReadWrite.OwnedBy reaches the service principals of
		// the applications the caller owns, and no others' (their role
		// assignments included).
		if owned, err := s.ownsPrincipal(q, sp); err != nil {
			return err
		} else if !owned {
			return denied()
		}
	}
	switch {
	case len(rest) == 0 && q.r.Method == http.MethodGet:
		out := s.spJSON(q, sp)
		out.Context = base(q.r) + "servicePrincipals/$entity"
		writeJSON(q.w, http.StatusOK, out)
		return nil
	case len(rest) >= 1 && rest[0] == "appRoleAssignments":
		if q.ownedOnly && q.r.Method != http.MethodGet {
			return denied() // granting roles needs Application.ReadWrite.All
		}
		return s.appRoleAssignments(q, sp, rest[1:])
	}
	return methodNotAllowed()
}

// ownsPrincipal reports whether the caller owns sp's application.
func (s *Server) ownsPrincipal(q *request, sp store.ServicePrincipal) (bool, error) {
	app, err := s.store.GetApplicationByAppID(q.ctx(), sp.TenantID, sp.AppID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return s.owns(q, app.ObjectID)
}

// spJSON shows a service principal with its application's roles.
func (s *Server) spJSON(q *request, sp store.ServicePrincipal) spJSON {
	out := spJSON{ID: sp.ObjectID, AppID: sp.AppID, DisplayName: sp.DisplayName, AccountEnabled: true,
		ServicePrincipalNames: []string{sp.AppID}, AppRoles: []store.AppRole{}}
	if app, err := s.store.GetApplicationByAppID(q.ctx(), sp.TenantID, sp.AppID); err == nil {
		if app.AppRoles != nil {
			out.AppRoles = app.AppRoles
		}
		out.ServicePrincipalNames = append(out.ServicePrincipalNames, app.IdentifierURIs...)
	}
	return out
}

// appRoleAssignments lists, grants and revokes roles of sp (the client).
func (s *Server) appRoleAssignments(q *request, sp store.ServicePrincipal, rest []string) error {
	ctxURL := base(q.r) + "servicePrincipals('" + sp.ObjectID + "')/appRoleAssignments"
	switch {
	case len(rest) == 0 && q.r.Method == http.MethodGet:
		as, err := s.store.ListAppRoleAssignments(q.ctx(), sp.ObjectID)
		if err != nil {
			return err
		}
		out := []assignmentJSON{}
		for _, a := range as {
			out = append(out, assignmentJSON{ID: a.ID, PrincipalID: a.PrincipalID, ResourceID: a.ResourceID, AppRoleID: a.AppRoleID})
		}
		writeJSON(q.w, http.StatusOK, map[string]any{"@odata.context": ctxURL, "value": out})
		return nil
	case len(rest) == 0 && q.r.Method == http.MethodPost:
		var in assignmentJSON
		if aerr := decode(q.r, &in); aerr != nil {
			return aerr
		}
		if in.PrincipalID != sp.ObjectID {
			return badRequest("Request_BadRequest", "Permission being assigned was not found on application '%s' or the principalId does not match the service principal addressed.", in.ResourceID)
		}
		resource, err := s.store.GetServicePrincipal(q.ctx(), in.ResourceID)
		if err != nil || resource.TenantID != sp.TenantID {
			return badRequest("Request_BadRequest", "The resourceId '%s' does not reference a service principal in the tenant.", in.ResourceID)
		}
		app, err := s.store.GetApplicationByAppID(q.ctx(), resource.TenantID, resource.AppID)
		if err != nil {
			return err
		}
		found := false
		for _, r := range app.AppRoles {
			found = found || r.ID == in.AppRoleID
		}
		if !found {
			return badRequest("Request_BadRequest", "Permission being assigned was not found on application '%s'.", resource.AppID)
		}
		a := store.AppRoleAssignment{ID: uuid.NewString(), PrincipalID: sp.ObjectID, ResourceID: resource.ObjectID, AppRoleID: in.AppRoleID}
		if err := s.store.CreateAppRoleAssignment(q.ctx(), a); err != nil {
			if errors.Is(err, store.ErrAlreadyExists) {
				return badRequest("Request_BadRequest", "Permission being assigned already exists on the object.")
			}
			return err
		}
		writeJSON(q.w, http.StatusCreated, assignmentJSON{Context: ctxURL + "/$entity", ID: a.ID, PrincipalID: a.PrincipalID, ResourceID: a.ResourceID, AppRoleID: a.AppRoleID})
		return nil
	case len(rest) == 1 && q.r.Method == http.MethodDelete:
		as, err := s.store.ListAppRoleAssignments(q.ctx(), sp.ObjectID)
		if err != nil {
			return err
		}
		for _, a := range as {
			if a.ID == rest[0] {
				if err := s.store.DeleteAppRoleAssignment(q.ctx(), a.ID); err != nil {
					return err
				}
				q.w.WriteHeader(http.StatusNoContent)
				return nil
			}
		}
		return notFound("Resource '%s' does not exist or one of its queried reference-property objects are not present.", rest[0])
	}
	return methodNotAllowed()
}
