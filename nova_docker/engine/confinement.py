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

"""Which confinement the engine really gives instances (pure).

What holds depends on the host, not on us: the engine applies its AppArmor
profile only where the kernel has AppArmor loaded, SELinux labels only when
it runs with ``selinux-enabled``, and seccomp only when it was built with it.
The engine's ``/info`` says which of them it uses (``SecurityOptions``, such
as ``name=seccomp,profile=default``); ``[docker] security_opt`` may turn
seccomp or AppArmor off for every container.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

UNCONFINED = "unconfined"


@dataclasses.dataclass(frozen=True)
class Confinement:
    #: The seccomp profile in force, or None for no seccomp filter.
    seccomp: str | None
    #: The AppArmor profile in force, or None where AppArmor does not apply.
    apparmor: str | None
    selinux: bool
    userns_remap: bool
    rootless: bool
    cgroupns: bool
    #: Privileged containers get none of the above.
    privileged_allowed: bool

    def summary(self) -> str:
        """One line of ``key=value`` facts, for the start-up log."""
        facts = {
            "seccomp": self.seccomp or "off",
            "no-new-privileges": "on",
            "apparmor": self.apparmor or "off",
            "selinux": _on(self.selinux),
            "userns-remap": _on(self.userns_remap),
            "rootless-engine": _on(self.rootless),
            "cgroupns": _on(self.cgroupns),
            "privileged-flavors": "allowed" if self.privileged_allowed else "refused",
        }
        return ", ".join(f"{key}={value}" for key, value in facts.items())

    def warnings(self) -> list[str]:
        """What an operator should hear about louder than the summary."""
        if self.seccomp is None:
            return [
                "containers run without a seccomp filter: the engine applies "
                "none, or [docker] security_opt turns it off"
            ]
        return []


def from_info(
    info: Mapping[str, Any],
    security_opt: Iterable[str] = (),
    privileged_allowed: bool = False,
) -> Confinement:
    """The confinement of an unprivileged instance, from the engine's
    ``/info`` answer and the ``[docker] security_opt`` every container gets."""
    engine = parse_security_options(info.get("SecurityOptions") or ())
    ours = _requested(security_opt)
    seccomp = None
    if "seccomp" in engine:
        seccomp = engine["seccomp"].get("profile") or "default"
    apparmor = "docker-default" if "apparmor" in engine else None
    return Confinement(
        # Any seccomp value but "unconfined" is a profile's JSON text.
        seccomp=_override(seccomp, ours.get("seccomp"), "custom"),
        apparmor=_override(apparmor, ours.get("apparmor")),
        selinux="selinux" in engine and ours.get("label") != "disable",
        userns_remap="userns" in engine,
        rootless="rootless" in engine,
        cgroupns="cgroupns" in engine,
        privileged_allowed=privileged_allowed,
    )


def parse_security_options(entries: Iterable[str]) -> dict[str, dict[str, str]]:
    """``["name=seccomp,profile=default", "name=apparmor"]`` →
    ``{"seccomp": {"profile": "default"}, "apparmor": {}}``.

    Engines before API 1.26 list bare names (``seccomp``); those are read too.
    """
    parsed: dict[str, dict[str, str]] = {}
    for entry in entries:
        fields = dict(
            field.split("=", 1) if "=" in field else ("name", field)
            for field in entry.split(",")
        )
        name = fields.pop("name", "")
        if name:
            parsed[name] = fields
    return parsed


def _requested(security_opt: Iterable[str]) -> dict[str, str]:
    """``seccomp=unconfined`` → ``{"seccomp": "unconfined"}`` (the old
    ``seccomp:unconfined`` form too).  Of several SELinux ``label`` options
    only ``disable`` matters here, so it wins."""
    found: dict[str, str] = {}
    for option in security_opt:
        key, sep, value = option.partition("=")
        if not sep:
            key, _sep, value = option.partition(":")
        key, value = key.strip(), value.strip()
        if key != "label" or found.get(key) != "disable":
            found[key] = value
    return found


def _override(
    profile: str | None, requested: str | None, named: str | None = None
) -> str | None:
    """The profile in force: the engine's, unless ``security_opt`` asks for
    another (which applies only where the engine has the feature at all)."""
    if profile is None or profile == UNCONFINED:
        return None
    if requested is None:
        return profile
    if requested == UNCONFINED:
        return None
    return named or requested


def _on(flag: bool) -> str:
    return "on" if flag else "off"
