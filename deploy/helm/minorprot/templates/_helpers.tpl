{{/*
Shared helpers: names, labels, images, pod hardening, connection settings.

Most helpers take a "component context" built by minorprot.component or the collector template:
  dict "root" $ "name" "<component>" "values" <component values> ...
*/}}

{{/* Chart name, the value of app.kubernetes.io/name. */}}
{{- define "minorprot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Prefix of every object name: "<release>-minorprot", or the release name when it contains the chart name. */}}
{{- define "minorprot.fullname" -}}
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

{{- define "minorprot.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object (root context). */}}
{{- define "minorprot.commonLabels" -}}
helm.sh/chart: {{ include "minorprot.chart" . }}
app.kubernetes.io/name: {{ include "minorprot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: minorprot
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Component the context belongs to: "component" for a Job's context, else "name". */}}
{{- define "minorprot.component.id" -}}
{{- get . "component" | default .name }}
{{- end }}

{{/* "<fullname>-<name>" (component context). */}}
{{- define "minorprot.componentFullname" -}}
{{- printf "%s-%s" (include "minorprot.fullname" .root) .name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of a component's objects (component context). */}}
{{- define "minorprot.labels" -}}
{{ include "minorprot.commonLabels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/* Immutable selector labels of a component (component context). */}}
{{- define "minorprot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "minorprot.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/*
Pod labels (component context): the object labels, "minorprot.io/instance" (selected by the
default-deny NetworkPolicy; set on this chart's pods only, never on operator resources) and the
optional "podLabels" dict of the context (client markers used by the Kafka listener policy).
*/}}
{{- define "minorprot.podLabels" -}}
{{ include "minorprot.labels" . }}
minorprot.io/instance: {{ .root.Release.Name }}
{{- range $k, $v := (get . "podLabels" | default dict) }}
{{ $k }}: {{ $v | quote }}
{{- end }}
{{- end }}

{{/* Selector of every pod of this release (root context). */}}
{{- define "minorprot.releasePodSelector" -}}
minorprot.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Image reference from (dict "registry" "repository" "tag" "digest"); a digest wins over the tag.
*/}}
{{- define "minorprot.imageRef" -}}
{{- $repo := .repository }}
{{- if .registry }}{{ $repo = printf "%s/%s" .registry .repository }}{{ end }}
{{- if .digest }}
{{- printf "%s@%s" $repo .digest }}
{{- else }}
{{- printf "%s:%s" $repo (toString .tag) }}
{{- end }}
{{- end }}

{{/* Image of an application component (component context). */}}
{{- define "minorprot.app.image" -}}
{{- $g := .root.Values.image }}
{{- $i := .values.image }}
{{- $repo := $i.repository | default (printf "%s/%s" $g.repository (include "minorprot.component.id" .)) }}
{{- $tag := $i.tag | default $g.tag | default .root.Chart.AppVersion }}
{{- include "minorprot.imageRef" (dict "registry" $g.registry "repository" $repo "tag" $tag "digest" $i.digest) }}
{{- end }}

{{/* Pod-level security context: Pod Security Standard "restricted" (root context). */}}
{{- define "minorprot.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurityContext.runAsUser }}
runAsGroup: {{ .Values.podSecurityContext.runAsGroup }}
fsGroup: {{ .Values.podSecurityContext.fsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Container-level security context, the same for every container. */}}
{{- define "minorprot.containerSecurityContext" -}}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Pod spec fields shared by Deployments and Jobs (component context; "serviceAccountName" key).
*/}}
{{- define "minorprot.podSpecCommon" -}}
{{- $root := .root -}}
serviceAccountName: {{ .serviceAccountName }}
automountServiceAccountToken: false
enableServiceLinks: false
securityContext:
  {{- include "minorprot.podSecurityContext" $root | nindent 2 }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with (get .values "nodeSelector") }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (get .values "tolerations") }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The /tmp emptyDir volume (root context). */}}
{{- define "minorprot.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpVolume.sizeLimit }}
{{- end }}

{{- define "minorprot.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/* ---------- Kafka ---------- */}}

{{/* Name of the Strimzi Kafka cluster (root context). */}}
{{- define "minorprot.kafka.clusterName" -}}
{{- printf "%s-kafka" (include "minorprot.fullname" .) | trunc 50 | trimSuffix "-" }}
{{- end }}

{{/* KAFKA_BOOTSTRAP_SERVERS (root context). */}}
{{- define "minorprot.kafka.bootstrapServers" -}}
{{- if .Values.kafka.strimzi.enabled }}
{{- printf "%s-kafka-bootstrap:%d" (include "minorprot.kafka.clusterName" .) (int .Values.kafka.strimzi.listenerPort) }}
{{- else }}
{{- required "kafka.external.bootstrapServers is required when kafka.strimzi.enabled is false" .Values.kafka.external.bootstrapServers }}
{{- end }}
{{- end }}

{{/* Name of a component's KafkaUser, also the name of the Secret Strimzi writes its password to. */}}
{{- define "minorprot.kafka.userName" -}}
{{- printf "%s-%s" (include "minorprot.fullname" .root) (include "minorprot.component.id" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Whether a component uses Kafka: "true" or "" (component context). */}}
{{- define "minorprot.kafka.uses" -}}
{{- if or .values.kafka.produces .values.kafka.consumes }}true{{ end }}
{{- end }}

{{/* Non-secret Kafka settings as "KEY: value" lines (component context). */}}
{{- define "minorprot.kafka.envData" -}}
{{- $root := .root -}}
KAFKA_BOOTSTRAP_SERVERS: {{ include "minorprot.kafka.bootstrapServers" $root | quote }}
{{- if $root.Values.kafka.strimzi.enabled }}
KAFKA_SECURITY_PROTOCOL: SASL_PLAINTEXT
KAFKA_SASL_MECHANISM: SCRAM-SHA-512
KAFKA_SASL_USERNAME: {{ include "minorprot.kafka.userName" . | quote }}
{{- else }}
KAFKA_SECURITY_PROTOCOL: {{ $root.Values.kafka.external.securityProtocol | quote }}
{{- if hasPrefix "SASL" $root.Values.kafka.external.securityProtocol }}
KAFKA_SASL_MECHANISM: {{ $root.Values.kafka.external.saslMechanism | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* Secret Kafka settings as env entries (component context). */}}
{{- define "minorprot.kafka.secretEnv" -}}
{{- $root := .root }}
{{- if $root.Values.kafka.strimzi.enabled }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "minorprot.kafka.userName" . }}
      key: password
{{- else if and (hasPrefix "SASL" $root.Values.kafka.external.securityProtocol) $root.Values.kafka.external.existingSecret }}
- name: KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.kafka.external.existingSecret }}
      key: {{ $root.Values.kafka.external.usernameKey }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.kafka.external.existingSecret }}
      key: {{ $root.Values.kafka.external.passwordKey }}
{{- end }}
{{- end }}

{{/* ---------- PostgreSQL ---------- */}}

{{/* Name of the CloudNativePG Cluster (root context). */}}
{{- define "minorprot.pg.clusterName" -}}
{{- printf "%s-pg" (include "minorprot.fullname" .) | trunc 50 | trimSuffix "-" }}
{{- end }}

{{/* Name of a role's password Secret: (dict "root" $ "database" "registry" "role" "app"). */}}
{{- define "minorprot.pg.roleSecret" -}}
{{- $prefix := .root.Values.postgresql.cnpg.roleSecretPrefix | default (include "minorprot.pg.clusterName" .root) }}
{{- printf "%s-%s-%s" $prefix (.database | replace "_" "-") .role | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Database URLs of a component as env entries (component context; "migrate" key true for the
migration Jobs). Every URL comes from a Secret, never from the chart:
  DATABASE_URL            the <db>_app role (row-level security applies to it)
  OUTBOX_DATABASE_URL     the <db>_relay role (bypasses RLS to publish every tenant's outbox rows),
                          when the component runs an outbox relay
  MIGRATION_DATABASE_URL  the <db>_owner role, migration Jobs only
CloudNativePG: key postgresql.cnpg.uriKey of the role's Secret "<prefix>-<db>-<role>" (the same
kubernetes.io/basic-auth Secret gives the managed role its password). External: the keys
postgresql.external.urlKeys.<role> ("%s" = component) of postgresql.external.existingSecret.
*/}}
{{- define "minorprot.pg.env" -}}
{{- $root := .root }}
{{- $v := .values }}
{{- $roles := list (list "DATABASE_URL" "app") }}
{{- if $v.outboxRelay }}
{{- $roles = append $roles (list "OUTBOX_DATABASE_URL" "relay") }}
{{- end }}
{{- if get . "migrate" }}
{{- $roles = append $roles (list "MIGRATION_DATABASE_URL" "owner") }}
{{- end }}
{{- $component := include "minorprot.component.id" . }}
{{- $cnpg := $root.Values.postgresql.cnpg }}
{{- $external := $root.Values.postgresql.external }}
{{- range $roles }}
- name: {{ index . 0 }}
  valueFrom:
    secretKeyRef:
      {{- if $cnpg.enabled }}
      name: {{ include "minorprot.pg.roleSecret" (dict "root" $root "database" $v.database "role" (index . 1)) }}
      key: {{ $cnpg.uriKey }}
      {{- else }}
      name: {{ required "postgresql.external.existingSecret is required when postgresql.cnpg.enabled is false" $external.existingSecret }}
      key: {{ printf (get $external.urlKeys (index . 1)) $component }}
      {{- end }}
{{- end }}
{{- end }}

{{/*
TENANT_DATABASES for a component: "code:database[,code:database]" of the silo tenants
(component context); empty when the component keeps no silo databases.
*/}}
{{- define "minorprot.tenantDatabases" -}}
{{- $v := .values }}
{{- $pairs := list }}
{{- if and $v.database $v.tenantSilos }}
{{- range $t := .root.Values.tenants }}
{{- with (get $t "database") }}
{{- $pairs = append $pairs (printf "%s:%s_%s" $t.code $v.database .) }}
{{- end }}
{{- end }}
{{- end }}
{{- join "," $pairs }}
{{- end }}

{{/* ---------- OpenTelemetry ---------- */}}

{{- define "minorprot.otel.serviceName" -}}
{{- printf "%s-otel-collector" (include "minorprot.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* OTEL_* settings as "KEY: value" lines (component context). */}}
{{- define "minorprot.otel.envData" -}}
OTEL_SERVICE_NAME: {{ .name | quote }}
OTEL_EXPORTER_OTLP_ENDPOINT: {{ printf "http://%s:4317" (include "minorprot.otel.serviceName" .root) | quote }}
OTEL_EXPORTER_OTLP_PROTOCOL: grpc
OTEL_TRACES_EXPORTER: otlp
{{- end }}

{{/* Downward-API env entries and OTEL_RESOURCE_ATTRIBUTES built from them (component context). */}}
{{- define "minorprot.otel.resourceEnv" -}}
- name: K8S_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: K8S_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ printf "service.namespace=minorprot,service.version=%s,deployment.environment.name=%s,k8s.namespace.name=$(K8S_NAMESPACE),k8s.pod.name=$(K8S_POD_NAME)" .root.Chart.AppVersion .root.Values.environment | quote }}
{{- end }}

{{/* ---------- NetworkPolicy building blocks (root context) ---------- */}}

{{- define "minorprot.np.dnsEgress" -}}
- to:
    {{- toYaml .Values.networkPolicy.dns.to | nindent 4 }}
  ports:
    - protocol: UDP
      port: {{ .Values.networkPolicy.dns.port }}
    - protocol: TCP
      port: {{ .Values.networkPolicy.dns.port }}
{{- end }}

{{- define "minorprot.np.otelEgress" -}}
- to:
    - podSelector:
        matchLabels:
          {{- include "minorprot.selectorLabels" (dict "root" . "name" "otel-collector") | nindent 10 }}
  ports:
    - protocol: TCP
      port: 4317
    - protocol: TCP
      port: 4318
{{- end }}

{{- define "minorprot.np.kafkaEgress" -}}
{{- if .Values.kafka.strimzi.enabled }}
- to:
    - podSelector:
        matchLabels:
          strimzi.io/cluster: {{ include "minorprot.kafka.clusterName" . }}
          strimzi.io/broker-role: "true"
  ports:
    - protocol: TCP
      port: {{ .Values.kafka.strimzi.listenerPort }}
{{- else }}
- {{- with .Values.kafka.external.networkPolicy.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  ports:
    {{- range .Values.kafka.external.networkPolicy.ports }}
    - protocol: TCP
      port: {{ . }}
    {{- end }}
{{- end }}
{{- end }}

{{- define "minorprot.np.postgresEgress" -}}
{{- if .Values.postgresql.cnpg.enabled }}
- to:
    - podSelector:
        matchLabels:
          cnpg.io/cluster: {{ include "minorprot.pg.clusterName" . }}
  ports:
    - protocol: TCP
      port: 5432
{{- else }}
- {{- with .Values.postgresql.external.networkPolicy.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  ports:
    - protocol: TCP
      port: {{ .Values.postgresql.external.networkPolicy.port }}
{{- end }}
{{- end }}
