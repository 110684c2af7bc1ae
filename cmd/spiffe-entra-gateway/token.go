package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/workload/tokenexchange"
)

// listFlag collects a repeatable or comma-separated flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func token(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	socket := fs.String("socket", os.Getenv(workloadapi.SocketEnv), "Workload API address, unix:///path or tcp://ip:port (default $SPIFFE_ENDPOINT_SOCKET)")
	var audiences listFlag
	fs.Var(&audiences, "audience", "JWT-SVID audience, repeatable (default api://AzureADTokenExchange)")
	exchange := fs.String("exchange", "", "authority host of an Entra-compatible token endpoint to exchange the SVID at, such as https://login.microsoftonline.com")
	tenant := fs.String("tenant", "", "tenant id, with --exchange, --identity-endpoint or --env-file")
	clientID := fs.String("client-id", "", "client id of the app or managed identity, with --exchange or --env-file; with --identity-endpoint, the one used when a request names none")
	scope := fs.String("scope", "", "scope to request, such as https://vault.azure.net/.default, with --exchange")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the Workload API and the token endpoint (with --write --once: for the first token)")
	var w writeFlags
	w.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "token: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if len(audiences) == 0 {
		audiences = listFlag{"api://AzureADTokenExchange"}
	}
	if *exchange != "" && (*tenant == "" || *clientID == "" || *scope == "") {
		fmt.Fprintln(stderr, "token: --exchange needs --tenant, --client-id and --scope")
		return 2
	}
	if *socket == "" {
		fmt.Fprintln(stderr, "token: no Workload API address: set --socket or SPIFFE_ENDPOINT_SOCKET")
		return 2
	}
	if w.path != "" || w.identityAddr != "" {
		if *exchange != "" {
			fmt.Fprintln(stderr, "token: --write and --identity-endpoint cannot be combined with --exchange")
			return 2
		}
		return w.run(*socket, audiences, *tenant, *clientID, *timeout, stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	svid, err := workloadapi.FetchJWTSVID(ctx, jwtsvid.Params{Audience: audiences[0], ExtraAudiences: audiences[1:]},
		workloadapi.WithAddr(*socket))
	if err != nil {
		fmt.Fprintf(stderr, "token: fetch JWT-SVID from %s: %v\n", *socket, err)
		return 1
	}
	if *exchange == "" {
		fmt.Fprintln(stdout, svid.Marshal())
		return 0
	}
	resp, err := tokenexchange.Exchange(ctx, &http.Client{Timeout: *timeout}, tokenexchange.Request{
		AuthorityHost: *exchange, TenantID: *tenant, ClientID: *clientID, Scope: *scope, Assertion: svid.Marshal(),
	})
	if err != nil {
		fmt.Fprintf(stderr, "token: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, string(resp.Body))
	if !resp.OK() {
		fmt.Fprintf(stderr, "token: the token endpoint refused the exchange (HTTP %d)\n", resp.Status)
		return 1
	}
	return 0
}
