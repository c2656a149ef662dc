{{/*
Names and labels shared with manifests/ (manifests-app/install-names.ts): the objects of a Helm
install and of `kubectl apply -k manifests/` are the same objects, so either can take over from the
other. The selector labels never change (a Deployment's selector is immutable).
*/}}
{{- define "lockstep.name" -}}lockstep-operator{{- end }}

{{- define "lockstep.selectorLabels" -}}
app.kubernetes.io/instance: lockstep
app.kubernetes.io/name: lockstep-operator
{{- end }}

{{- define "lockstep.labels" -}}
app.kubernetes.io/component: operator
{{ include "lockstep.selectorLabels" . }}
app.kubernetes.io/part-of: lockstep
{{- end }}

{{/* repository:tag, or repository:tag@digest; the tag defaults to the chart's appVersion. */}}
{{- define "lockstep.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- .Values.image.repository }}:{{ $tag }}{{ with .Values.image.digest }}@{{ . }}{{ end }}
{{- end }}
