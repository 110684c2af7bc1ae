{{/* Names */}}
{{- define "seg.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "seg.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "seg.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "seg.name" .) | trunc 63 | trimSuffix "-" -}}
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

{{/* The trust domain and the issuer, as SPIRE's charts derive them. */}}
{{- define "seg.trustDomain" -}}
{{- default .Values.global.spire.trustDomain .Values.trustDomain -}}
{{- end -}}

{{- define "seg.issuer" -}}
{{- $issuer := default .Values.global.spire.jwtIssuer .Values.issuer -}}
{{- default (printf "https://oidc-discovery.%s" (include "seg.trustDomain" .)) $issuer -}}
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
{{- end -}}

{{/* The hardened container security context. */}}
{{- define "seg.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The admission webhook: its object names (cut so that the suffix fits in 63), labels and TLS mode. */}}
{{- define "seg.webhook.name" -}}
{{- printf "%s-webhook" (include "seg.fullname" . | trunc 55 | trimSuffix "-") -}}
{{- end -}}

{{- define "seg.webhook.configurationName" -}}
{{- printf "%s-%s" .Release.Namespace (include "seg.webhook.name" .) -}}
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
{{- toJson (concat (list .Release.Namespace "kube-system") .Values.webhook.excludedNamespaces | uniq) -}}
{{- end -}}
