// Package pgtest gives tests their own database on the private PostgreSQL
// cluster that test/postgres/pg.sh starts.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// EnvDSN names the variable holding the cluster's administrative DSN.
const EnvDSN = "GATEWAY_TEST_POSTGRES_DSN"

// Available reports whether a cluster is configured.
func Available() bool { return os.Getenv(EnvDSN) != "" }

// DSN creates an empty database, dropped when t ends, and returns its DSN.
// It skips t when no cluster is configured.
func DSN(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(EnvDSN)
	if admin == "" {
		t.Skip(EnvDSN + " is not set; `eval $(test/postgres/pg.sh start)` provides one")
	}
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("%s: %v", EnvDSN, err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "gw_" + hex.EncodeToString(b)
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("creating a test database: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", admin)
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u.Path = "/" + name
	return u.String()
}

// Cluster is a PostgreSQL cluster of the test's own, for tests that stop
// and restart the server, which they must not do to the shared one.
type Cluster struct {
	DSN string
	dir string
	ctl string
}

// NewCluster initialises and starts a cluster with the script named by
// GATEWAY_TEST_POSTGRES_CTL; it is removed when t ends. It skips t when no
// script is named.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	ctl := os.Getenv("GATEWAY_TEST_POSTGRES_CTL")
	if ctl == "" {
		t.Skip("GATEWAY_TEST_POSTGRES_CTL is not set; `eval $(test/postgres/pg.sh start)` provides it")
	}
	// Not t.TempDir: the server may run as another user, who needs to
	// reach the directory.
	dir, err := os.MkdirTemp("", "gateway-pg-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{dir: dir, ctl: ctl}
	t.Cleanup(func() {
		_, _ = c.run("stop")
		os.RemoveAll(dir)
	})
	out, err := c.run("start")
	if err != nil {
		t.Fatalf("starting a PostgreSQL cluster: %v\n%s", err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "export "+EnvDSN+"="); ok {
			c.DSN = strings.Trim(v, "'")
		}
	}
	if c.DSN == "" {
		t.Fatalf("%s start printed no DSN:\n%s", ctl, out)
	}
	return c
}

func (c *Cluster) run(verb string) (string, error) {
	cmd := exec.Command("bash", c.ctl, verb)
	cmd.Env = append(os.Environ(), "PG_DIR="+c.dir)
	out, err := cmd.Output()
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		out = append(out, ee.Stderr...)
	}
	return string(out), err
}

// Stop stops the server.
func (c *Cluster) Stop(t testing.TB) { c.do(t, "stop") }

// Start starts the server again.
func (c *Cluster) Start(t testing.TB) { c.do(t, "start") }

// Restart restarts the server, closing every connection.
func (c *Cluster) Restart(t testing.TB) { c.do(t, "restart") }

func (c *Cluster) do(t testing.TB, verb string) {
	t.Helper()
	if out, err := c.run(verb); err != nil {
		t.Fatalf("PostgreSQL %s: %v\n%s", verb, err, out)
	}
}
