{{/* The chart's name, and the prefix of every object's name. */}}
{{- define "qunzu.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "qunzu.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The five services, in start order (audit first: the others feed it). */}}
{{- define "qunzu.serviceNames" -}}
audit identity credit moderation groups
{{- end -}}

{{/* One service's objects' name. Call with (dict "root" $ "name" "audit"). */}}
{{- define "qunzu.componentName" -}}
{{- printf "%s-%s" (include "qunzu.fullname" .root) .name -}}
{{- end -}}

{{- define "qunzu.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "qunzu.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: qunzu
{{- end -}}

{{/* Labels that pick one service's pods. Call with (dict "root" $ "name" ...). */}}
{{- define "qunzu.selectorLabels" -}}
app.kubernetes.io/name: {{ include "qunzu.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{/* Labels that pick every pod of this release. */}}
{{- define "qunzu.releaseSelectorLabels" -}}
app.kubernetes.io/name: {{ include "qunzu.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
One service's settings: .Values.defaults overlaid with what the service's
block sets. Returns YAML; use with fromYaml.
*/}}
{{- define "qunzu.settings" -}}
{{- $service := index .root.Values.services .name -}}
{{- $settings := deepCopy .root.Values.defaults -}}
{{- range $key := keys .root.Values.defaults -}}
{{- if hasKey $service $key -}}
{{- $_ := set $settings $key (index $service $key) -}}
{{- end -}}
{{- end -}}
{{- toYaml $settings -}}
{{- end -}}

{{/* host:port of another service of this release, for its clients. */}}
{{- define "qunzu.target" -}}
{{- printf "%s:%v" (include "qunzu.componentName" .) (index .root.Values.services .name).grpcPort -}}
{{- end -}}

{{- define "qunzu.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository .Values.image.tag -}}
{{- end -}}
{{- end -}}

{{- define "qunzu.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "qunzu.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
Checks across values that values.schema.json cannot express; a failure
names the field. (helm lint only reports these as INFO: `fail` is lenient
in lint mode. helm template and install stop on them.)
*/}}
{{- define "qunzu.validate" -}}
{{- $root := . -}}
{{- range $name := splitList " " (include "qunzu.serviceNames" .) }}
{{- $service := index $root.Values.services $name -}}
{{- $settings := include "qunzu.settings" (dict "root" $root "name" $name) | fromYaml -}}
{{- $a := $settings.autoscaling -}}
{{- if and $a.enabled (gt (int $a.minReplicas) (int $a.maxReplicas)) -}}
{{- fail (printf "services.%s.autoscaling: minReplicas %v is more than maxReplicas %v" $name $a.minReplicas $a.maxReplicas) -}}
{{- end -}}
{{- if eq (int $service.grpcPort) (int $service.metricsPort) -}}
{{- fail (printf "services.%s.metricsPort: %v is also its grpcPort" $name $service.metricsPort) -}}
{{- end -}}
{{- end -}}
{{- end -}}
