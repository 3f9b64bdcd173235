#!/usr/bin/env bash
# Installs the Debian packages that the server tests use, only those that are missing:
#   postgres  -> postgresql (server 15: /usr/lib/postgresql/15/bin/{initdb,pg_ctl,postgres})
#   rt        -> request-tracker5 rt5-db-sqlite rt5-standalone (Request Tracker 5.0.3, ~2.5 min)
#   chromium  -> chromium chromium-driver
# Usage (as root): scripts/install-system-deps.sh [postgres] [rt] [chromium]   (no argument: all three)
# Idempotent: a second run with everything present does nothing and asks no registry.
# `apt-get update` runs at most once, and only when a missing package has no install candidate.
# Exit status: 0 when every asked-for package is installed, 1 otherwise (the message names what is missing).
set -uo pipefail

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-y -qq -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

log() { echo "install-system-deps: $*" >&2; }

if [[ $(id -u) -ne 0 ]]; then
  log "must run as root (apt-get install)"; exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  log "apt-get not found: this script is for Debian (bookworm); install the packages by hand"; exit 1
fi

groups=("$@")
[[ ${#groups[@]} -eq 0 ]] && groups=(postgres rt chromium)

declare -A GROUP_PACKAGES=(
  [postgres]="postgresql"
  [rt]="request-tracker5 rt5-db-sqlite rt5-standalone"
  [chromium]="chromium chromium-driver"
)
# RT's Recommends (cron, rsyslog, w3m, S3 and Dropbox clients) are not needed to run rt-server.
declare -A GROUP_OPTS=(
  [postgres]="--no-install-recommends"
  [rt]="--no-install-recommends"
  [chromium]=""
)

installed() { [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]; }
has_candidate() {
  local c
  c=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')
  [[ -n $c && $c != "(none)" ]]
}

updated=0
apt_update_once() {
  [[ $updated -eq 1 ]] && return 0
  updated=1
  log "apt-get update"
  # A third-party source that is unreachable makes apt-get update exit non-zero; Debian's lists still refresh.
  apt-get update -qq >/dev/null 2>&1 || log "apt-get update reported errors (some sources unreachable?); continuing"
}

failed=()
for group in "${groups[@]}"; do
  if [[ -z ${GROUP_PACKAGES[$group]+x} ]]; then
    log "unknown group '$group' (known: ${!GROUP_PACKAGES[*]})"; failed+=("$group"); continue
  fi
  missing=()
  for pkg in ${GROUP_PACKAGES[$group]}; do
    installed "$pkg" || missing+=("$pkg")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    log "$group: already installed (${GROUP_PACKAGES[$group]})"; continue
  fi
  for pkg in "${missing[@]}"; do
    has_candidate "$pkg" || { apt_update_once; break; }
  done
  start=$SECONDS
  log "$group: installing ${missing[*]}"
  # shellcheck disable=SC2086
  if ! apt-get install "${APT_OPTS[@]}" ${GROUP_OPTS[$group]} "${missing[@]}" >/tmp/install-system-deps.$group.log 2>&1; then
    # A stale package list is the usual cause: refresh once and retry.
    if [[ $updated -eq 0 ]]; then
      apt_update_once
      # shellcheck disable=SC2086
      apt-get install "${APT_OPTS[@]}" ${GROUP_OPTS[$group]} "${missing[@]}" >/tmp/install-system-deps.$group.log 2>&1
    fi
  fi
  for pkg in "${missing[@]}"; do
    if installed "$pkg"; then continue; fi
    if has_candidate "$pkg"; then
      log "CANNOT INSTALL $pkg: apt-get failed, see /tmp/install-system-deps.$group.log"
    else
      log "CANNOT INSTALL $pkg: no such package in the configured apt sources"
    fi
    failed+=("$pkg")
  done
  log "$group: done in $((SECONDS - start)) s"
done

if [[ ${#failed[@]} -gt 0 ]]; then
  log "NOT INSTALLED: ${failed[*]} (tests that need them will be skipped or fail)"
  exit 1
fi
log "all present: ${groups[*]}"
