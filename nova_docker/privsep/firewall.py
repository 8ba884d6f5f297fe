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

"""A scoped FORWARD accept for frames switched inside a hybrid-plug bridge.

With ``bridge-nf-call-iptables=1`` frames bridged between a container's
``tap`` and ``qvb`` traverse the FORWARD chain, whose policy Docker sets to
DROP.  The rule matches only frames entering *and* leaving one ``qbr``
bridge and is appended, so any security-group chains Neutron's iptables
firewall puts in FORWARD still decide first.

iptables is run as a fixed argument list: no Python library drives the
nf_tables backend, and rules written by raw netlink would be unreadable to
the ``iptables`` Docker itself runs.
"""

from __future__ import annotations

import subprocess

import nova_docker.privsep

_CHAIN = "FORWARD"
_BINARIES = ("iptables", "ip6tables")
#: Comment prefix on every rule we add, so humans and cleanup can find them.
COMMENT = "nova-docker"


def _rule(bridge: str) -> list[str]:
    return [
        "-i",
        bridge,
        "-o",
        bridge,
        "-m",
        "comment",
        "--comment",
        f"{COMMENT} {bridge}",
        "-j",
        "ACCEPT",
    ]


def _iptables(binary: str, op: str, bridge: str, check: bool = False) -> int:
    """Run one rule operation; ``-C`` answers through the return code."""
    argv = [binary, "-w", op, _CHAIN, *_rule(bridge)]
    return subprocess.run(argv, capture_output=True, check=check).returncode


def _check(bridge: str) -> None:
    # Only os-vif's per-VIF bridges: never open forwarding on docker0 & co.
    if not bridge.startswith("qbr"):
        raise ValueError(f"{bridge} is not a hybrid-plug bridge")


def _allow_bridged_inner(bridge: str) -> None:
    _check(bridge)
    for binary in _BINARIES:
        if _iptables(binary, "-C", bridge) != 0:
            _iptables(binary, "-A", bridge, check=True)


@nova_docker.privsep.nova_docker_privileged.entrypoint
def allow_bridged(bridge: str) -> None:
    """Accept frames bridged within ``bridge``; idempotent."""
    _allow_bridged_inner(bridge)


def _revoke_bridged_inner(bridge: str) -> None:
    _check(bridge)
    for binary in _BINARIES:
        while _iptables(binary, "-C", bridge) == 0:
            _iptables(binary, "-D", bridge, check=True)


@nova_docker.privsep.nova_docker_privileged.entrypoint
def revoke_bridged(bridge: str) -> None:
    """Remove every accept rule of ``bridge``; absent rules are fine."""
    _revoke_bridged_inner(bridge)
