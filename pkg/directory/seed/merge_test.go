package seed

import (
	"context"
	"strings"
	"testing"
)

// TestBaseMergedIntoEveryDocument: a base document sharing a tenant with
// the file is applied merged, so neither prunes the other's objects, and a
// name both use is refused, not applied twice.
func TestBaseMergedIntoEveryDocument(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	base := File{Tenants: []Tenant{{ID: tid, DisplayName: "Contoso", Applications: []Application{{Name: "from-base"}}}}}
	a := &Applier{Store: s, ParseExpression: func(string) error { return nil }, Base: base}
	for _, apps := range []string{"      - name: from-file\n", "      - name: from-file\n      - name: another\n"} {
		f, err := Parse([]byte(tenantWith(apps)))
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Apply(ctx, f); err != nil {
			t.Fatal(err)
		}
		stored, err := s.ListApplications(ctx, tid)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, app := range stored {
			names = append(names, app.DisplayName)
		}
		got := strings.Join(names, ",")
		if !strings.Contains(got, "from-base") || !strings.Contains(got, "from-file") {
			t.Errorf("after applying %q: applications %s", apps, got)
		}
	}
	f, err := Parse([]byte(tenantWith("      - name: from-base\n")))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Apply(ctx, f); err == nil || !strings.Contains(err.Error(), `application "from-base" appears twice`) {
		t.Errorf("a name in both documents: %v", err)
	}
	if len(base.Tenants[0].Applications) != 1 {
		t.Errorf("Merge changed the base document: %+v", base.Tenants[0].Applications)
	}
}

func tenantWith(apps string) string {
	return "tenants:\n  - id: " + tid + "\n    applications:\n" + apps
}
