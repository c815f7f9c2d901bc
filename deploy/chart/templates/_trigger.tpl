{{/*
KEDA: what the chart renders depends on the KEDA release in the cluster
(keda.version). Supported: 2.19 and later (fetchUnfinishedJobsOnly needs 2.18;
the chart's README says which releases were checked).
*/}}
{{- define "azure-agent.kedaVersion" -}}
{{- $version := printf "%v" .Values.keda.version -}}
{{- if semverCompare "<2.19.0-0" $version -}}
{{- fail (printf "azure-agent: keda.version %s is not supported: the chart needs KEDA 2.19 or later" $version) -}}
{{- end -}}
{{- $version -}}
{{- end -}}

{{/* The organisation URL without trailing "/": the scaler takes the organisation from after the last "/". */}}
{{- define "azure-agent.organizationURL" -}}
{{- regexReplaceAll "/+$" .Values.azp.url "" -}}
{{- end -}}

{{/*
ScaledJob strategy. Before 2.20 the scaler counts a job until it ends, which
`default` offsets by the running Jobs; from 2.20 it counts only jobs no agent
has taken (from 2.21 with scaleOnInFlight: "false"), which `accurate` expects.
The CRDs of 2.20.0 and 2.20.1 refuse `default`.
*/}}
{{- define "azure-agent.scalingStrategy" -}}
{{- $version := include "azure-agent.kedaVersion" . -}}
{{- $strategy := .Values.keda.scalingStrategy -}}
{{- if not $strategy -}}
{{- $strategy = ternary "accurate" "default" (semverCompare ">=2.20.0-0" $version) -}}
{{- end -}}
{{- if and (eq $strategy "default") (semverCompare ">=2.20.0-0 <2.20.2-0" $version) -}}
{{- fail (printf "azure-agent: keda.scalingStrategy=default is refused by the CRDs of KEDA 2.20.0 and 2.20.1 (keda.version %s): set keda.version to your exact KEDA release (2.20.2 or later accepts it) or pick accurate" $version) -}}
{{- end -}}
{{- $strategy -}}
{{- end -}}

{{/*
KEDA >= 2.21 counts jobs an agent already runs unless scaleOnInFlight is
"false". accurate and eager add one agent per counted job, so they need only
waiting jobs counted; default and custom subtract the running Jobs, and a
ScaledObject (Deployment mode) must count busy agents or it scales them down.
*/}}
{{- define "azure-agent.scaleOnInFlight" -}}
{{- if and (eq .Values.mode "ScaledJob") (has (include "azure-agent.scalingStrategy" .) (list "accurate" "eager")) -}}
false
{{- else -}}
true
{{- end -}}
{{- end -}}

{{/* KEDA's CRDs require minReplicaCount <= maxReplicaCount (a CEL rule on ScaledObject). */}}
{{- define "azure-agent.checkReplicaBounds" -}}
{{- if gt (int .Values.keda.minReplicaCount) (int .Values.keda.maxReplicaCount) -}}
{{- fail (printf "azure-agent: keda.minReplicaCount (%v) is greater than keda.maxReplicaCount (%v)" .Values.keda.minReplicaCount .Values.keda.maxReplicaCount) -}}
{{- end -}}
{{- end -}}

{{- define "azure-agent.trigger" -}}
- type: azure-pipelines
  metadata:
    {{- if .Values.azp.poolId }}
    poolID: {{ .Values.azp.poolId | toString | quote }}
    {{- else }}
    poolName: {{ .Values.azp.pool | quote }}
    {{- end }}
    organizationURL: {{ include "azure-agent.organizationURL" . | quote }}
    targetPipelinesQueueLength: {{ .Values.keda.targetPipelinesQueueLength | toString | quote }}
    activationTargetPipelinesQueueLength: {{ .Values.keda.activationTargetPipelinesQueueLength | toString | quote }}
    {{- with include "azure-agent.parent" . }}
    parent: {{ . | quote }}
    {{- end }}
    {{- /* Only queued and running jobs, not the pool's whole history (which times out on busy pools); excludes jobsToFetch. */}}
    fetchUnfinishedJobsOnly: "true"
    {{- if semverCompare ">=2.21.0-0" (include "azure-agent.kedaVersion" .) }}
    scaleOnInFlight: {{ include "azure-agent.scaleOnInFlight" . | quote }}
    {{- end }}
    {{- with .Values.keda.demands }}
    demands: {{ join "," . | quote }}
    requireAllDemands: {{ $.Values.keda.requireAllDemands | toString | quote }}
    {{- end }}
  authenticationRef:
    name: {{ include "azure-agent.fullname" . }}
{{- end -}}
