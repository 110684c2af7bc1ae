package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/mgmt/apiclient"
)

const ficUsage = `Usage: spiffe-entra-gateway fic <command> --app ID [flags]

Commands:
  create --app ID --parameters FILE   create a federated identity credential from the JSON that
                                      'az ad app federated-credential create --parameters' takes
  list --app ID                       list an application's federated identity credentials
  show --app ID --name NAME           show one (by name or id)
  delete --app ID --name NAME         delete one
`

// maxParameters bounds a --parameters file.
const maxParameters = 64 << 10

func ficRows(fics ...map[string]any) [][]string {
	var rows [][]string
	for _, f := range fics {
		aud, _ := json.Marshal(f["audiences"])
		rows = append(rows, []string{str(f, "name"), str(f, "issuer"), str(f, "subject"), strings.Trim(string(aud), "[]"), str(f, "id")})
	}
	return rows
}

var ficColumns = []string{"NAME", "ISSUER", "SUBJECT", "AUDIENCES", "ID"}

func ficCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, ficUsage)
		return 2
	}
	switch args[0] {
	case "create", "list", "show", "delete":
	default:
		fmt.Fprintf(stderr, "fic: unknown command %q\n\n%s", args[0], ficUsage)
		return 2
	}
	c, fs := newAPICommand("fic "+args[0], stdout, stderr)
	fs.String("app", "", "application object id or appId")
	name := fs.String("name", "", "the credential's name or id")
	params := fs.String("parameters", "", "JSON file: name, issuer, subject, audiences, description")
	var more []string
	switch args[0] {
	case "create":
		more = []string{"parameters"}
	case "show", "delete":
		more = []string{"name"}
	}
	_, path, status := c.parseApp(args[1:], "app", more...)
	if status != 0 {
		return status
	}
	path += "/federatedIdentityCredentials"
	switch args[0] {
	case "create":
		raw, err := readLimited(*params, maxParameters)
		if err != nil {
			return c.fail(err)
		}
		var body map[string]any
		if err := json.Unmarshal(raw, &body); err != nil {
			return c.fail(fmt.Errorf("--parameters %s: %w", *params, err))
		}
		var out map[string]any
		if _, err := c.client.Do(c.ctx, http.MethodPost, path, apiclient.Graph, body, &out); err != nil {
			return c.fail(err)
		}
		return c.print(out, ficColumns, ficRows(out))
	case "list":
		var page struct {
			Value []map[string]any `json:"value"`
		}
		if _, err := c.client.Do(c.ctx, http.MethodGet, path, apiclient.Graph, nil, &page); err != nil {
			return c.fail(err)
		}
		return c.print(page.Value, ficColumns, ficRows(page.Value...))
	default: // show or delete
		method := http.MethodGet
		if args[0] == "delete" {
			method = http.MethodDelete
		}
		var out map[string]any
		if _, err := c.client.Do(c.ctx, method, path+"/"+url.PathEscape(*name), apiclient.Graph, nil, &out); err != nil {
			return c.fail(err)
		}
		if method == http.MethodDelete {
			return 0
		}
		return c.print(out, ficColumns, ficRows(out))
	}
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return raw, nil
}
