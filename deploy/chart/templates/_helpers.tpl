{{/* Name of the release's objects: the release name, with the chart name when it differs. */}}
{{- define "azure-agent.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "azure-agent.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "azure-agent.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: agent
{{- end -}}

{{/* Secret and key of the PAT; fails early when neither form is given. */}}
{{- define "azure-agent.secretName" -}}
{{- if .Values.azp.existingSecret -}}
{{- .Values.azp.existingSecret -}}
{{- else if .Values.azp.token -}}
{{- printf "%s-token" (include "azure-agent.fullname" .) -}}
{{- else -}}
{{- fail "azure-agent: the PAT is missing: set azp.existingSecret (a Secret with the key azp.existingSecretKey) or azp.token" -}}
{{- end -}}
{{- end -}}

{{- define "azure-agent.secretKey" -}}
{{- if .Values.azp.existingSecret -}}{{ .Values.azp.existingSecretKey }}{{- else -}}token{{- end -}}
{{- end -}}

{{- define "azure-agent.buildNamespace" -}}
{{- default .Release.Namespace .Values.rbac.buildNamespace -}}
{{- end -}}

{{- define "azure-agent.templateName" -}}
{{- default (printf "%s-template" (include "azure-agent.fullname" .)) .Values.templateAgent.name -}}
{{- end -}}

{{- define "azure-agent.parent" -}}
{{- if .Values.keda.parent -}}
{{- .Values.keda.parent -}}
{{- else if and .Values.templateAgent.enabled (not .Values.keda.demands) -}}
{{- include "azure-agent.templateName" . -}}
{{- end -}}
{{- end -}}

{{- define "azure-agent.timeoutSeconds" -}}
{{- mul (int .Values.job.timeoutMinutes) 60 -}}
{{- end -}}

{{- define "azure-agent.roleAnnotations" -}}
{{- $sa := .sa -}}
{{- with $sa.annotations }}
{{ toYaml . }}
{{- end }}
{{- if and $sa.roleArn (eq .root.Values.aws.identity "irsa") }}
eks.amazonaws.com/role-arn: {{ $sa.roleArn | quote }}
{{- end }}
{{- end -}}

{{/*
The agent's pod spec, for the ScaledJob, the Deployment and the template Job.
Arguments: root (the chart context), args (start.sh's arguments), template (bool).
The PAT is a file (AZP_TOKEN_FILE), never an environment variable.
*/}}
{{- define "azure-agent.podSpec" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
serviceAccountName: {{ $v.serviceAccount.agent.name }}
automountServiceAccountToken: true
terminationGracePeriodSeconds: {{ include "azure-agent.timeoutSeconds" $root }}
{{- with $v.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $v.agent.podSecurityContext | nindent 2 }}
{{- with $v.agent.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.agent.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.agent.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
containers:
  - name: agent
    image: "{{ $v.image.repository }}:{{ default $root.Chart.AppVersion $v.image.tag }}"
    imagePullPolicy: {{ $v.image.pullPolicy }}
    {{- with .args }}
    args:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    env:
      - name: AZP_URL
        value: {{ $v.azp.url | quote }}
      - name: AZP_POOL
        value: {{ $v.azp.pool | quote }}
      - name: AZP_TOKEN_FILE
        value: /azp/secrets/token
      - name: AZP_WORK
        value: {{ $v.azp.workDir | quote }}
      {{- if .template }}
      - name: AZP_AGENT_NAME
        value: {{ include "azure-agent.templateName" $root | quote }}
      - name: AZP_TEMPLATE_AGENT
        value: "true"
      {{- end }}
      {{- with $v.azp.agentPackageUrl }}
      - name: AZP_AGENT_PACKAGE_URL
        value: {{ . | quote }}
      {{- end }}
      {{- range $v.keda.demands }}
      {{- $parts := splitList " -equals " . }}
      - name: {{ first $parts | trim | quote }}
        value: {{ if gt (len $parts) 1 }}{{ last $parts | trim | quote }}{{ else }}"true"{{ end }}
      {{- end }}
      - name: AZP_BUILD_NAMESPACE
        value: {{ include "azure-agent.buildNamespace" $root | quote }}
      {{- with $v.aws.region }}
      - name: AWS_REGION
        value: {{ . | quote }}
      {{- end }}
      {{- if $v.aws.profiles }}
      - name: AWS_CONFIG_FILE
        value: /azp/aws/config
      {{- end }}
      {{- with $v.agent.env }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    securityContext:
      {{- toYaml $v.agent.securityContext | nindent 6 }}
    resources:
      {{- toYaml $v.agent.resources | nindent 6 }}
    volumeMounts:
      - name: token
        mountPath: /azp/secrets
        readOnly: true
      {{- if $v.aws.profiles }}
      - name: aws-profiles
        mountPath: /azp/aws
        readOnly: true
      {{- end }}
volumes:
  - name: token
    secret:
      secretName: {{ include "azure-agent.secretName" $root }}
      defaultMode: 0440
      items:
        - key: {{ include "azure-agent.secretKey" $root }}
          path: token
  {{- if $v.aws.profiles }}
  - name: aws-profiles
    configMap:
      name: {{ include "azure-agent.fullname" $root }}-aws-profiles
  {{- end }}
{{- end -}}

{{- define "azure-agent.podMetadata" -}}
labels:
  {{- include "azure-agent.selectorLabels" .root | nindent 2 }}
  {{- with .root.Values.agent.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
annotations:
  cluster-autoscaler.kubernetes.io/safe-to-evict: "false"
  {{- with .root.Values.agent.podAnnotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}
