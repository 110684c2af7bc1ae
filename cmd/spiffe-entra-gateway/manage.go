package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/mgmt/apiclient"
)

// apiCommand is what every management command shares: the gateway, the
// credentials and the output format.
type apiCommand struct {
	fs     *flag.FlagSet
	client *apiclient.Client
	output *string
	stdout io.Writer
	ctx    context.Context
}

func newAPICommand(name string, stdout, stderr io.Writer) (*apiCommand, *flag.FlagSet) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &apiCommand{fs: fs, stdout: stdout, ctx: context.Background(), client: &apiclient.Client{HTTP: &http.Client{Timeout: 30 * time.Second}}}
	fs.StringVar(&c.client.Endpoint, "endpoint", os.Getenv("AZURE_AUTHORITY_HOST"), "the gateway's Entra endpoint (default $AZURE_AUTHORITY_HOST)")
	fs.StringVar(&c.client.Token, "token", os.Getenv("GATEWAY_API_TOKEN"), "bearer token for the API (default $GATEWAY_API_TOKEN); without one, a token is requested with the client credentials")
	fs.StringVar(&c.client.Tenant, "tenant", os.Getenv("AZURE_TENANT_ID"), "tenant for the client credentials (default $AZURE_TENANT_ID)")
	fs.StringVar(&c.client.ClientID, "client-id", os.Getenv("AZURE_CLIENT_ID"), "client id for the client credentials (default $AZURE_CLIENT_ID)")
	c.client.ClientSecret = os.Getenv("AZURE_CLIENT_SECRET")
	if c.client.ClientSecret == "" {
		c.client.ClientSecret = os.Getenv("GATEWAY_DEV_CLIENT_SECRET")
	}
	c.output = fs.String("o", "table", "output: table or json")
	return c, fs
}

// parse parses args and checks what every command needs.
func (c *apiCommand) parse(args []string) int {
	if err := c.fs.Parse(args); err != nil {
		return 2
	}
	if c.fs.NArg() > 0 {
		fmt.Fprintf(c.fs.Output(), "%s: unexpected arguments %q\n", c.fs.Name(), c.fs.Args())
		return 2
	}
	if c.client.Endpoint == "" {
		fmt.Fprintf(c.fs.Output(), "%s: no gateway: give --endpoint or set AZURE_AUTHORITY_HOST\n", c.fs.Name())
		return 2
	}
	if *c.output != "table" && *c.output != "json" {
		fmt.Fprintf(c.fs.Output(), "%s: -o %q: want table or json\n", c.fs.Name(), *c.output)
		return 2
	}
	return 0
}

// require checks the named flags, in order, and reports the first that is
// empty.
func (c *apiCommand) require(names ...string) int {
	for _, name := range names {
		if c.fs.Lookup(name).Value.String() == "" {
			fmt.Fprintf(c.fs.Output(), "%s: --%s is required\n", c.fs.Name(), name)
			return 2
		}
	}
	return 0
}

// parseApp parses args, checks that the application flag appFlag and the
// flags in more are set, and finds the application: it returns the
// application and its path, or the exit status when that failed.
func (c *apiCommand) parseApp(args []string, appFlag string, more ...string) (map[string]any, string, int) {
	if s := c.parse(args); s != 0 {
		return nil, "", s
	}
	if s := c.require(append([]string{appFlag}, more...)...); s != 0 {
		return nil, "", s
	}
	app, err := c.findApp(c.fs.Lookup(appFlag).Value.String())
	if err != nil {
		return nil, "", c.fail(err)
	}
	return app, "/v1.0/applications/" + str(app, "id"), 0
}

// fail reports err and returns the exit status 1.
func (c *apiCommand) fail(err error) int {
	fmt.Fprintf(c.fs.Output(), "%s: %v\n", c.fs.Name(), err)
	return 1
}

// print writes v as JSON, or as a table of the columns of rows.
func (c *apiCommand) print(v any, columns []string, rows [][]string) int {
	if *c.output == "json" {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
		return 0
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(columns, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	_ = tw.Flush()
	return 0
}

func str(m map[string]any, k string) string {
	if v, ok := m[k]; ok && v != nil {
		return fmt.Sprint(v)
	}
	return ""
}

// findApp gets the application named by an object id or an appId.
func (c *apiCommand) findApp(ref string) (map[string]any, error) {
	var app map[string]any
	_, err := c.client.Do(c.ctx, http.MethodGet, "/v1.0/applications/"+url.PathEscape(ref), apiclient.Graph, nil, &app)
	var apiErr *apiclient.APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
		_, err = c.client.Do(c.ctx, http.MethodGet, "/v1.0/applications(appId='"+url.PathEscape(ref)+"')", apiclient.Graph, nil, &app)
	}
	return app, err
}

const appUsage = `Usage: spiffe-entra-gateway app <command> [flags]

Commands:
  create --name NAME [--identifier-uri URI]   create an application and its service principal
  list                                         list applications
  show --id ID                                 show an application (object id or appId)
  delete --id ID                               delete an application
  credential add --id ID [--display-name N]    add a client secret and print it (shown once)

Every command takes --endpoint, --token or --tenant/--client-id (and AZURE_CLIENT_SECRET), and -o table|json.
`

func appCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, appUsage)
		return 2
	}
	if args[0] == "credential" {
		if len(args) < 2 || args[1] != "add" {
			fmt.Fprint(stderr, appUsage)
			return 2
		}
		c, fs := newAPICommand("app credential add", stdout, stderr)
		fs.String("id", "", "application object id or appId")
		name := fs.String("display-name", "", "the secret's display name")
		_, path, status := c.parseApp(args[2:], "id")
		if status != 0 {
			return status
		}
		var pw map[string]any
		if _, err := c.client.Do(c.ctx, http.MethodPost, path+"/addPassword", apiclient.Graph,
			map[string]any{"passwordCredential": map[string]any{"displayName": *name}}, &pw); err != nil {
			return c.fail(err)
		}
		return c.print(pw, []string{"KEY ID", "SECRET (shown once)", "EXPIRES"}, [][]string{{str(pw, "keyId"), str(pw, "secretText"), str(pw, "endDateTime")}})
	}
	c, fs := newAPICommand("app "+args[0], stdout, stderr)
	appRows := func(apps ...map[string]any) [][]string {
		var rows [][]string
		for _, a := range apps {
			rows = append(rows, []string{str(a, "displayName"), str(a, "appId"), str(a, "id")})
		}
		return rows
	}
	columns := []string{"DISPLAY NAME", "APP ID", "OBJECT ID"}
	switch args[0] {
	case "create":
		name := fs.String("name", "", "display name")
		var uris multiFlag
		fs.Var(&uris, "identifier-uri", "identifier URI (repeatable)")
		if s := c.parse(args[1:]); s != 0 {
			return s
		}
		if s := c.require("name"); s != 0 {
			return s
		}
		body := map[string]any{"displayName": *name}
		if len(uris) > 0 {
			body["identifierUris"] = []string(uris)
		}
		var app map[string]any
		if _, err := c.client.Do(c.ctx, http.MethodPost, "/v1.0/applications", apiclient.Graph, body, &app); err != nil {
			return c.fail(err)
		}
		// The portal creates the service principal with the app; clients
		// need it to get tokens.
		if _, err := c.client.Do(c.ctx, http.MethodPost, "/v1.0/servicePrincipals", apiclient.Graph, map[string]any{"appId": app["appId"]}, nil); err != nil {
			return c.fail(err)
		}
		return c.print(app, columns, appRows(app))
	case "list":
		if s := c.parse(args[1:]); s != 0 {
			return s
		}
		var all []map[string]any
		path := "/v1.0/applications"
		for path != "" {
			var page struct {
				Value    []map[string]any `json:"value"`
				NextLink string           `json:"@odata.nextLink"`
			}
			if _, err := c.client.Do(c.ctx, http.MethodGet, path, apiclient.Graph, nil, &page); err != nil {
				return c.fail(err)
			}
			all = append(all, page.Value...)
			path = ""
			if u, err := url.Parse(page.NextLink); err == nil && page.NextLink != "" {
				path = u.RequestURI()
			}
		}
		return c.print(all, columns, appRows(all...))
	case "show", "delete":
		fs.String("id", "", "application object id or appId")
		app, path, status := c.parseApp(args[1:], "id")
		if status != 0 {
			return status
		}
		if args[0] == "show" {
			return c.print(app, columns, appRows(app))
		}
		if _, err := c.client.Do(c.ctx, http.MethodDelete, path, apiclient.Graph, nil, nil); err != nil {
			return c.fail(err)
		}
		return 0
	}
	fmt.Fprintf(stderr, "app: unknown command %q\n\n%s", args[0], appUsage)
	return 2
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
