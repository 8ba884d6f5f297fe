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

"""Neutron's OVN metadata agent for one chassis of a switch that several
chassis share.

Run as ``python -m nova_docker_aio.ovn_metadata_runner --chassis NAME
--bridge BRIDGE <the agent's own arguments>``.  The agent learns its chassis
and integration bridge from the switch's ``external_ids:system-id`` and
``ovn-bridge``; on a switch shared by several clouds those are not any one
cloud's (each ovn-controller runs with ``-n`` and per-chassis keys), so these
two lookups answer with the cloud's own values.  A machine with one
ovn-controller, as in any real deployment, runs the agent unchanged.
"""

from __future__ import annotations

import argparse
import sys


def _parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="nova-docker-aio-ovn-metadata")
    parser.add_argument("--chassis", required=True)
    parser.add_argument("--bridge", required=True)
    return parser.parse_known_args(argv)


def main(argv: list[str] | None = None) -> None:
    args, agent_args = _parse(sys.argv[1:] if argv is None else argv)
    from neutron.agent.ovn.metadata import agent  # noqa: PLC0415
    from neutron.cmd.agents import ovn_metadata  # noqa: PLC0415

    agent.MetadataAgent._get_own_chassis_name = lambda _self: args.chassis
    agent.MetadataAgent._get_ovn_bridge = lambda _self: args.bridge
    sys.argv = [sys.argv[0], *agent_args]
    ovn_metadata.main()


if __name__ == "__main__":
    main()
