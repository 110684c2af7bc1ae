package directory

import (
	"regexp"
	"strings"
	"testing"
)

// TestActionMatches holds actionMatches to Azure's action syntax, written
// as the regular expression it stands for: a * is .*, letters compare
// case-insensitively, the whole action must match.
func TestActionMatches(t *testing.T) {
	patterns := []string{"*", "*/read", "Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/read",
		"Microsoft.ManagedIdentity/userAssignedIdentities/*", "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
		"Microsoft.Authorization/elevateAccess/Action", "a*b*c", "a**b", "*b*", "ab*", "*ab"}
	actions := []string{"", "read", "x/read", "x/READ", "x/readx", "Microsoft.Authorization/roleAssignments/delete",
		"microsoft.authorization/ROLEASSIGNMENTS/DELETE", "Microsoft.Authorization/delete", "Microsoft.Authorization//Delete",
		"Microsoft.Authorization/a/b/Delete", "Microsoft.Authorization/x/Delete/y", "Microsoft.ManagedIdentity/userAssignedIdentities/",
		"Microsoft.ManagedIdentity/userAssignedIdentities/x/assign/action", "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
		"Microsoft.Authorization/elevateAccess/action", "abc", "ac", "aXbYc", "acb", "abcb", "ab", "b", "aab", "aba", "bab"}
	for _, p := range patterns {
		want := regexp.MustCompile("(?i)^" + strings.ReplaceAll(regexp.QuoteMeta(p), `\*`, ".*") + "$")
		for _, a := range actions {
			if got := actionMatches(p, a); got != want.MatchString(a) {
				t.Errorf("actionMatches(%q, %q) = %v, want %v", p, a, got, !got)
			}
		}
	}
}
