package graph

// Bounds of an application's properties, Graph's where it documents one
// (100 permission scopes), otherwise chosen so that no one object can make
// every list of a tenant slow.
const (
	maxIdentifierURIs = 50
	maxAppRoles       = 100
	maxKeyCredentials = 50
	// maxPasswordCredentials bounds the secrets every client-secret check
	// compares against.
	maxPasswordCredentials = 20
	maxNameLength          = 256
	maxURILength           = 255
	maxRoleValue           = 120
)

// checkAppLimits refuses an input beyond the bounds.
func checkAppLimits(in appInput) error {
	tooMany := func(prop string, n, limit int) error {
		if n > limit {
			return badRequest("Request_BadRequest", "Property '%s' has %d values; at most %d are allowed.", prop, n, limit)
		}
		return nil
	}
	tooLong := func(prop, v string, limit int) error {
		if len(v) > limit {
			return badRequest("Request_BadRequest", "Property '%s' is %d characters long; at most %d are allowed.", prop, len(v), limit)
		}
		return nil
	}
	var errs []error
	if in.DisplayName != nil {
		errs = append(errs, tooLong("displayName", *in.DisplayName, maxNameLength))
	}
	if in.IdentifierURIs != nil {
		errs = append(errs, tooMany("identifierUris", len(*in.IdentifierURIs), maxIdentifierURIs))
		for _, u := range *in.IdentifierURIs {
			errs = append(errs, tooLong("identifierUris", u, maxURILength))
		}
	}
	if in.AppRoles != nil {
		errs = append(errs, tooMany("appRoles", len(*in.AppRoles), maxAppRoles))
		for _, r := range *in.AppRoles {
			errs = append(errs, tooLong("appRoles.value", r.Value, maxRoleValue), tooLong("appRoles.displayName", r.DisplayName, maxNameLength),
				tooLong("appRoles.description", r.Description, 1024))
		}
	}
	if in.KeyCredentials != nil {
		errs = append(errs, tooMany("keyCredentials", len(*in.KeyCredentials), maxKeyCredentials))
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
