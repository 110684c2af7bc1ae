package chart

import (
	"fmt"
	"strings"
)

// Variant is a combination of chart values the render tests check and
// test/k8s installs on a real API server.
type Variant struct {
	Name   string
	Values map[string]any
}

// Variants returns every combination, built afresh on each call so that a
// test may change what it gets.
func Variants() []Variant {
	postgres := func() map[string]any {
		return map[string]any{"postgres": map[string]any{"enabled": true, "dsnSecret": map[string]any{"name": "gateway-db"}}}
	}
	// What PodSecurity restricted asks of a container the values add.
	restricted := func() map[string]any {
		return map[string]any{"allowPrivilegeEscalation": false, "capabilities": map[string]any{"drop": []any{"ALL"}},
			"runAsNonRoot": true, "seccompProfile": map[string]any{"type": "RuntimeDefault"}}
	}
	locals := func() map[string]any {
		return map[string]any{
			"trustDomain": "local.example", "jwtIssuer": "https://oidc.local.example", "clusterDomain": "local.cluster",
			"bundleSource": "ConfigMap", "bundleConfigMap": "local-bundle",
			"image": map[string]any{"registry": "registry.local.example"},
		}
	}
	globals := locals()
	globals["global"] = map[string]any{
		"spire": map[string]any{"trustDomain": "global.example", "jwtIssuer": "https://oidc.global.example", "bundleConfigMap": "global-bundle",
			"image": map[string]any{"registry": "mirror.global.example"}},
		"k8s": map[string]any{"clusterDomain": "global.cluster"},
	}
	// Every namespaced object the chart has, in the namespace set.
	namespaced := func(extra map[string]any) map[string]any {
		v := map[string]any{
			"clusterSPIFFEID": map[string]any{"enabled": true}, "networkPolicy": map[string]any{"enabled": true},
			"metrics": map[string]any{"serviceMonitor": map[string]any{"enabled": true}},
		}
		for k, x := range extra {
			v[k] = x
		}
		return v
	}
	spireLayout := func(server string) map[string]any {
		return map[string]any{"spire": map[string]any{"recommendations": map[string]any{"enabled": true},
			"namespaces": map[string]any{"server": map[string]any{"name": server}}}}
	}
	return []Variant{
		{"defaults", nil},
		{"postgres-replicas", map[string]any{"replicaCount": 3, "store": postgres()}},
		{"postgres-autoscaling", map[string]any{"autoscaling": map[string]any{"enabled": true}, "store": postgres()}},
		{"tls-secret", map[string]any{"tls": map[string]any{"spiffe": map[string]any{"enabled": false}, "secret": map[string]any{"enabled": true, "name": "oidc-tls"}}}},
		{"tls-cert-manager", map[string]any{"tls": map[string]any{"spiffe": map[string]any{"enabled": false},
			"certManager": map[string]any{"enabled": true, "issuerRef": map[string]any{"name": "letsencrypt"}}}}},
		{"workload-api-host-path", map[string]any{"workloadAPI": map[string]any{"mode": "hostPath", "socketName": "api.sock"}}},
		{"ingress", map[string]any{"jwtIssuer": "https://oidc.contoso.example/tenant-a", "ingress": map[string]any{"enabled": true, "className": "nginx", "tlsSecretName": "public-tls"}}},
		{"http-route", map[string]any{"httpRoute": map[string]any{"enabled": true, "parentRefs": []any{map[string]any{"name": "public", "namespace": "gateways"}}}}},
		{"seed-and-optional-objects", map[string]any{
			"seed": map[string]any{"tenants": []any{map[string]any{
				"id": "6f0c2a4e-1b7d-4c55-9f3e-2d8a1b7c9e10",
				"applications": []any{map[string]any{
					"name": "payments-worker",
					"federatedCredentials": []any{map[string]any{
						"name": "spiffe-payments-worker", "issuer": "https://oidc-discovery.example.org",
						"subject": "spiffe://example.org/ns/payments/sa/worker",
					}},
				}},
			}}},
			"networkPolicy":   map[string]any{"enabled": true},
			"metrics":         map[string]any{"serviceMonitor": map[string]any{"enabled": true}},
			"clusterSPIFFEID": map[string]any{"enabled": true},
		}},
		{"discovery-provider-alone", map[string]any{"entra": map[string]any{"enabled": false}, "replicaCount": 3}},
		{"pod-settings", map[string]any{
			"image":              map[string]any{"tag": "ignored", "digest": "sha256:" + strings.Repeat("ab", 32)},
			"podSecurityContext": map[string]any{"runAsUser": 1000710000, "runAsGroup": 1000710000, "fsGroup": 1000710000},
			"securityContext":    map[string]any{"readOnlyRootFilesystem": true, "runAsUser": 1000710000},
			"priorityClassName":  "system-cluster-critical",
			"extraEnv":           []any{map[string]any{"name": "GATEWAY_LOG_LEVEL", "value": "debug"}},
			"extraEnvFrom":       []any{map[string]any{"configMapRef": map[string]any{"name": "gateway-env"}}},
			"initContainers":     []any{map[string]any{"name": "wait", "image": "registry.example/wait:1", "securityContext": restricted()}},
			"extraContainers":    []any{map[string]any{"name": "proxy", "image": "registry.example/proxy:1", "securityContext": restricted()}},
			"livenessProbe":      map[string]any{"initialDelaySeconds": 7, "periodSeconds": 11, "timeoutSeconds": 2, "failureThreshold": 4},
			"readinessProbe":     map[string]any{"periodSeconds": 3},
			"service": map[string]any{
				"oidc":  map[string]any{"annotations": map[string]any{"external-dns.alpha.kubernetes.io/hostname": "oidc-discovery.example.org"}},
				"entra": map[string]any{"annotations": map[string]any{"networking.example/internal": "true"}},
			},
		}},
		{"openshift", map[string]any{"global": map[string]any{"openshift": true}}},
		{"key-sources", map[string]any{
			"bundleSource": "ConfigMap", "bundleConfigMapKey": "keys.jwks",
			"tls": map[string]any{"spiffe": map[string]any{"enabled": false}, "secret": map[string]any{"enabled": true, "name": "oidc-tls"}},
			"oidc": map[string]any{
				"additionalDomains": []any{"oidc.internal.example"},
				"jwksUri":           "https://oidc-discovery.example.org/keys.json",
				"serverPathPrefix":  "/",
				"additionalTrustDomains": []any{
					map[string]any{"trustDomain": "partner.example", "jwtIssuer": "https://oidc-discovery.example.org/partner",
						"bundleConfigMap": map[string]any{"name": "partner-bundle"}},
					map[string]any{"trustDomain": "federated.example", "jwtIssuer": "https://federated.example.org",
						"jwksUri": "https://federated.example.org/jwks", "serverPathPrefix": "/", "additionalDomains": []any{"federated.internal"}},
				},
			},
			"entra": map[string]any{"issuerCA": map[string]any{"configMap": "spire-bundle"}},
		}},
		{"key-encryption-existing-secret", map[string]any{"entra": map[string]any{"keyEncryption": map[string]any{"existingSecret": "my-kek"}}}},
		{"key-encryption-off", map[string]any{"entra": map[string]any{"keyEncryption": map[string]any{"allowUnencrypted": true}}}},
		{"spire-locals", locals()},
		{"spire-globals", globals},
		{"namespace-of-release", namespaced(nil)},
		{"namespace-override", namespaced(map[string]any{"namespaceOverride": "gateway"})},
		{"namespace-spire-layout", namespaced(map[string]any{"global": spireLayout("")})},
		{"namespace-spire-server", namespaced(map[string]any{"global": spireLayout("spire-mgmt")})},
		{"namespace-override-first", namespaced(map[string]any{"global": spireLayout("spire-mgmt"), "namespaceOverride": "gateway"})},
		{"webhook-self-managed", map[string]any{"webhook": map[string]any{"enabled": true, "excludedNamespaces": []any{"infra"}}}},
		{"webhook-cert-manager", map[string]any{"webhook": map[string]any{"enabled": true, "replicaCount": 1, "failurePolicy": "Ignore",
			"tls": map[string]any{"mode": "certManager"}, "sidecar": map[string]any{"image": map[string]any{"tag": "9.9.9"}}},
			"workloadAPI": map[string]any{"mode": "hostPath"}}},
	}
}

// Values returns the values of the variant called name.
func Values(name string) map[string]any {
	for _, v := range Variants() {
		if v.Name == name {
			return v.Values
		}
	}
	panic(fmt.Sprintf("chart: no variant %q", name))
}
