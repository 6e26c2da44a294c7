{{/*
One application component (a service or the gateway), included by its one-line template:

  {{ include "minorprot.component" (dict "root" $ "name" "registry") }}

renders, from .Values.components.<name>: the env ConfigMap, ServiceAccount, Service, Deployment,
PodDisruptionBudget, HorizontalPodAutoscaler, NetworkPolicy and the migration hook Job.
*/}}
{{- define "minorprot.component" -}}
{{- $root := .root }}
{{- $name := .name }}
{{- $v := get $root.Values.components $name }}
{{- if not $v }}
{{- fail (printf "components.%s is missing from the values" $name) }}
{{- end }}
{{- $ctx := dict "root" $root "name" $name "values" $v }}
{{- range $v.calls }}
{{- $callee := get $root.Values.components . }}
{{- if or (not $callee) (ne (toString (get ($callee | default dict) "protocol")) "grpc") }}
{{- fail (printf "components.%s.calls: %q is not a gRPC component" $name .) }}
{{- end }}
{{- end }}
{{- $portName := ternary "grpc" "http" (eq $v.protocol "grpc") }}
{{- $podLabels := dict }}
{{- if include "minorprot.kafka.uses" $ctx }}
{{- $_ := set $podLabels "minorprot.io/kafka-client" "true" }}
{{- end }}
{{- $_ := set $ctx "podLabels" $podLabels }}
{{- $_ := set $ctx "ports" (list (dict "name" $portName "port" $v.port "appProtocol" $portName)) }}
{{- $_ := set $ctx "serviceAccountName" (include "minorprot.componentFullname" $ctx) }}
{{- $_ := set $ctx "containerTemplate" "minorprot.app.container" }}
{{- $_ := set $ctx "configTemplate" "minorprot.app.configMap" }}
{{- $_ := set $ctx "volumesTemplate" (ternary "minorprot.grpcTls.volume" "" (eq (include "minorprot.grpcTls.uses" $ctx) "true")) }}
{{ include "minorprot.app.configMap" $ctx }}
---
{{ include "minorprot.serviceAccount" $ctx }}
---
{{ include "minorprot.service" $ctx }}
---
{{ include "minorprot.deployment" $ctx }}
{{- with include "minorprot.podDisruptionBudget" $ctx }}
---
{{ . | trim }}
{{- end }}
{{- with include "minorprot.horizontalPodAutoscaler" $ctx }}
---
{{ . | trim }}
{{- end }}
{{- if $root.Values.networkPolicy.enabled }}
---
{{ include "minorprot.app.networkPolicy" $ctx }}
{{- end }}
{{- if and $v.database $v.migration.enabled }}
{{- $job := dict "root" $root "name" (printf "%s-migrate" $name) "component" $name "values" $v "migrate" true }}
{{- $_ := set $job "podLabels" (merge (dict "minorprot.io/job" "true") $podLabels) }}
{{- $_ := set $job "serviceAccountName" (include "minorprot.jobs.serviceAccountName" $root) }}
{{- $_ := set $job "containerTemplate" "minorprot.app.jobContainer" }}
{{- $_ := set $job "args" (list "migrate") }}
{{- /* post-install: on a first install the CloudNativePG cluster is created by this release, so
       the migration can only run after it; pre-upgrade: later versions migrate before rolling. */}}
{{- $_ := set $job "hook" "post-install,pre-upgrade" }}
{{- $_ := set $job "hookWeight" -5 }}
---
{{ include "minorprot.job" $job }}
{{- end }}
{{- end }}

{{/* Non-secret environment of a component, "KEY: value" lines (component context). */}}
{{- define "minorprot.app.envData" -}}
{{- $root := .root }}
{{- $v := .values -}}
LOG_LEVEL: {{ $root.Values.logLevel | quote }}
{{ ternary "GRPC_PORT" "HTTP_PORT" (eq $v.protocol "grpc") }}: {{ $v.port | quote }}
{{- if eq $v.protocol "grpc" }}
METRICS_PORT: "9464"
{{- end }}
{{ include "minorprot.otel.envData" . | trim }}
{{- if include "minorprot.kafka.uses" . }}
{{ include "minorprot.kafka.envData" . | trim }}
{{- end }}
{{- range $v.calls }}
{{ upper . }}_TARGET: {{ printf "%s-%s:%d" (include "minorprot.fullname" $root) . (int (get $root.Values.components .).port) | quote }}
{{- end }}
{{- with include "minorprot.tenantDatabases" . }}
TENANT_DATABASES: {{ . | quote }}
{{- end }}
{{- range $k, $val := $v.env }}
{{ $k }}: {{ $val | quote }}
{{- end }}
{{- end }}

{{/* Env entries that come from Secrets or the downward API (component context). */}}
{{- define "minorprot.app.secretEnv" -}}
{{- $root := .root }}
{{- $v := .values -}}
{{ include "minorprot.otel.resourceEnv" . | trim }}
{{- range $v.secretEnv }}
- name: {{ . | snakecase | upper }}
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.secrets.existingSecret }}
      key: {{ get $root.Values.secrets.keys . }}
{{- end }}
{{- if $v.database }}
{{ include "minorprot.pg.env" . | trim }}
{{- end }}
{{- if include "minorprot.kafka.uses" . }}
{{- with include "minorprot.kafka.secretEnv" . }}
{{ . | trim }}
{{- end }}
{{- end }}
{{- end }}

{{- define "minorprot.app.configMap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "minorprot.componentFullname" . }}-env
  labels:
    {{- include "minorprot.labels" . | nindent 4 }}
data:
  {{- include "minorprot.app.envData" . | nindent 2 }}
{{- end }}

{{/*
TLS of the internal gRPC (grpcTls, ADR 0020), from the operator's Secret mounted read-only: a service gets
tls.crt and tls.key (GRPC_TLS_CERT_FILE, GRPC_TLS_KEY_FILE) and serves its plaintext health server on
grpcTls.healthPort (GRPC_HEALTH_PORT) for the probes; a caller gets ca.crt (GRPC_TLS_CA_FILE). Not in the
ConfigMap: the Jobs, which share it, neither serve nor call gRPC and have no such volume.
*/}}
{{- define "minorprot.grpcTls.uses" -}}
{{- if and .root.Values.grpcTls.enabled (or (eq .values.protocol "grpc") .values.calls) }}true{{ end }}
{{- end }}

{{- define "minorprot.grpcTls.serves" -}}
{{- if and .root.Values.grpcTls.enabled (eq .values.protocol "grpc") }}true{{ end }}
{{- end }}

{{- define "minorprot.grpcTls.volume" -}}
- name: grpc-tls
  secret:
    secretName: {{ .root.Values.grpcTls.secretName }}
    defaultMode: 288  # 0440, read by the pod's group (fsGroup)
    items:
      {{- if include "minorprot.grpcTls.serves" . }}
      - {key: tls.crt, path: tls.crt}
      - {key: tls.key, path: tls.key}
      {{- end }}
      {{- if .values.calls }}
      - {key: ca.crt, path: ca.crt}
      {{- end }}
{{- end }}

{{- define "minorprot.grpcTls.env" -}}
{{- if include "minorprot.grpcTls.serves" . }}
- name: GRPC_TLS_CERT_FILE
  value: /etc/minorprot/grpc-tls/tls.crt
- name: GRPC_TLS_KEY_FILE
  value: /etc/minorprot/grpc-tls/tls.key
- name: GRPC_HEALTH_PORT
  value: {{ .root.Values.grpcTls.healthPort | quote }}
{{- end }}
{{- if and .root.Values.grpcTls.enabled .values.calls }}
- name: GRPC_TLS_CA_FILE
  value: /etc/minorprot/grpc-tls/ca.crt
{{- end }}
{{- end }}

{{/*
Probes: native gRPC health for services, /healthz and /readyz for the gateway. The kubelet's gRPC probe cannot
speak TLS: with grpcTls it checks the service's plaintext health server (the same status as the TLS port).
*/}}
{{- define "minorprot.app.probes" -}}
{{- $v := .values }}
{{- if eq $v.protocol "grpc" }}
{{- $port := ternary .root.Values.grpcTls.healthPort $v.port (eq (include "minorprot.grpcTls.serves" .) "true") }}
startupProbe:
  grpc:
    port: {{ $port }}
  periodSeconds: 2
  failureThreshold: 60
livenessProbe:
  grpc:
    port: {{ $port }}
  periodSeconds: 10
  timeoutSeconds: 2
  failureThreshold: 3
readinessProbe:
  grpc:
    port: {{ $port }}
  periodSeconds: 5
  timeoutSeconds: 2
  failureThreshold: 2
{{- else }}
startupProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: 2
  failureThreshold: 60
livenessProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: 10
  timeoutSeconds: 2
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /readyz
    port: http
  periodSeconds: 5
  timeoutSeconds: 2
  failureThreshold: 2
{{- end }}
{{- end }}

{{- define "minorprot.app.container" -}}
{{- $root := .root }}
{{- $v := .values -}}
name: {{ .name }}
image: {{ include "minorprot.app.image" . }}
imagePullPolicy: {{ $root.Values.image.pullPolicy }}
command: ["python", "-m", {{ $v.module | quote }}]
args: ["serve"]
ports:
  - name: {{ (index .ports 0).name }}
    containerPort: {{ $v.port }}
    protocol: TCP
  {{- if eq $v.protocol "grpc" }}
  # Prometheus metrics: workers up or down, retries, dead letters, the outbox backlog.
  - name: metrics
    containerPort: 9464
    protocol: TCP
  {{- end }}
  {{- if include "minorprot.grpcTls.serves" . }}
  # Plaintext grpc.health.v1 alone, for the probes (the gRPC port is TLS).
  - name: grpc-health
    containerPort: {{ $root.Values.grpcTls.healthPort }}
    protocol: TCP
  {{- end }}
envFrom:
  - configMapRef:
      name: {{ include "minorprot.componentFullname" . }}-env
env:
  {{- include "minorprot.app.secretEnv" . | nindent 2 }}
  {{- with include "minorprot.grpcTls.env" . }}
  {{- . | trim | nindent 2 }}
  {{- end }}
{{ include "minorprot.app.probes" . | trim }}
resources:
  {{- toYaml $v.resources | nindent 2 }}
securityContext:
  {{- include "minorprot.containerSecurityContext" $root | nindent 2 }}
volumeMounts:
  {{- include "minorprot.tmpVolumeMount" $root | nindent 2 }}
  {{- if include "minorprot.grpcTls.uses" . }}
  - name: grpc-tls
    mountPath: /etc/minorprot/grpc-tls
    readOnly: true
  {{- end }}
{{- end }}

{{/*
Container of an application Job (migration, onboarding, topics). The environment is rendered
inline, not read from the component's ConfigMap: a pre-upgrade hook runs before the ConfigMap is
upgraded and must see the new settings (e.g. a new silo tenant's database).
*/}}
{{- define "minorprot.app.jobContainer" -}}
{{- $root := .root }}
{{- $v := .values -}}
name: {{ .name }}
image: {{ include "minorprot.app.image" . }}
imagePullPolicy: {{ $root.Values.image.pullPolicy }}
command: ["python", "-m", {{ get . "module" | default $v.module | quote }}]
args:
  {{- toYaml .args | nindent 2 }}
env:
  {{- range $k, $val := (include "minorprot.app.envData" . | fromYaml) }}
  - name: {{ $k }}
    value: {{ $val | quote }}
  {{- end }}
  {{- include "minorprot.app.secretEnv" . | nindent 2 }}
resources:
  {{- toYaml $root.Values.jobs.resources | nindent 2 }}
securityContext:
  {{- include "minorprot.containerSecurityContext" $root | nindent 2 }}
volumeMounts:
  {{- include "minorprot.tmpVolumeMount" $root | nindent 2 }}
{{- end }}

{{/* ServiceAccount of the hook Jobs (root context). */}}
{{- define "minorprot.jobs.serviceAccountName" -}}
{{- printf "%s-jobs" (include "minorprot.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
NetworkPolicy of a component: ingress from the components that call it (the gateway's port from
networkPolicy.gatewayFrom), egress to DNS, the collector, its callees, Kafka and PostgreSQL.
*/}}
{{- define "minorprot.app.networkPolicy" -}}
{{- $root := .root }}
{{- $v := .values }}
{{- $name := .name }}
{{- $callers := list }}
{{- range $n, $c := $root.Values.components }}
{{- if has $name $c.calls }}
{{- $callers = append $callers $n }}
{{- end }}
{{- end }}
{{- $public := eq $v.protocol "http" }}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "minorprot.componentFullname" . }}
  labels:
    {{- include "minorprot.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "minorprot.selectorLabels" . | nindent 6 }}
  policyTypes:
    - Ingress
    - Egress
  {{- if or $public $callers }}
  ingress:
    {{- if $public }}
    - {{- with $root.Values.networkPolicy.gatewayFrom }}
      from:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      ports:
        - protocol: TCP
          port: {{ $v.port }}
    {{- end }}
    {{- if $callers }}
    - from:
        - podSelector:
            matchLabels:
              app.kubernetes.io/name: {{ include "minorprot.name" $root }}
              app.kubernetes.io/instance: {{ $root.Release.Name }}
            matchExpressions:
              - key: app.kubernetes.io/component
                operator: In
                values:
                  {{- toYaml $callers | nindent 18 }}
      ports:
        - protocol: TCP
          port: {{ $v.port }}
    {{- end }}
  {{- else }}
  ingress: []
  {{- end }}
  egress:
    {{- include "minorprot.np.dnsEgress" $root | trim | nindent 4 }}
    {{- include "minorprot.np.otelEgress" $root | trim | nindent 4 }}
    {{- range $v.calls }}
    - to:
        - podSelector:
            matchLabels:
              {{- include "minorprot.selectorLabels" (dict "root" $root "name" .) | nindent 14 }}
      ports:
        - protocol: TCP
          port: {{ (get $root.Values.components .).port }}
    {{- end }}
    {{- if include "minorprot.kafka.uses" . }}
    {{- include "minorprot.np.kafkaEgress" $root | trim | nindent 4 }}
    {{- end }}
    {{- if $v.database }}
    {{- include "minorprot.np.postgresEgress" $root | trim | nindent 4 }}
    {{- end }}
    {{- with $v.externalEgress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}
