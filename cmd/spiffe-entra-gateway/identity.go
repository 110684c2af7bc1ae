package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/mgmt/apiclient"
)

const identityUsage = `Usage: spiffe-entra-gateway identity <command> --subscription S --resource-group RG [flags]

Commands:
  create --name N [--location L]       create a user-assigned managed identity
  list                                 list the resource group's identities
  show --name N                        show one
  delete --name N                      delete one
  fic create --identity N --name F --issuer I --subject S [--audience A]
  fic list --identity N
  fic delete --identity N --name F
`

// armAPIVersion is the api-version the commands send.
const armAPIVersion = "2024-11-30"

func identityCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, identityUsage)
		return 2
	}
	cmdName, rest := args[0], args[1:]
	if cmdName == "fic" {
		if len(rest) == 0 {
			fmt.Fprint(stderr, identityUsage)
			return 2
		}
		cmdName, rest = "fic "+rest[0], rest[1:]
	}
	c, fs := newAPICommand("identity "+cmdName, stdout, stderr)
	sub := fs.String("subscription", "", "subscription id")
	rg := fs.String("resource-group", "", "resource group")
	name := fs.String("name", "", "the identity's name (for fic commands: the credential's)")
	identity := fs.String("identity", "", "the identity's name (fic commands)")
	location := fs.String("location", "westeurope", "the identity's location")
	issuer := fs.String("issuer", "", "the credential's issuer")
	subject := fs.String("subject", "", "the credential's subject")
	audience := fs.String("audience", "api://AzureADTokenExchange", "the credential's audience")
	if s := c.parse(rest); s != 0 {
		return s
	}
	if s := c.require("subscription", "resource-group"); s != 0 {
		return s
	}
	base := "/subscriptions/" + url.PathEscape(*sub) + "/resourceGroups/" + url.PathEscape(*rg) + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities"
	q := "?api-version=" + armAPIVersion
	idRow := func(m map[string]any) []string {
		p, _ := m["properties"].(map[string]any)
		return []string{str(m, "name"), str(p, "clientId"), str(p, "principalId"), str(m, "id")}
	}
	idColumns := []string{"NAME", "CLIENT ID", "PRINCIPAL ID", "ID"}
	ficRow := func(m map[string]any) []string {
		p, _ := m["properties"].(map[string]any)
		return []string{str(m, "name"), str(p, "issuer"), str(p, "subject"), fmt.Sprint(p["audiences"])}
	}
	ficCols := []string{"NAME", "ISSUER", "SUBJECT", "AUDIENCES"}
	var out map[string]any
	switch cmdName {
	case "create":
		if s := c.require("name"); s != 0 {
			return s
		}
		if _, err := c.client.Do(c.ctx, http.MethodPut, base+"/"+url.PathEscape(*name)+q, apiclient.ARM, map[string]any{"location": *location}, &out); err != nil {
			return c.fail(err)
		}
		return c.print(out, idColumns, [][]string{idRow(out)})
	case "show", "delete":
		if s := c.require("name"); s != 0 {
			return s
		}
		method := map[string]string{"show": http.MethodGet, "delete": http.MethodDelete}[cmdName]
		if _, err := c.client.Do(c.ctx, method, base+"/"+url.PathEscape(*name)+q, apiclient.ARM, nil, &out); err != nil {
			return c.fail(err)
		}
		if method == http.MethodDelete {
			return 0
		}
		return c.print(out, idColumns, [][]string{idRow(out)})
	case "list":
		var page struct {
			Value []map[string]any `json:"value"`
		}
		if _, err := c.client.Do(c.ctx, http.MethodGet, base+q, apiclient.ARM, nil, &page); err != nil {
			return c.fail(err)
		}
		var rows [][]string
		for _, m := range page.Value {
			rows = append(rows, idRow(m))
		}
		return c.print(page.Value, idColumns, rows)
	case "fic create", "fic delete", "fic list":
		if s := c.require("identity"); s != 0 {
			return s
		}
		ficBase := base + "/" + url.PathEscape(*identity) + "/federatedIdentityCredentials"
		if cmdName == "fic list" {
			var page struct {
				Value []map[string]any `json:"value"`
			}
			if _, err := c.client.Do(c.ctx, http.MethodGet, ficBase+q, apiclient.ARM, nil, &page); err != nil {
				return c.fail(err)
			}
			var rows [][]string
			for _, m := range page.Value {
				rows = append(rows, ficRow(m))
			}
			return c.print(page.Value, ficCols, rows)
		}
		if s := c.require("name"); s != 0 {
			return s
		}
		if cmdName == "fic delete" {
			if _, err := c.client.Do(c.ctx, http.MethodDelete, ficBase+"/"+url.PathEscape(*name)+q, apiclient.ARM, nil, nil); err != nil {
				return c.fail(err)
			}
			return 0
		}
		body := map[string]any{"properties": map[string]any{"issuer": *issuer, "subject": *subject, "audiences": []string{*audience}}}
		if _, err := c.client.Do(c.ctx, http.MethodPut, ficBase+"/"+url.PathEscape(*name)+q, apiclient.ARM, body, &out); err != nil {
			return c.fail(err)
		}
		return c.print(out, ficCols, [][]string{ficRow(out)})
	}
	fmt.Fprintf(stderr, "identity: unknown command %q\n\n%s", cmdName, identityUsage)
	return 2
}
