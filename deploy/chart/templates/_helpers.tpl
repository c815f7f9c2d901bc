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

{{/*
Where kaniko pods run: never the agents' own namespace, where a job step that
may manage pods could delete, read or attach to other pipelines' agents.
*/}}
{{- define "azure-agent.buildNamespace" -}}
{{- $name := default (printf "%s-build" .Release.Namespace) .Values.rbac.buildNamespace -}}
{{- if eq $name .Release.Namespace -}}
{{- fail (printf "azure-agent: rbac.buildNamespace must not be the release namespace %s: job steps could then delete, read the logs of and attach to other pipelines' agent pods" $name) -}}
{{- end -}}
{{- $name -}}
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
Arguments: root (the chart context), args (run's arguments), template (bool).
Only `register` (init container) and `deregister` (native sidecar) mount the
PAT; `agent`, the container that runs job steps, gets the agent's own
credentials through the handover volume and never the PAT. The template Job
only registers. No shareProcessNamespace: the agent must not see the others.
*/}}
{{- define "azure-agent.podSpec" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- if and (eq $v.mode "ScaledJob") (semverCompare "<2.12.0-0" (printf "%v" $v.keda.version)) }}
{{- fail (printf "azure-agent: mode ScaledJob needs KEDA 2.12 or later (keda.version is %v): older ScaledJob CRDs drop the deregister sidecar's restartPolicy, and the agent would never start" $v.keda.version) }}
{{- end }}
{{- $image := printf "%s:%s" $v.image.repository (default $root.Chart.AppVersion $v.image.tag) -}}
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
{{- if .template }}
containers:
  - name: register
    {{- include "azure-agent.registrationContainer" (dict "root" $root "image" $image "role" "register") | nindent 4 }}
    env:
      {{- include "azure-agent.registrationEnv" $root | nindent 6 }}
      - name: AZP_AGENT_NAME
        value: {{ include "azure-agent.templateName" $root | quote }}
      - name: AZP_TEMPLATE_AGENT
        value: "true"
      {{- with include "azure-agent.demandEnv" $root | trim }}
      {{- . | nindent 6 }}
      {{- end }}
    volumeMounts:
      - name: token
        mountPath: /azp/secrets
        readOnly: true
{{- else }}
initContainers:
  - name: register
    {{- include "azure-agent.registrationContainer" (dict "root" $root "image" $image "role" "register") | nindent 4 }}
    env:
      {{- include "azure-agent.registrationEnv" $root | nindent 6 }}
      {{- with include "azure-agent.demandEnv" $root | trim }}
      {{- . | nindent 6 }}
      {{- end }}
    volumeMounts:
      {{- include "azure-agent.registrationMounts" . | nindent 6 }}
  # A native sidecar: it outlives the agent to remove its registration.
  - name: deregister
    {{- include "azure-agent.registrationContainer" (dict "root" $root "image" $image "role" "deregister") | nindent 4 }}
    restartPolicy: Always
    env:
      {{- include "azure-agent.registrationEnv" $root | nindent 6 }}
    volumeMounts:
      {{- include "azure-agent.registrationMounts" . | nindent 6 }}
containers:
  - name: agent
    image: {{ $image | quote }}
    imagePullPolicy: {{ $v.image.pullPolicy }}
    args:
      {{- toYaml (concat (list "run") (default (list) .args)) | nindent 6 }}
    env:
      - name: AZP_HANDOVER_DIR
        value: /azp/handover
      {{- include "azure-agent.agentEnv" $root | trim | nindent 6 }}
    securityContext:
      {{- toYaml $v.agent.securityContext | nindent 6 }}
    resources:
      {{- toYaml $v.agent.resources | nindent 6 }}
    volumeMounts:
      - name: handover
        mountPath: /azp/handover
      {{- if $v.aws.profiles }}
      - name: aws-profiles
        mountPath: /azp/aws
        readOnly: true
      {{- end }}
{{- end }}
volumes:
  - name: token
    secret:
      secretName: {{ include "azure-agent.secretName" $root }}
      defaultMode: 0440
      items:
        - key: {{ include "azure-agent.secretKey" $root }}
          path: token
  {{- if not .template }}
  - name: handover
    emptyDir: {}
  - name: registration
    emptyDir: {}
  {{- end }}
  {{- if and $v.aws.profiles (not .template) }}
  - name: aws-profiles
    configMap:
      name: {{ include "azure-agent.fullname" $root }}-aws-profiles
  {{- end }}
{{- end -}}

{{/* image, args, security and resources of register and deregister; arguments: root, image, role. */}}
{{- define "azure-agent.registrationContainer" -}}
image: {{ .image | quote }}
imagePullPolicy: {{ .root.Values.image.pullPolicy }}
args: [{{ .role }}]
securityContext:
  {{- toYaml .root.Values.agent.securityContext | nindent 2 }}
resources:
  {{- toYaml .root.Values.agent.registrationResources | nindent 2 }}
{{- end -}}

{{/* What register and deregister need to reach the organisation with the PAT (a file). */}}
{{- define "azure-agent.registrationEnv" -}}
{{- $v := .Values -}}
- name: AZP_URL
  value: {{ $v.azp.url | quote }}
- name: AZP_POOL
  value: {{ $v.azp.pool | quote }}
- name: AZP_TOKEN_FILE
  value: /azp/secrets/token
- name: AZP_WORK
  value: {{ $v.azp.workDir | quote }}
- name: AZP_HANDOVER_DIR
  value: /azp/handover
- name: AZP_REGISTRATION_DIR
  value: /azp/registration
{{- with $v.azp.agentPackageUrl }}
- name: AZP_AGENT_PACKAGE_URL
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{- define "azure-agent.registrationMounts" -}}
- name: token
  mountPath: /azp/secrets
  readOnly: true
- name: handover
  mountPath: /azp/handover
- name: registration
  mountPath: /azp/registration
{{- end -}}

{{/* keda.demands as the agent's user capabilities (register reports them too, for the template agent). */}}
{{- define "azure-agent.demandEnv" -}}
{{- range .Values.keda.demands }}
{{- $parts := splitList " -equals " . }}
- name: {{ first $parts | trim | quote }}
  value: {{ if gt (len $parts) 1 }}{{ last $parts | trim | quote }}{{ else }}"true"{{ end }}
{{- end }}
{{- end -}}

{{/*
What the agent's job steps read: its capabilities, the build namespace
(KanikoBuild@1's default namespace), AWS settings, agent.env.
*/}}
{{- define "azure-agent.agentEnv" -}}
{{- $v := .Values -}}
{{- include "azure-agent.demandEnv" . }}
- name: AZP_BUILD_NAMESPACE
  value: {{ include "azure-agent.buildNamespace" . | quote }}
{{- with $v.aws.region }}
- name: AWS_REGION
  value: {{ . | quote }}
{{- end }}
{{- if $v.aws.profiles }}
- name: AWS_CONFIG_FILE
  value: /azp/aws/config
{{- end }}
{{- with $v.agent.env }}
{{ toYaml . }}
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
