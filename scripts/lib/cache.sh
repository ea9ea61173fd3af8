# shellcheck shell=bash disable=SC2034,SC2154  # sourced: the caller sets $cache and reads $cache_root, $work
# Sourced by the scripts/build-*.sh scripts: one cache directory per build, keyed by a hash of what it is built from,
# built at most once at a time (concurrent test sessions and compatibility runs wait for it and reuse it), complete
# only when its `complete` file exists. The caller sets $cache (the directory) and defines log() first:
#
#   cache_begin "promtool" "promtool"     # prints $cache and exits 0 when it is built; else takes the lock
#                                         # .<lock>.lock, checks again, and gives an empty $work ("$cache.partial")
#   ... build into "$work" ...
#   cache_finish "promtool-*"             # $work becomes $cache; older builds matching the glob are removed; done
#
# The callers' cache keys include this file.

cache_root="${PVC_RESTORE_CACHE:-$HOME/.cache/pvc-restore}"

cache_hit() {
  if [ -f "$cache/complete" ]; then
    echo "$cache"
    exit 0
  fi
}

cache_begin() {  # $1 = what is built (for messages), $2 = the lock's name
  cache_hit
  command -v go >/dev/null || { echo "go is required (Go >= 1.26) to build $1" >&2; exit 1; }
  mkdir -p "$(dirname "$cache")"
  exec 9>"$(dirname "$cache")/.$2.lock"
  if ! flock -n 9; then
    log "waiting for another build of $1 to finish"
    flock 9
  fi
  cache_hit
  started=$(date +%s)
  work="$cache.partial"
  rm -rf "$work"
  mkdir -p "$work"
}

cache_finish() {  # $1 = a glob of the builds this one supersedes (in the same directory)
  rm -rf "$cache"
  mv "$work" "$cache"
  local old
  for old in "$(dirname "$cache")"/$1; do
    case "$old" in
      "$cache" | *.partial) ;;
      *) [ -d "$old" ] && rm -rf "$old" ;;
    esac
  done
  echo "built in $(( $(date +%s) - started ))s" > "$cache/complete"
  log "done in $(( $(date +%s) - started ))s: $cache"
}
