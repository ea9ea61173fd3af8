{{- define "pvc-restore.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "pvc-restore.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "pvc-restore.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "pvc-restore.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "pvc-restore.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- /*
Leader election: "true" unless config.leaderElection is false. Only the holder of the Lease in the release namespace
acts, so the old and the new pod of a rolling update or a node drain never act together. false is refused with more
than one replica (they would all act on the same restores); with one replica the Deployment then recreates (the old
pod is gone before the new one starts on an upgrade; a pod evicted or deleted is still replaced at once).
*/ -}}
{{- define "pvc-restore.leaderElection" -}}
{{- if and (kindIs "bool" .Values.config.leaderElection) (not .Values.config.leaderElection) -}}
{{- if gt (int .Values.deployment.replicas) 1 -}}
{{- fail (printf "config.leaderElection: false with deployment.replicas: %d would let %d controllers act on the same restores at once: leave config.leaderElection unset (leader election on) or set deployment.replicas to 1" (int .Values.deployment.replicas) (int .Values.deployment.replicas)) -}}
{{- end -}}
false
{{- else -}}
true
{{- end -}}
{{- end -}}

{{- /*
The controller's RBAC rules: exactly the verbs it uses (see controller/ and kubectl_pvc_restore/plan.py, stops.py).
The one copy, rendered into the ClusterRole (all namespaces) or into a Role per rbac.namespaces entry.
*/ -}}
{{- define "pvc-restore.rules" -}}
# PVCRestores: list every poll, new ones noticed between polls (watch, bounded by the poll interval); create from the
# annotation; finalizer (PATCH) writes; history pruning.
- apiGroups: [pvc-restore.homelab-helper.benfiola.com]
  resources: [pvcrestores]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [pvc-restore.homelab-helper.benfiola.com]
  resources: [pvcrestores/status]
  verbs: [update]
# PVCs: a metadata list now and then, their changes followed between polls (watch, bounded by the poll interval);
# read one; the annotation claim and clear.
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [get, list, watch, patch]
# Pods that mount the PVC (bare ones are deleted only when a restore allows it), and volsync's mover pods; a restore
# waiting for them to stop follows their deletion until the next poll (watch).
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch, get, delete]
# The log of a failed mover pod: its tail goes into status.error, its head shows whether the restore began.
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
# Lock ConfigMaps (patch: the held workloads and guard switch written into the lock, controller/guard.py).
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, create, patch, delete]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
# Walking ownerReferences, and scaling through /scale.
- apiGroups: [apps]
  resources: [deployments, replicasets]
  verbs: [get]
# StatefulSets: also their PVC retention policy (whenScaled: Delete -> Retain for the restore, then back).
- apiGroups: [apps]
  resources: [statefulsets]
  verbs: [get, patch]
# DaemonSets: stopped by a nodeSelector, then given back their own.
- apiGroups: [apps]
  resources: [daemonsets]
  verbs: [get, patch]
- apiGroups: [apps]
  resources: [deployments/scale, statefulsets/scale, replicasets/scale]
  verbs: [get, patch]
- apiGroups: [""]
  resources: [replicationcontrollers]
  verbs: [get]
- apiGroups: [""]
  resources: [replicationcontrollers/scale]
  verbs: [get, patch]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get]
# CronJobs that mount the PVC: suspended, then resumed.
- apiGroups: [batch]
  resources: [cronjobs]
  verbs: [list, get, patch]
{{ include "pvc-restore.gitopsRules" . }}
# Autoscalers of the stopped workloads (absent CRDs are fine).
- apiGroups: [keda.sh]
  resources: [scaledobjects]
  verbs: [list, get, patch]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [list]
{{- range .Values.rbac.extraScaleTargets }}
- apiGroups: [{{ .apiGroup | quote }}]
  resources: [{{ .resource | quote }}]
  verbs: [get]
- apiGroups: [{{ .apiGroup | quote }}]
  resources: [{{ printf "%s/scale" .resource | quote }}]
  verbs: [get, patch]
{{- end }}
# volsync: find and pause the source; create, read and delete the destination, and the safety backup's own source.
- apiGroups: [volsync.backube]
  resources: [replicationsources]
  verbs: [get, list, patch, create, delete]
- apiGroups: [volsync.backube]
  resources: [replicationdestinations]
  verbs: [get, watch, create, delete]
{{- end -}}

{{- /*
GitOps owners of the stopped workloads: suspended (Flux) or automated sync turned off (Argo CD), then put back. They
may live outside the restore's namespace (flux-system, argocd), so with rbac.namespaces these rules are also granted
in rbac.gitopsNamespaces. Absent CRDs are fine.
*/ -}}
{{- define "pvc-restore.gitopsRules" -}}
# GitOps owners of the stopped workloads (absent CRDs are fine).
- apiGroups: [kustomize.toolkit.fluxcd.io]
  resources: [kustomizations]
  verbs: [get, patch]
- apiGroups: [helm.toolkit.fluxcd.io]
  resources: [helmreleases]
  verbs: [get, patch]
- apiGroups: [argoproj.io]
  resources: [applications]
  verbs: [get, patch]
{{- end -}}

{{- /*
The controller's namespaces, comma-separated for WATCH_NAMESPACE ("" = all). rbac.namespaces decides when set;
config.watchNamespace may then only repeat it (in any order), otherwise the render fails.
*/ -}}
{{- define "pvc-restore.watchNamespace" -}}
{{- $watch := list -}}
{{- range splitList "," .Values.config.watchNamespace -}}
{{- if trim . -}}{{- $watch = append $watch (trim .) -}}{{- end -}}
{{- end -}}
{{- if .Values.rbac.namespaces -}}
{{- $granted := .Values.rbac.namespaces | uniq -}}
{{- if and $watch (ne (join "," ($watch | uniq | sortAlpha)) (join "," ($granted | sortAlpha))) -}}
{{- fail (printf "config.watchNamespace (%s) disagrees with rbac.namespaces (%s): with rbac.namespaces the controller watches exactly those namespaces; leave config.watchNamespace empty or set it to the same list" (join "," $watch) (join "," $granted)) -}}
{{- end -}}
{{- join "," $granted -}}
{{- else -}}
{{- join "," $watch -}}
{{- end -}}
{{- end -}}

{{- /* rbac.extraScaleTargets as the controller's --extra-scale-kind list: group/version/Kind,... */ -}}
{{- define "pvc-restore.extraScaleKinds" -}}
{{- $kinds := list -}}
{{- range .Values.rbac.extraScaleTargets -}}
{{- $kinds = append $kinds (printf "%s/%s/%s" .apiGroup .version .kind) -}}
{{- end -}}
{{- join "," $kinds -}}
{{- end -}}

{{- /*
Which series are this release's controller, in the alerting rules and the dashboard's default: the ServiceMonitor's
(job = the metrics Service's name, namespace = the release's), or metrics.prometheusRule.selector.
*/ -}}
{{- define "pvc-restore.metricsSelector" -}}
{{- .Values.metrics.prometheusRule.selector | default (printf "job=%q, namespace=%q" (printf "%s-metrics" (include "pvc-restore.fullname" .)) .Release.Namespace) -}}
{{- end -}}

{{- /*
A duration as the controller and Prometheus write it (30s, 5m, 6h, 2d, 1h30m; or plain seconds) in seconds, for a
PromQL comparison. Called with (list "its value's name" value); anything else fails the render, naming the value.
*/ -}}
{{- define "pvc-restore.seconds" -}}
{{- $name := index . 0 -}}
{{- $value := toString (index . 1) -}}
{{- $units := dict "s" 1 "m" 60 "h" 3600 "d" 86400 -}}
{{- if regexMatch "^[0-9]+$" $value -}}
{{- $value -}}
{{- else if regexMatch "^([0-9]+[smhd])+$" $value -}}
{{- $total := 0 -}}
{{- range $part := regexFindAll "[0-9]+[smhd]" $value -1 -}}
{{- $number := regexFind "^[0-9]+" $part -}}
{{- $total = add $total (mul (atoi $number) (get $units (trimPrefix $number $part))) -}}
{{- end -}}
{{- $total -}}
{{- else -}}
{{- fail (printf "metrics.prometheusRule.%s: %q is not a duration such as 30m, 6h, 2d or 1h30m" $name $value) -}}
{{- end -}}
{{- end -}}
