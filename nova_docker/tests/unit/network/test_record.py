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

"""The on-disk record of the ports this host plugged for each instance."""

from __future__ import annotations

from nova_docker.network import record

UUID = "6f1b7c1e-0d7e-4c83-9d57-4a8f7b0a0b11"


def test_ports_of_an_unknown_instance_are_none(tmp_path) -> None:
    assert record.PortRecord(str(tmp_path)).ports(UUID) == {}


def test_added_ports_are_kept_with_their_kind(tmp_path) -> None:
    ports = record.PortRecord(str(tmp_path))
    ports.add(UUID, "p1", record.OVS)
    ports.add(UUID, "p2", record.HYBRID)
    assert record.PortRecord(str(tmp_path)).ports(UUID) == {
        "p1": record.OVS,
        "p2": record.HYBRID,
    }


def test_removing_a_port_keeps_the_others(tmp_path) -> None:
    ports = record.PortRecord(str(tmp_path))
    ports.add(UUID, "p1", record.OVS)
    ports.add(UUID, "p2", record.OVS)
    ports.remove(UUID, "p1")
    ports.remove(UUID, "never-plugged")
    assert ports.ports(UUID) == {"p2": record.OVS}


def test_forget_removes_the_record_and_its_empty_directory(tmp_path) -> None:
    ports = record.PortRecord(str(tmp_path))
    ports.add(UUID, "p1", record.OVS)
    ports.forget(UUID)
    ports.forget(UUID)
    assert not (tmp_path / UUID).exists()


def test_forget_leaves_other_files_of_the_instance_directory(tmp_path) -> None:
    ports = record.PortRecord(str(tmp_path))
    ports.add(UUID, "p1", record.OVS)
    (tmp_path / UUID / "console.log").write_text("someone else's")
    ports.forget(UUID)
    assert ports.ports(UUID) == {}
    assert (tmp_path / UUID / "console.log").exists()


def test_an_unwritable_record_is_logged_not_raised(tmp_path) -> None:
    (tmp_path / "file").write_text("")
    ports = record.PortRecord(str(tmp_path / "file"))
    ports.add(UUID, "p1", record.OVS)
    ports.remove(UUID, "p1")
    ports.forget(UUID)
    assert ports.ports(UUID) == {}


def test_a_corrupt_record_reads_as_empty(tmp_path) -> None:
    (tmp_path / UUID).mkdir()
    (tmp_path / UUID / "docker-ports.json").write_text("{not json")
    assert record.PortRecord(str(tmp_path)).ports(UUID) == {}
