{{/*
Helpers for the gitlab-scope-proxy chart.

Templates in this chart keep every control-flow action ({{- if }},
{{- range }}, {{- with }}, {{- end }}, {{- include ... | nindent N }}) on a
line of its own and put value actions inline as scalars. test/deploy/helm.test.ts
relies on that to check the templates without Helm.
*/}}

{{/* Chart name, overridable with nameOverride. */}}
{{- define "gsp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full resource name: fullnameOverride, or release name + chart name (the
release name alone when it already contains the chart name).
*/}}
{{- define "gsp.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Chart name and version, for the helm.sh/chart label. */}}
{{- define "gsp.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select this release's pods. Never change them: selectors are immutable. */}}
{{- define "gsp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gsp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Common labels. */}}
{{- define "gsp.labels" -}}
helm.sh/chart: {{ include "gsp.chart" . }}
{{ include "gsp.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Image reference: repository@digest when a digest is set, else repository:tag. */}}
{{- define "gsp.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}
{{- end }}

{{/* Secret holding the GitLab token and the JWT secret. */}}
{{- define "gsp.secretName" -}}
{{- if .Values.secret.existingSecret }}
{{- .Values.secret.existingSecret }}
{{- else }}
{{- include "gsp.fullname" . }}
{{- end }}
{{- end }}

{{/* "true" when the Secret carries an HS256 JWT secret, else empty. */}}
{{- define "gsp.hasJwtSecret" -}}
{{- if .Values.secret.existingSecret }}
{{- if .Values.secret.keys.jwtSecret }}true{{ end }}
{{- else }}
{{- if .Values.secret.jwtSecret }}true{{ end }}
{{- end }}
{{- end }}

{{/* ConfigMap holding the policy files. */}}
{{- define "gsp.policiesConfigMapName" -}}
{{- if .Values.existingPoliciesConfigMap }}
{{- .Values.existingPoliciesConfigMap }}
{{- else }}
{{- printf "%s-policies" (include "gsp.fullname" .) }}
{{- end }}
{{- end }}

{{/* ConfigMap holding the public PEM files (GitLab CA, JWT public key). */}}
{{- define "gsp.filesConfigMapName" -}}
{{- printf "%s-files" (include "gsp.fullname" .) }}
{{- end }}

{{/* "true" when there is a public PEM file to ship, else empty. */}}
{{- define "gsp.hasFiles" -}}
{{- if or .Values.gitlab.caCert .Values.jwt.publicKey }}true{{ end }}
{{- end }}

{{/* Directory the Secret is mounted at. */}}
{{- define "gsp.secretDir" -}}
/run/secrets/gitlab-scope-proxy
{{- end }}

{{/* ServiceAccount the pods run as. */}}
{{- define "gsp.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gsp.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
GitLab's TCP port, from gitlab.url: its explicit port, else 443 for https and
80 for http (values.schema.json only admits http and https URLs).
*/}}
{{- define "gsp.gitlabPort" -}}
{{- $url := urlParse .Values.gitlab.url }}
{{- $port := regexFind ":[0-9]+$" $url.host | trimPrefix ":" }}
{{- if $port }}
{{- $port }}
{{- else if eq $url.scheme "http" }}
{{- "80" }}
{{- else }}
{{- "443" }}
{{- end }}
{{- end }}

{{/* Whether OAuth state lives in a SQLite file on a PersistentVolumeClaim (OAuth on, no Redis). */}}
{{- define "gsp.sqliteState" -}}
{{- if and .Values.oauth.gitlabClientId (not .Values.store.redisUrl) }}true{{ end }}
{{- end }}

{{/* The PersistentVolumeClaim holding the SQLite file. */}}
{{- define "gsp.stateClaimName" -}}
{{- default (printf "%s-state" (include "gsp.fullname" .)) .Values.store.sqlite.existingClaim }}
{{- end }}
