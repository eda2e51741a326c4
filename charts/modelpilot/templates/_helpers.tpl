{{/* Chart name, truncated to 63 characters (a DNS label). */}}
{{- define "modelpilot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: release-chart, or the release name alone when it already contains the chart name. */}}
{{- define "modelpilot.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "modelpilot.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "modelpilot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelpilot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "modelpilot.labels" -}}
helm.sh/chart: {{ include "modelpilot.chart" . }}
{{ include "modelpilot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: modelpilot
{{- end -}}

{{- define "modelpilot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "modelpilot.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "modelpilot.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Fails the render on combinations the schema cannot express well. */}}
{{- define "modelpilot.validate" -}}
{{- if and (eq .Values.rbac.mode "namespaced") (empty .Values.watchNamespaces) -}}
{{- fail "rbac.mode=namespaced needs watchNamespaces: the operator would watch all namespaces without the rights to" -}}
{{- end -}}
{{- if ne (len .Values.watchNamespaces) (len (uniq .Values.watchNamespaces)) -}}
{{- fail "watchNamespaces lists a namespace twice" -}}
{{- end -}}
{{- end -}}

{{/*
The operator's rights inside a namespace (or everywhere, in clusterWide mode). Derived from what the code calls:
  modelpilot.io modeldeployments          kopf lists and watches them, patches annotations and finalizers;
                                           each pass reads one fresh (get)
  modelpilot.io modeldeployments/status   the pass writes status (merge patch; it reads the whole object)
  modelpilot.io modeldeployments/finalizers  children carry blockOwnerDeletion owner references, which the
                                           OwnerReferencesPermissionEnforcement admission plugin checks as update here
  apps deployments                        one per revision: listed by label, watched (kopf event handler), server-side
                                           applied (patch; create too when the apply makes a new one), scaled
                                           (patch), deleted. Never read one by one.
  "" services                             the model, preview, -stable and -canary Services: server-side applied
                                           only, never read or deleted (owner references remove them)
  autoscaling horizontalpodautoscalers    applied, read back to remove an owned one, deleted
  "" events                               kopf posts Events (core v1 only) for every transition
  gateway.networking.k8s.io httproutes    read and merge-patched (weights of the user's route)
  networking.istio.io virtualservices     read and merge-patched
  networking.k8s.io ingresses             the user's Ingress is read; the canary Ingress is applied and deleted
*/}}
{{- define "modelpilot.rules" -}}
- apiGroups: ["modelpilot.io"]
  resources: ["modeldeployments"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["modelpilot.io"]
  resources: ["modeldeployments/status"]
  verbs: ["patch"]
- apiGroups: ["modelpilot.io"]
  resources: ["modeldeployments/finalizers"]
  verbs: ["update"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["create", "patch"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  verbs: ["get", "patch"]
- apiGroups: ["networking.istio.io"]
  resources: ["virtualservices"]
  verbs: ["get", "patch"]
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["get", "create", "patch", "delete"]
{{- end -}}

{{/* kopf's cluster-scoped reads: it watches CRDs (and, when namespaced, Namespaces) to follow cluster changes. */}}
{{- define "modelpilot.discoveryRules" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- if eq .Values.rbac.mode "namespaced" }}
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- end }}
{{- end -}}
