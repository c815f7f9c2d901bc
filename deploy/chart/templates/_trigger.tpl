{{- define "azure-agent.trigger" -}}
- type: azure-pipelines
  metadata:
    {{- if .Values.azp.poolId }}
    poolID: {{ .Values.azp.poolId | toString | quote }}
    {{- else }}
    poolName: {{ .Values.azp.pool | quote }}
    {{- end }}
    organizationURLFromEnv: AZP_URL
    targetPipelinesQueueLength: {{ .Values.keda.targetPipelinesQueueLength | toString | quote }}
    activationTargetPipelinesQueueLength: {{ .Values.keda.activationTargetPipelinesQueueLength | toString | quote }}
    {{- with include "azure-agent.parent" . }}
    parent: {{ . | quote }}
    {{- else }}
    jobsToFetch: {{ .Values.keda.jobsToFetch | toString | quote }}
    {{- end }}
    {{- with .Values.keda.demands }}
    demands: {{ join "," . | quote }}
    requireAllDemands: {{ $.Values.keda.requireAllDemands | toString | quote }}
    {{- end }}
  authenticationRef:
    name: {{ include "azure-agent.fullname" . }}
{{- end -}}
