module github.com/benfiola/pvc-restore/tools/prometheus-operator

go 1.26.0

// Only its CRDs are used (example/prometheus-operator-crd/): scripts/build-promtool.sh copies the PrometheusRule and
// ServiceMonitor CRDs, against which the tests validate the chart's monitoring objects. Nothing is built.
require github.com/prometheus-operator/prometheus-operator v0.85.0
