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

"""The ``_inner`` bodies of the firewall entrypoints, with iptables mocked."""

from __future__ import annotations

import subprocess
from unittest import mock

import pytest

from nova_docker.privsep import firewall


def test_forward_rule_is_added_once_per_family():
    with mock.patch.object(firewall.subprocess, "run") as run:
        run.return_value = subprocess.CompletedProcess([], 1)
        firewall._allow_bridged_inner("qbr1")

    ops = [c.args[0][2] for c in run.call_args_list]
    assert ops == ["-C", "-A", "-C", "-A"]
    assert run.call_args_list[0].args[0][:4] == ["iptables", "-w", "-C", "FORWARD"]
    assert "nova-docker qbr1" in run.call_args_list[0].args[0]


def test_present_forward_rule_is_not_duplicated():
    with mock.patch.object(firewall.subprocess, "run") as run:
        run.return_value = subprocess.CompletedProcess([], 0)
        firewall._allow_bridged_inner("qbr1")

    assert [c.args[0][2] for c in run.call_args_list] == ["-C", "-C"]


def test_revoke_deletes_every_copy_and_tolerates_none():
    codes = iter([0, 0, 1, 1])  # iptables: twice present; ip6tables: absent
    with mock.patch.object(firewall.subprocess, "run") as run:
        run.side_effect = lambda argv, **kw: subprocess.CompletedProcess(
            argv, 0 if argv[2] == "-D" else next(codes)
        )
        firewall._revoke_bridged_inner("qbr1")

    ops = [c.args[0][2] for c in run.call_args_list]
    assert ops == ["-C", "-D", "-C", "-D", "-C", "-C"]


def test_forwarding_opens_only_for_hybrid_plug_bridges():
    with mock.patch.object(firewall.subprocess, "run") as run:
        with pytest.raises(ValueError, match="docker0"):
            firewall._allow_bridged_inner("docker0")
        with pytest.raises(ValueError, match="br-ex"):
            firewall._revoke_bridged_inner("br-ex")

    run.assert_not_called()
