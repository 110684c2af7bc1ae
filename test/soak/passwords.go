package main

import (
	"fmt"
	"log"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/dev/devtenant"
)

// The burst's directory: a user of the development tenant, and a public
// client with a delegated scope to ask for.
const (
	burstUser   = "soak@dev.example"
	burstClient = "5f0e1d2c-3b4a-4958-8776-a5b4c3d2e1f0"
)

// passwordSeed writes the seed file of the burst and returns its path.
func passwordSeed() string {
	dir, err := os.MkdirTemp("", "soak-seed-")
	if err != nil {
		log.Fatal(err)
	}
	pw := filepath.Join(dir, "password")
	if err := os.WriteFile(pw, []byte("the-right-password-1234"), 0o600); err != nil {
		log.Fatal(err)
	}
	seed := filepath.Join(dir, "seed.yaml")
	doc := fmt.Sprintf(`tenants:
  - id: %s
    applications:
      - name: soak-api
        identifierUris: [api://soak]
        oauth2PermissionScopes: [{value: Use}]
      - name: soak-client
        appId: %s
    users:
      - userPrincipalName: %s
        passwordFile: %s
`, devtenant.TenantID, burstClient, burstUser, pw)
	if err := os.WriteFile(seed, []byte(doc), 0o600); err != nil {
		log.Fatal(err)
	}
	return seed
}

// burst sends n wrong passwords at once, samples the process's RSS every
// 20 ms meanwhile, and prints the answers and the peak.
func burst(g *gateway, n int) {
	before := g.rss()
	peak := before
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				peak = max(peak, g.rss())
			}
		}
	}()
	var mu sync.Mutex
	answers := map[string]int{}
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := g.client.PostForm(g.entra+"/"+devtenant.TenantID+"/oauth2/v2.0/token", url.Values{
				"grant_type": {"password"}, "client_id": {burstClient}, "scope": {"api://soak/Use"},
				"username": {burstUser}, "password": {fmt.Sprint("wrong-", i)},
			})
			key := "transport error"
			if err == nil {
				key = resp.Status
				resp.Body.Close()
			}
			mu.Lock()
			answers[key]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	took := time.Since(start)
	close(done)
	keys := make([]string, 0, len(answers))
	for k := range answers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Printf("%d wrong passwords at once, answered in %v:\n", n, took.Round(time.Millisecond))
	for _, k := range keys {
		fmt.Printf("  %d × %s\n", answers[k], k)
	}
	fmt.Printf("RSS before %s, peak %s, after %s\n", mib(before), mib(peak), mib(g.rss()))
}
