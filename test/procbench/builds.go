package procbench

import (
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// BinsEnv names several gateway builds to load side by side in one run,
// as LABEL=PATH,LABEL=PATH (test/procbench/compare.sh sets it): each build
// is a server of its own, its sub-benchmarks named server=gateway-LABEL.
const BinsEnv = "GATEWAY_BINS"

// BinEnv names the one gateway build to load when BinsEnv is not set; the
// tests of test/spire, test/k8s and test/node read it too.
const BinEnv = "GATEWAY_BIN"

// Build is one gateway binary under load.
type Build struct {
	// Label tells builds apart in sub-benchmark names and profile files;
	// empty when there is one build.
	Label string
	// Bin is the binary's path.
	Bin  string
	help string
}

// Server is the build's name in sub-benchmark names: server=gateway for
// the one build, server=gateway-LABEL for each of several.
func (g Build) Server() string {
	if g.Label == "" {
		return "gateway"
	}
	return "gateway-" + g.Label
}

// ProfileName is the build's part of a profile's file name.
func (g Build) ProfileName() string {
	return cmp.Or(g.Label, "gateway")
}

// ServeFlag reports whether the build's serve command has the flag name
// (without dashes), from its `serve --help`: a build of an older revision
// lacks flags the benchmarks pass today, and runs without them.
func (g Build) ServeFlag(name string) bool {
	return regexp.MustCompile(`(?m)^\s*-` + regexp.QuoteMeta(name) + `\b`).MatchString(g.help)
}

var label = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// Builds returns the gateway builds to load: $GATEWAY_BINS, else
// $GATEWAY_BIN, else the gateway built from this tree into dir.
func Builds(b testing.TB, dir string) []Build {
	b.Helper()
	var builds []Build
	if list := os.Getenv(BinsEnv); list != "" {
		seen := map[string]bool{}
		for _, item := range strings.Split(list, ",") {
			l, bin, ok := strings.Cut(item, "=")
			if !ok || !label.MatchString(l) || bin == "" || seen[l] {
				b.Fatalf("%s=%q: want LABEL=PATH,LABEL=PATH with distinct labels of letters, digits, '.', '_' or '-'", BinsEnv, list)
			}
			seen[l] = true
			builds = append(builds, Build{Label: l, Bin: bin})
		}
	} else if bin := os.Getenv(BinEnv); bin != "" {
		builds = []Build{{Bin: bin}}
	} else {
		bin := filepath.Join(dir, "spiffe-entra-gateway")
		cmd := exec.Command("go", "build", "-o", bin, "github.com/spiffe-entra-gateway/spiffe-entra-gateway/cmd/spiffe-entra-gateway")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("build the gateway: %v\n%s", err, out)
		}
		builds = []Build{{Bin: bin}}
	}
	for i, g := range builds {
		// serve --help exits 0 or 2 by the flag package's version; the
		// usage text is what counts.
		out, _ := exec.Command(g.Bin, "serve", "--help").CombinedOutput()
		if !strings.Contains(string(out), "-dev") {
			b.Fatalf("%s serve --help does not look like the gateway's:\n%s", g.Bin, out)
		}
		builds[i].help = string(out)
	}
	if len(builds) > 1 {
		names := make([]string, len(builds))
		for i, g := range builds {
			names[i] = fmt.Sprintf("%s=%s", g.Server(), g.Bin)
		}
		fmt.Fprintf(os.Stderr, "gateway builds: %s\n", strings.Join(names, " "))
	}
	return builds
}
