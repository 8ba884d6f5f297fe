#!/usr/bin/env bash
# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

# Make sure a Docker Engine answers on this machine, installing Debian's
# docker.io and starting dockerd by hand when needed (these hosts may have no
# systemd).  Also installs the few host packages the tests and demo build
# their images from.  Idempotent: does nothing when all is in place.
set -euo pipefail

log() { printf 'ensure-engine: %s\n' "$*" >&2; }

need_root() {
    if [ "$(id -u)" != 0 ]; then
        log "$1 needs root; run as root or install it yourself"
        exit 1
    fi
}

apt_install() {
    need_root "installing $*"
    if [ -z "${_APT_UPDATED:-}" ]; then
        apt-get update -qq
        _APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q static \
    || missing+=(busybox-static)
command -v file >/dev/null || missing+=(file)
# The network functional tests start their own ovs-vswitchd (netdev datapath).
command -v ovs-vswitchd >/dev/null || missing+=(openvswitch-switch)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
# The root-disk tests give a private engine a data root on XFS (overlay2's
# quotas) and on btrfs, made in a loop-mounted file.
command -v mkfs.xfs >/dev/null || missing+=(xfsprogs)
command -v mkfs.btrfs >/dev/null || missing+=(btrfs-progs)
# The dashboard's end-to-end test drives a real browser.
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt_install "${missing[@]}"
fi

if docker info >/dev/null 2>&1; then
    exit 0
fi

need_root "starting dockerd"
logdir=/var/log/nova-docker
mkdir -p "$logdir"
log "no engine answers; starting dockerd (log: $logdir/dockerd.log)"
# setsid: the daemon must outlive this script and the make that ran it.
# --live-restore, as doc/deployment.md recommends: instances (and their
# network sandboxes) keep running while dockerd restarts.
setsid dockerd --live-restore >>"$logdir/dockerd.log" 2>&1 < /dev/null &
for _ in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then
        log "dockerd is up (pid $(cat /var/run/docker.pid 2>/dev/null || echo '?'))"
        exit 0
    fi
    sleep 0.5
done
log "dockerd did not answer within 30s; see $logdir/dockerd.log"
tail -n 20 "$logdir/dockerd.log" >&2 || true
exit 1
