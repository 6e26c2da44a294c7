{{/*
Object templates shared by every workload (the five services, the gateway, the OpenTelemetry
collector and the hook Jobs). Each takes a component context:

  root               the chart's root context
  name               component name (app.kubernetes.io/component, "<fullname>-<name>" object names)
  values             the component's values (replicaCount, resources, autoscaling,
                     podDisruptionBudget, podAnnotations, nodeSelector, tolerations)
  ports              list of (dict "name" "port" "appProtocol") for the Service
  podLabels          extra pod labels (dict)
  serviceAccountName ServiceAccount of the pods
  containerTemplate  name of the template rendering the container
  configTemplate     name of the template whose output is hashed into checksum/config
  volumesTemplate    name of a template rendering extra volumes, or ""
*/}}

{{- define "minorprot.serviceAccount" -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ .serviceAccountName }}
  labels:
    {{- include "minorprot.labels" . | nindent 4 }}
automountServiceAccountToken: false
{{- end }}

{{- define "minorprot.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "minorprot.componentFullname" . }}
  labels:
    {{- include "minorprot.labels" . | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "minorprot.selectorLabels" . | nindent 4 }}
  ports:
    {{- range .ports }}
    - name: {{ .name }}
      port: {{ .port }}
      targetPort: {{ .name }}
      protocol: TCP
      appProtocol: {{ .appProtocol }}
    {{- end }}
{{- end }}

{{- define "minorprot.deployment" -}}
{{- $ctx := . }}
{{- $root := .root }}
{{- $v := .values -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "minorprot.componentFullname" . }}
  labels:
    {{- include "minorprot.labels" . | nindent 4 }}
spec:
  {{- if not $v.autoscaling.enabled }}
  replicas: {{ $v.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "minorprot.selectorLabels" . | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  template:
    metadata:
      labels:
        {{- include "minorprot.podLabels" . | nindent 8 }}
      annotations:
        checksum/config: {{ include .configTemplate . | sha256sum }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      {{- include "minorprot.podSpecCommon" . | nindent 6 }}
      terminationGracePeriodSeconds: 30
      {{- if $root.Values.topologySpread.enabled }}
      topologySpreadConstraints:
        {{- range $root.Values.topologySpread.topologyKeys }}
        - maxSkew: {{ $root.Values.topologySpread.maxSkew }}
          topologyKey: {{ . }}
          whenUnsatisfiable: {{ $root.Values.topologySpread.whenUnsatisfiable }}
          labelSelector:
            matchLabels:
              {{- include "minorprot.selectorLabels" $ctx | nindent 14 }}
          matchLabelKeys:
            - pod-template-hash
        {{- end }}
      {{- end }}
      containers:
        - {{- include .containerTemplate . | nindent 10 }}
      volumes:
        {{- include "minorprot.tmpVolume" $root | nindent 8 }}
        {{- if .volumesTemplate }}
        {{- include .volumesTemplate . | nindent 8 }}
        {{- end }}
{{- end }}

{{- define "minorprot.podDisruptionBudget" -}}
{{- if .values.podDisruptionBudget.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "minorprot.componentFullname" . }}
  labels:
    {{- include "minorprot.labels" . | nindent 4 }}
spec:
  maxUnavailable: {{ .values.podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "minorprot.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end }}

{{- define "minorprot.horizontalPodAutoscaler" -}}
{{- $a := .values.autoscaling }}
{{- if $a.enabled }}
{{- if gt (int $a.minReplicas) (int $a.maxReplicas) }}
{{- fail (printf "%s: autoscaling.minReplicas is above maxReplicas" .name) }}
{{- end }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "minorprot.componentFullname" . }}
  labels:
    {{- include "minorprot.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "minorprot.componentFullname" . }}
  minReplicas: {{ $a.minReplicas }}
  maxReplicas: {{ $a.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $a.targetCPUUtilizationPercentage }}
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 300
{{- end }}
{{- end }}

{{/*
A hook Job (component context plus "hook", "hookWeight"; "name" is the Job's component label,
e.g. "registry-migrate"). The pod never talks to the Kubernetes API and is covered by the jobs
NetworkPolicy through the "minorprot.io/job" label.
*/}}
{{- define "minorprot.job" -}}
{{- $root := .root -}}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ include "minorprot.componentFullname" . }}
  labels:
    {{- include "minorprot.labels" . | nindent 4 }}
  annotations:
    helm.sh/hook: {{ .hook }}
    helm.sh/hook-weight: {{ .hookWeight | quote }}
    # a finished Job is replaced on the next run; a failed one stays for `kubectl logs`
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  backoffLimit: {{ $root.Values.jobs.backoffLimit }}
  activeDeadlineSeconds: {{ $root.Values.jobs.activeDeadlineSeconds }}
  template:
    metadata:
      labels:
        {{- include "minorprot.podLabels" . | nindent 8 }}
    spec:
      {{- include "minorprot.podSpecCommon" . | nindent 6 }}
      restartPolicy: Never
      containers:
        - {{- include .containerTemplate . | nindent 10 }}
      volumes:
        {{- include "minorprot.tmpVolume" $root | nindent 8 }}
{{- end }}
