{{/* Names */}}
{{- define "seg.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The object name prefix, cut at 55 characters: Service names (-oidc, -entra,
-metrics, -webhook) are DNS labels of at most 63, and the longest suffix is 8.
Names of up to 55 characters are unchanged, so no existing release is renamed.
*/}}
{{- define "seg.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 55 | trimSuffix "-" -}}
{{- else if contains (include "seg.name" .) .Release.Name -}}
{{- .Release.Name | trunc 55 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "seg.name" .) | trunc 55 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "seg.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "seg.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "seg.selectorLabels" -}}
app.kubernetes.io/name: {{ include "seg.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "seg.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "seg.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* SPIRE's global values, as SPIRE's charts (spire-lib) read them: a global value that is set wins. */}}
{{- define "seg.trustDomain" -}}
{{- dig "spire" "trustDomain" "" .Values.global | default .Values.trustDomain -}}
{{- end -}}

{{- define "seg.issuer" -}}
{{- $issuer := dig "spire" "jwtIssuer" "" .Values.global | default .Values.jwtIssuer -}}
{{- default (printf "https://oidc-discovery.%s" (include "seg.trustDomain" .)) $issuer -}}
{{- end -}}

{{- define "seg.clusterDomain" -}}
{{- dig "k8s" "clusterDomain" "" .Values.global | default .Values.clusterDomain -}}
{{- end -}}

{{- define "seg.bundleConfigMap" -}}
{{- dig "spire" "bundleConfigMap" "" .Values.global | default .Values.bundleConfigMap -}}
{{- end -}}

{{/* The namespace, as SPIRE's oidc-discovery-provider chart places itself: beside the SPIRE server in SPIRE's
recommended layout. */}}
{{- define "seg.namespace" -}}
{{- if .Values.namespaceOverride -}}
{{- .Values.namespaceOverride -}}
{{- else if and (dig "spire" "recommendations" "enabled" false .Values.global) (dig "spire" "recommendations" "namespaceLayout" true .Values.global) -}}
{{- dig "spire" "namespaces" "server" "name" "" .Values.global | default "spire-server" -}}
{{- else -}}
{{- .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/* registry/repository:tag, or @digest when image.digest is set. */}}
{{- define "seg.image" -}}
{{- $registry := dig "spire" "image" "registry" "" .Values.global | default .Values.image.registry -}}
{{- $repo := ternary .Values.image.repository (printf "%s/%s" $registry .Values.image.repository) (empty $registry) -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repo .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The pod's security context; OpenShift assigns the user and groups itself. */}}
{{- define "seg.podSecurityContext" -}}
{{- $ctx := deepCopy .Values.podSecurityContext -}}
{{- if dig "openshift" false .Values.global -}}
{{- $ctx = omit $ctx "runAsUser" "runAsGroup" "fsGroup" -}}
{{- end -}}
{{- toYaml $ctx -}}
{{- end -}}

{{/* Whether the pod needs the Workload API: for its keys or for its own X.509-SVID. */}}
{{- define "seg.needsWorkloadAPI" -}}
{{- if or (eq .Values.bundleSource "WorkloadAPI") .Values.tls.spiffe.enabled (include "seg.additionalFromWorkloadAPI" .) -}}true{{- end -}}
{{- end -}}

{{- define "seg.additionalFromWorkloadAPI" -}}
{{- range .Values.oidc.additionalTrustDomains -}}{{- if not .bundleConfigMap -}}true{{- end -}}{{- end -}}
{{- end -}}

{{- define "seg.issuerHost" -}}
{{- (urlParse (include "seg.issuer" .)).host | splitList ":" | first -}}
{{- end -}}

{{- define "seg.socketDir" -}}/spiffe-workload-api{{- end -}}

{{/* The TLS mode: exactly one. */}}
{{- define "seg.tlsMode" -}}
{{- $modes := list -}}
{{- if .Values.tls.spiffe.enabled }}{{ $modes = append $modes "spiffe" }}{{ end -}}
{{- if .Values.tls.secret.enabled }}{{ $modes = append $modes "secret" }}{{ end -}}
{{- if .Values.tls.certManager.enabled }}{{ $modes = append $modes "certManager" }}{{ end -}}
{{- if ne (len $modes) 1 -}}
{{- fail (printf "tls: enable exactly one of tls.spiffe, tls.secret and tls.certManager (enabled: %s)" (join ", " $modes | default "none")) -}}
{{- end -}}
{{- first $modes -}}
{{- end -}}

{{- define "seg.tlsSecretName" -}}
{{- if .Values.tls.secret.enabled -}}{{ .Values.tls.secret.name }}{{- else -}}{{ include "seg.fullname" . }}-tls{{- end -}}
{{- end -}}

{{/* Checks that stop a render with a message naming the value. */}}
{{- define "seg.validate" -}}
{{- $issuer := include "seg.issuer" . -}}
{{- if not (hasPrefix "https://" $issuer) -}}
{{- fail (printf "issuer %q must be https: Entra fetches issuer metadata over https only" $issuer) -}}
{{- end -}}
{{- $mode := include "seg.tlsMode" . -}}
{{- if and .Values.tls.secret.enabled (not .Values.tls.secret.name) -}}
{{- fail "tls.secret.name is required when tls.secret.enabled is true" -}}
{{- end -}}
{{- if and .Values.tls.certManager.enabled (not .Values.tls.certManager.issuerRef.name) -}}
{{- fail "tls.certManager.issuerRef.name is required when tls.certManager.enabled is true" -}}
{{- end -}}
{{- if and .Values.entra.enabled (not .Values.store.postgres.enabled) (or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled) -}}
{{- fail (printf "replicaCount %v (or autoscaling.enabled) needs store.postgres.enabled: SQLite serves one pod only" .Values.replicaCount) -}}
{{- end -}}
{{- if and .Values.store.postgres.enabled (not .Values.store.postgres.dsnSecret.name) -}}
{{- fail "store.postgres.dsnSecret.name is required when store.postgres.enabled is true" -}}
{{- end -}}
{{- $host := include "seg.issuerHost" . -}}
{{- if and .Values.ingress.enabled .Values.ingress.host (ne .Values.ingress.host $host) -}}
{{- fail (printf "ingress.host %q does not match the issuer's host %q: Entra fetches the issuer's own URL" .Values.ingress.host $host) -}}
{{- end -}}
{{- range .Values.httpRoute.hostnames -}}
{{- if ne . $host -}}
{{- fail (printf "httpRoute.hostnames: %q does not match the issuer's host %q" . $host) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.ingress.enabled .Values.httpRoute.enabled -}}
{{- fail "ingress.enabled and httpRoute.enabled: choose one exposure for the OIDC endpoint" -}}
{{- end -}}
{{- range $i, $d := .Values.oidc.additionalTrustDomains -}}
{{- if not (hasPrefix "https://" $d.jwtIssuer) -}}
{{- fail (printf "oidc.additionalTrustDomains[%d].jwtIssuer %q must be https: Entra fetches issuer metadata over https only" $i $d.jwtIssuer) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The admission webhook: its object names (seg.fullname leaves room for the suffix), labels and TLS mode. */}}
{{- define "seg.webhook.name" -}}
{{- printf "%s-webhook" (include "seg.fullname" .) -}}
{{- end -}}

{{- define "seg.webhook.configurationName" -}}
{{- printf "%s-%s" (include "seg.namespace" .) (include "seg.webhook.name" .) -}}
{{- end -}}

{{- define "seg.webhook.selectorLabels" -}}
app.kubernetes.io/name: {{ include "seg.name" . }}-webhook
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "seg.webhook.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "seg.webhook.selectorLabels" . }}
app.kubernetes.io/component: webhook
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "seg.webhook.tlsMode" -}}
{{- $mode := .Values.webhook.tls.mode -}}
{{- if eq $mode "auto" -}}
{{- if .Capabilities.APIVersions.Has "cert-manager.io/v1" }}certManager{{ else }}selfManaged{{ end -}}
{{- else -}}
{{- $mode -}}
{{- end -}}
{{- end -}}

{{/* The namespaces whose pods the webhook never touches. */}}
{{- define "seg.webhook.excluded" -}}
{{- toJson (concat (list (include "seg.namespace" .) "kube-system") .Values.webhook.excludedNamespaces | uniq) -}}
{{- end -}}

{{/* The Secret holding the key-encryption key (key "key"). */}}
{{- define "seg.kekSecretName" -}}
{{- default (printf "%s-kek" (include "seg.fullname" .)) .Values.entra.keyEncryption.existingSecret -}}
{{- end -}}

{{/* The webhook's configuration file (pkg/workload/webhook.Config). */}}
{{- define "seg.webhook.config" -}}
{{- $name := include "seg.webhook.name" . -}}
{{- $mode := include "seg.webhook.tlsMode" . -}}
{{- $excluded := include "seg.webhook.excluded" . | fromJsonArray -}}
{{- $svc := printf "%s.%s.svc" $name (include "seg.namespace" .) -}}
{{- $sidecarImage := include "seg.image" . -}}
{{- if or .Values.webhook.sidecar.image.repository .Values.webhook.sidecar.image.tag -}}
{{- $registry := dig "spire" "image" "registry" "" .Values.global | default .Values.image.registry -}}
{{- $sidecarImage = printf "%s/%s:%s" $registry (default .Values.image.repository .Values.webhook.sidecar.image.repository) (default (default .Chart.AppVersion .Values.image.tag) .Values.webhook.sidecar.image.tag) -}}
{{- end -}}
{{- $sidecarContext := deepCopy .Values.webhook.sidecar.securityContext -}}
{{- if dig "openshift" false .Values.global -}}
{{- $sidecarContext = omit $sidecarContext "runAsUser" "runAsGroup" -}}
{{- end -}}
logLevel: {{ .Values.logLevel }}
listenAddr: ":9443"
healthAddr: ":8008"
namespace: {{ include "seg.namespace" $ }}
excludedNamespaces: {{ toJson $excluded }}
tls:
  {{- if eq $mode "certManager" }}
  certFile: /tls/tls.crt
  keyFile: /tls/tls.key
  {{- else }}
  selfManaged:
    webhookConfiguration: {{ include "seg.webhook.configurationName" . }}
    dnsNames: [{{ $svc }}, {{ printf "%s.%s" $svc (include "seg.clusterDomain" $) }}]
    validity: {{ .Values.webhook.tls.selfManaged.validity }}
  {{- end }}
injection:
  sidecar:
    image: {{ $sidecarImage | quote }}
    imagePullPolicy: {{ .Values.webhook.sidecar.image.pullPolicy }}
    healthPort: {{ .Values.webhook.sidecar.healthPort }}
    identityEndpointPort: {{ .Values.webhook.sidecar.identityEndpointPort }}
    resources: {{ toJson .Values.webhook.sidecar.resources }}
    securityContext: {{ toJson $sidecarContext }}
  workloadAPI:
    mode: {{ .Values.workloadAPI.mode }}
    csiDriver: {{ .Values.workloadAPI.csiDriverName }}
    hostPath: {{ .Values.workloadAPI.hostPath }}
    socketName: {{ .Values.workloadAPI.socketName }}
  defaults: {{ toJson .Values.webhook.defaults }}
  allowMissingClientID: {{ .Values.webhook.allowMissingClientID }}
{{- end -}}
