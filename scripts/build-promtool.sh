#!/usr/bin/env bash
# Builds Prometheus' promtool, which the tests use to check the chart's alerting rules (`promtool check rules`,
# `promtool test rules`) and the controller's /metrics (`promtool check metrics`), and caches it outside the
# repository.
#
#   promtool  (github.com/prometheus/prometheus/cmd/promtool, built with `go` and the remove_all_sd tag: the
#             service-discovery plugins, which only `promtool check config` and `promtool sd` need, are left out;
#             that halves the build)
#   crds/     the Prometheus operator's PrometheusRule and ServiceMonitor CRDs, copied from the
#             github.com/prometheus-operator/prometheus-operator Go module: the tests validate the chart's monitoring
#             objects against them on the API server
#
# The pins live in tools/promtool/go.mod (Prometheus 3.x is tagged as Go module versions v0.3XX.Y: v0.316.0 is
# Prometheus 3.16.0) and tools/prometheus-operator/go.mod. The cache directory is keyed by a hash of those modules and
# of this script, so a changed pin rebuilds and an unchanged one is free. Prints the cache directory on stdout (the binary is bin/promtool in it);
# progress goes to stderr.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$repo/tools/promtool"
operator="$repo/tools/prometheus-operator"

version=$(sed -nE 's/^[[:space:]]*github\.com\/prometheus\/prometheus (v[0-9.]+).*/\1/p' "$tools/go.mod" | head -n1)
[ -n "$version" ] || { echo "tools/promtool/go.mod does not pin github.com/prometheus/prometheus" >&2; exit 1; }
# shellcheck source=scripts/lib/cache.sh
. "$repo/scripts/lib/cache.sh"
key=$( (cat "$tools/go.mod" "$tools/go.sum" "$operator/go.mod" "$operator/go.sum" "$0" "$repo/scripts/lib/cache.sh") \
  | sha256sum | cut -c1-12)
cache="$cache_root/promtool-$version-$key"
log() { printf '[build-promtool] %s\n' "$*" >&2; }

cache_begin promtool promtool
mkdir -p "$work/bin" "$work/crds"

# Prometheus 3.x's version string: v0.316.0 -> 3.16.0.
minor_patch=${version#v0.3}
prometheus_version="3.$((10#${minor_patch%%.*})).${minor_patch#*.}"
log "building promtool $prometheus_version ($version; a cold build takes a few minutes on 2 cores)"
(cd "$tools" && nice go build -trimpath -tags remove_all_sd \
  -ldflags "-s -w -X github.com/prometheus/common/version.Version=$prometheus_version" \
  -o "$work/bin/promtool" github.com/prometheus/prometheus/cmd/promtool)
"$work/bin/promtool" --version >&2

log "copying the Prometheus operator's PrometheusRule and ServiceMonitor CRDs"
operator_dir=$(cd "$operator" && go mod download -json github.com/prometheus-operator/prometheus-operator \
  | sed -nE 's/^[[:space:]]*"Dir": "(.*)",?$/\1/p')
[ -d "$operator_dir/example/prometheus-operator-crd" ] \
  || { echo "no example/prometheus-operator-crd in the prometheus-operator module ($operator_dir)" >&2; exit 1; }
cp "$operator_dir"/example/prometheus-operator-crd/monitoring.coreos.com_{prometheusrules,servicemonitors}.yaml \
  "$work/crds/"
chmod u+w "$work"/crds/*.yaml

echo "$version" > "$work/version"
cache_finish 'promtool-*'  # builds of other pins are superseded
echo "$cache"
