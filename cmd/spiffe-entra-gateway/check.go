package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/check"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/issuermeta"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/mgmt/apiclient"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/workload/tokenfile"
)

const checkUsage = `Usage: spiffe-entra-gateway check <command> [flags]

Entra's verdict before you deploy, by the rules the gateway's token endpoint applies.
Exit status: 0 when Entra would accept, 1 on a blocking finding or a refusal, 2 on a usage error.

Commands:
  issuer URL [--ca FILE] [--timeout D] [-o json]
        fetch the issuer's discovery document and JWKS as Entra does and list what Entra would refuse
  assertion [--jwt FILE|-] [--socket ADDR] [--audience AUD]
            (--issuer URL --subject SUB [--fic-audience AUD] | --tenant ID --client-id ID [--endpoint URL])
            [--ca FILE] [-o json]
        say whether Entra would exchange the JWT (a file, standard input, or a JWT-SVID from the Workload API)
        for a client with that federated credential, or with the credentials the gateway's directory holds
`

func checkCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, checkUsage)
		return 2
	}
	switch args[0] {
	case "issuer":
		return checkIssuer(args[1:], stdout, stderr)
	case "assertion":
		return checkAssertion(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, checkUsage)
		return 0
	}
	fmt.Fprintf(stderr, "check: unknown command %q\n\n%s", args[0], checkUsage)
	return 2
}

// checkFlags are the flags both commands share.
type checkFlags struct {
	fs     *flag.FlagSet
	ca     *string
	output *string
}

func newCheckFlags(name string, stderr io.Writer) checkFlags {
	fs := flag.NewFlagSet("check "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return checkFlags{fs: fs,
		ca:     fs.String("ca", "", "PEM file of a private CA the issuer's certificate chains to (Entra trusts public roots only)"),
		output: fs.String("o", "text", "output: text or json")}
}

// parse parses args, allowing flags after positional arguments, and
// returns the positional ones.
func (c checkFlags) parse(args []string) ([]string, int) {
	var pos []string
	for {
		if err := c.fs.Parse(args); err != nil {
			return nil, 2
		}
		if c.fs.NArg() == 0 {
			break
		}
		pos, args = append(pos, c.fs.Arg(0)), c.fs.Args()[1:]
	}
	if *c.output != "text" && *c.output != "json" {
		fmt.Fprintf(c.fs.Output(), "%s: -o %q: want text or json\n", c.fs.Name(), *c.output)
		return nil, 2
	}
	return pos, 0
}

func (c checkFlags) caPEM() ([]byte, error) {
	if *c.ca == "" {
		return nil, nil
	}
	pem, err := readLimited(*c.ca, 1<<20)
	if err != nil {
		return nil, err
	}
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--ca %s holds no PEM certificate", *c.ca)
	}
	return pem, nil
}

func (c checkFlags) printJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func checkIssuer(args []string, stdout, stderr io.Writer) int {
	c := newCheckFlags("issuer", stderr)
	timeout := c.fs.Duration("timeout", issuermeta.DefaultTimeout, "how long each fetch may take")
	pos, status := c.parse(args)
	if status != 0 {
		return status
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "check issuer: give one issuer URL\n\n%s", checkUsage)
		return 2
	}
	ca, err := c.caPEM()
	if err != nil {
		fmt.Fprintf(stderr, "check issuer: %v\n", err)
		return 2
	}
	r := check.Issuer(context.Background(), pos[0], check.IssuerOptions{CA: ca, Timeout: *timeout})
	if *c.output == "json" {
		c.printJSON(stdout, r)
	} else {
		printIssuer(stdout, r)
	}
	if r.Blocking {
		return 1
	}
	return 0
}

func printIssuer(w io.Writer, r check.IssuerReport) {
	fmt.Fprintf(w, "issuer     %s\n", r.Issuer)
	for _, d := range []struct {
		name string
		doc  issuermeta.Document
	}{{"discovery", r.Metadata.Discovery}, {"jwks", r.Metadata.JWKS}} {
		if d.doc.URL == "" {
			continue
		}
		fmt.Fprintf(w, "%-10s %s", d.name, d.doc.URL)
		if d.doc.Status != 0 {
			fmt.Fprintf(w, "  HTTP %d, %d bytes, %s", d.doc.Status, d.doc.Bytes, d.doc.Elapsed.Round(time.Millisecond))
		}
		fmt.Fprintln(w)
	}
	if r.Metadata.JWKS.Status != 0 {
		fmt.Fprintf(w, "keys       %d published, %d Entra verifies RS256 tokens with\n", len(r.Metadata.Keys), r.UsableKeys)
	}
	printFindings(w, r.Findings)
	if r.Blocking {
		fmt.Fprintln(w, "verdict    Entra would refuse tokens of this issuer")
	} else {
		fmt.Fprintln(w, "verdict    Entra would accept tokens of this issuer")
	}
}

func printFindings(w io.Writer, fs []check.Finding) {
	for _, f := range fs {
		code := ""
		if f.Code != 0 {
			code = fmt.Sprintf("AADSTS%d", f.Code)
		}
		fmt.Fprintf(w, "%-9s  %-14s %s\n", strings.ToUpper(string(f.Severity)), code, f.What)
		if f.Fix != "" {
			fmt.Fprintf(w, "%-9s  %-14s fix: %s\n", "", "", f.Fix)
		}
	}
}

func checkAssertion(args []string, stdout, stderr io.Writer) int {
	c := newCheckFlags("assertion", stderr)
	fs := c.fs
	jwtFile := fs.String("jwt", "", "file holding the JWT, or - for standard input (default: a JWT-SVID from the Workload API)")
	socket := fs.String("socket", os.Getenv(workloadapi.SocketEnv), "Workload API address (default $SPIFFE_ENDPOINT_SOCKET)")
	audience := fs.String("audience", tokenfile.DefaultAudience, "audience of the JWT-SVID fetched from the Workload API")
	issuer := fs.String("issuer", "", "federated credential: issuer")
	subject := fs.String("subject", "", "federated credential: subject")
	ficAudience := fs.String("fic-audience", directory.TokenExchangeAudience, "federated credential: audience")
	tenant := fs.String("tenant", os.Getenv("AZURE_TENANT_ID"), "the application's tenant, to read its credentials from the gateway's directory (default $AZURE_TENANT_ID)")
	clientID := fs.String("client-id", "", "the application (client) id whose credentials the gateway's directory holds")
	endpoint := fs.String("endpoint", os.Getenv("AZURE_AUTHORITY_HOST"), "the gateway's Entra endpoint (default $AZURE_AUTHORITY_HOST)")
	apiToken := fs.String("token", os.Getenv("GATEWAY_API_TOKEN"), "bearer token for the gateway's Graph API (default $GATEWAY_API_TOKEN); without one, a token is requested with $AZURE_CLIENT_ID and $AZURE_CLIENT_SECRET")
	timeout := fs.Duration("timeout", 30*time.Second, "how long the whole check may take")
	if pos, status := c.parse(args); status != 0 {
		return status
	} else if len(pos) > 0 {
		fmt.Fprintf(stderr, "check assertion: unexpected arguments %q\n", pos)
		return 2
	}
	fromFlags, fromDirectory := *issuer != "" || *subject != "", *clientID != ""
	if fromFlags == fromDirectory || fromFlags && (*issuer == "" || *subject == "") {
		fmt.Fprintf(stderr, "check assertion: give either --issuer and --subject, or --tenant and --client-id\n\n%s", checkUsage)
		return 2
	}
	ca, err := c.caPEM()
	if err != nil {
		fmt.Fprintf(stderr, "check assertion: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	assertion, err := readAssertion(ctx, *jwtFile, *socket, *audience)
	if err != nil {
		fmt.Fprintf(stderr, "check assertion: %v\n", err)
		return 1
	}
	creds := []store.FederatedCredential{{Name: "(flags)", Issuer: *issuer, Subject: *subject, Audiences: []string{*ficAudience}}}
	if fromDirectory {
		if creds, err = directoryCredentials(ctx, *endpoint, *tenant, *clientID, *apiToken); err != nil {
			fmt.Fprintf(stderr, "check assertion: %v\n", err)
			return 1
		}
	}
	r := check.Assertion(ctx, check.Verifier(ca), assertion, creds)
	if *c.output == "json" {
		c.printJSON(stdout, r)
	} else {
		printAssertion(stdout, r)
	}
	if !r.Exchangeable {
		return 1
	}
	return 0
}

func readAssertion(ctx context.Context, file, socket, audience string) (string, error) {
	switch file {
	case "":
		if socket == "" {
			return "", errors.New("no JWT: give --jwt FILE, --jwt - or a Workload API address (--socket or SPIFFE_ENDPOINT_SOCKET)")
		}
		svid, err := workloadapi.FetchJWTSVID(ctx, jwtsvid.Params{Audience: audience}, workloadapi.WithAddr(socket))
		if err != nil {
			return "", fmt.Errorf("fetch a JWT-SVID from %s: %w", socket, err)
		}
		return svid.Marshal(), nil
	case "-":
		b, err := io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
		return strings.TrimSpace(string(b)), err
	}
	b, err := readLimited(file, 1<<20)
	return strings.TrimSpace(string(b)), err
}

// directoryCredentials reads an application's federated credentials from
// the gateway's Graph API.
func directoryCredentials(ctx context.Context, endpoint, tenant, appID, token string) ([]store.FederatedCredential, error) {
	if endpoint == "" {
		return nil, errors.New("no gateway: give --endpoint or set AZURE_AUTHORITY_HOST")
	}
	cl := &apiclient.Client{HTTP: &http.Client{Timeout: 30 * time.Second}, Endpoint: endpoint, Token: token, Tenant: tenant,
		ClientID: os.Getenv("AZURE_CLIENT_ID"), ClientSecret: os.Getenv("AZURE_CLIENT_SECRET")}
	if cl.ClientSecret == "" {
		cl.ClientSecret = os.Getenv("GATEWAY_DEV_CLIENT_SECRET")
	}
	var list struct {
		Value []struct {
			ID        string   `json:"id"`
			Name      string   `json:"name"`
			Issuer    string   `json:"issuer"`
			Subject   string   `json:"subject"`
			Audiences []string `json:"audiences"`
			Claims    *struct {
				Value string `json:"value"`
			} `json:"claimsMatchingExpression"`
		} `json:"value"`
	}
	path := "/v1.0/applications(appId='" + url.PathEscape(appID) + "')/federatedIdentityCredentials"
	if _, err := cl.Do(ctx, http.MethodGet, path, apiclient.Graph, nil, &list); err != nil {
		return nil, fmt.Errorf("read the federated credentials of %s: %w", appID, err)
	}
	creds := []store.FederatedCredential{}
	for _, f := range list.Value {
		c := store.FederatedCredential{ID: f.ID, Name: f.Name, Issuer: f.Issuer, Subject: f.Subject, Audiences: f.Audiences}
		if f.Claims != nil {
			c.ClaimsMatchingExpression = f.Claims.Value
		}
		creds = append(creds, c)
	}
	return creds, nil
}

func printAssertion(w io.Writer, r check.AssertionReport) {
	t := r.Token
	fmt.Fprintf(w, "token      alg %s, kid %s, typ %s\n", orNone(t.Alg), orNone(t.Kid), orNone(t.Typ))
	fmt.Fprintf(w, "           iss %s\n           sub %s\n           aud %s\n", orNone(t.Issuer), orNone(t.Subject), orNone(strings.Join(t.Audience, ", ")))
	for _, d := range []struct {
		name string
		v    *int64
	}{{"iat", t.IssuedAt}, {"nbf", t.NotBefore}, {"exp", t.Expiry}} {
		if d.v != nil {
			fmt.Fprintf(w, "           %s %s\n", d.name, time.Unix(*d.v, 0).UTC().Format(time.RFC3339))
		}
	}
	if r.Exchangeable {
		fmt.Fprintf(w, "verdict    Entra would exchange it: it matches the credential %q\n", r.Matched.Name)
		return
	}
	fmt.Fprintf(w, "verdict    Entra would refuse it: HTTP %d %s\n           %s\n", r.Refusal.Status, r.Refusal.Error, r.Refusal.Message)
	if n := r.Nearest; n != nil {
		fmt.Fprintf(w, "nearest    credential %q (issuer %s, subject %s, audiences %s)\n", n.Credential.Name, n.Credential.Issuer, orNone(n.Credential.Subject), strings.Join(n.Credential.Audiences, ", "))
		for _, d := range n.Differences {
			fmt.Fprintf(w, "           - %s\n", d)
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
