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

"""The pure part of rescue: which image it boots, what the rescue container
and the instance's container made again look like; and the error paths the
real engine cannot be made to take on demand."""

from __future__ import annotations

import io
import tarfile
import types

import pytest
from nova import exception as nova_exception
from nova import objects

from nova_docker import exception
from nova_docker import rescue
from nova_docker.engine import naming

UUID = "6f1c2a9e-3d4b-4c5a-8e7f-0a1b2c3d4e5f"
OWN_IMAGE = "1e0b7d2c-5a4f-4b3e-9c8d-7f6e5d4c3b2a"
BASE_IMAGE = "2f1c8e3d-6b5a-4c4f-8d9e-8a7f6e5d4c3b"
OTHER_IMAGE = "3a2d9f4e-7c6b-4d5a-9e0f-9b8a7f6e5d4c"
HOST = "compute-1"

objects.register_all()


def image_meta(image_id: str | None, **properties: str) -> objects.ImageMeta:
    found = {"properties": properties}
    if image_id:
        found["id"] = image_id
    return objects.ImageMeta.from_dict(found)


def instance(base: str | None = None) -> types.SimpleNamespace:
    system_metadata = {"image_base_image_ref": base} if base else {}
    return types.SimpleNamespace(
        uuid=UUID, image_ref=OWN_IMAGE, system_metadata=system_metadata
    )


def original() -> dict:
    labels = {naming.UUID_LABEL: UUID, naming.HOST_LABEL: HOST, "vendor": "x"}
    return {
        "Config": {
            "Hostname": "abc123",
            "ExposedPorts": {"80/tcp": {}},
            "Entrypoint": None,
            "Cmd": ["/srv/run"],
            "Env": ["A=1"],
            "User": "app",
            "Labels": labels,
        },
        "HostConfig": {
            "NetworkMode": "container:0123abcd",
            "Memory": 64 << 20,
            "Binds": [f"{naming.config_drive_volume(UUID)}:/seed:ro"],
        },
    }


@pytest.mark.parametrize(
    ("image_id", "base", "properties", "boots"),
    [
        (OWN_IMAGE, None, {}, False),
        # Nova's default for a server built from a snapshot.
        (BASE_IMAGE, BASE_IMAGE, {}, False),
        (OTHER_IMAGE, BASE_IMAGE, {}, True),
        (None, None, {}, False),
        # Stable device rescue: the image asks to be booted.
        (OWN_IMAGE, None, {"hw_rescue_device": "disk"}, True),
    ],
)
def test_only_an_image_asked_for_boots_instead_of_the_filesystem(
    image_id, base, properties, boots
):
    meta = image_meta(image_id, **properties)
    assert rescue.boots_rescue_image(meta, instance(base)) is boots


def test_labels_of_ours_the_image_hands_down_are_blanked():
    image_labels = {naming.UUID_LABEL: UUID, naming.HOST_LABEL: HOST, "vendor": "x"}
    wanted = naming.rescue_labels(UUID, HOST)
    assert rescue.labels_over(image_labels, wanted) == {
        naming.UUID_LABEL: "",
        naming.HOST_LABEL: "",
        **wanted,
    }
    assert rescue.labels_over(None, wanted) == wanted


def test_the_rescue_container_is_a_root_shell_in_the_instances_sandbox():
    body = rescue.rescue_body(original(), UUID, "img", {}, HOST, "tools")

    assert body["Entrypoint"][:2] == [rescue.BUSYBOX, "sh"]
    assert "exec /bin/sh" in body["Entrypoint"][-1]
    assert body["Cmd"] == []
    assert (body["User"], body["Tty"], body["OpenStdin"]) == ("0:0", True, True)
    host_config = body["HostConfig"]
    assert host_config["NetworkMode"] == f"container:{naming.sandbox_name(UUID)}"
    assert host_config["Memory"] == 64 << 20
    assert host_config["Binds"] == [
        *original()["HostConfig"]["Binds"],
        f"tools:{rescue.TOOLS_DIR}",
    ]
    assert body["Labels"][naming.RESCUE_OF_LABEL] == UUID


def test_without_busybox_the_rescue_shell_is_the_images_own():
    body = rescue.rescue_body(original(), UUID, "img", {}, HOST, None)
    assert body["Entrypoint"] == ["/bin/sh"]
    assert body["HostConfig"]["Binds"] == original()["HostConfig"]["Binds"]


def test_the_container_made_again_has_the_originals_settings():
    image_labels = {**naming.rescue_labels(UUID, HOST), naming.UUID_LABEL: ""}
    body = rescue.unrescued_body(original(), UUID, "kept", image_labels)

    assert body["Image"] == "kept"
    # Null would take the rescue shell the committed image declares.
    assert body["Entrypoint"] == []
    assert (body["Cmd"], body["Env"], body["User"]) == (["/srv/run"], ["A=1"], "app")
    assert "Hostname" not in body
    assert "ExposedPorts" not in body
    assert body["Labels"] == {
        **original()["Config"]["Labels"],
        naming.RESCUE_OF_LABEL: "",
        naming.RESCUE_HOST_LABEL: "",
    }
    assert body["HostConfig"]["NetworkMode"] == f"container:{naming.sandbox_name(UUID)}"
    assert body["HostConfig"]["Binds"] == original()["HostConfig"]["Binds"]


def test_the_tools_archive_holds_busybox_executable():
    with tarfile.open(fileobj=io.BytesIO(rescue.tools_archive(b"\x7fELF..."))) as tar:
        (member,) = tar.getmembers()
        assert (member.name, member.mode) == ("busybox", 0o755)
        assert tar.extractfile(member).read() == b"\x7fELF..."


def test_a_reason_is_never_empty_and_never_said_twice():
    server = instance()
    said = nova_exception.InstanceNotRescuable(instance_id=UUID, reason="why")
    assert rescue.not_rescuable(server, said) is said
    engine = exception.EngineError(action="commit", reason="disk full")
    assert "disk full" in rescue.not_rescuable(server, engine).format_message()
    assert rescue.not_rescuable(server, RuntimeError()).kwargs["reason"] == (
        "RuntimeError"
    )


class FakeEngine:
    """Answers as the engine does for a rescue shell that exits at once, or
    an exec that cannot run: a race and a fault a real engine cannot be made
    to produce on demand."""

    def __init__(self, exec_answer=None):
        self.exec_answer = exec_answer
        self.started = []

    def start(self, name):
        self.started.append(name)

    def inspect_container(self, name):
        return {"State": {"Running": False, "ExitCode": 3}}

    def logs(self, name, tail):
        yield b"sh: cannot open /dev/tty\n"

    def exec_run(self, name, argv, environment):
        if isinstance(self.exec_answer, Exception):
            raise self.exec_answer
        return self.exec_answer


def rescues(engine: FakeEngine) -> rescue.Rescues:
    return rescue.Rescues(engine, None, None, HOST, 1, bytes, None, None)


def test_a_rescue_shell_that_exits_at_once_fails_with_its_words():
    engine = FakeEngine()
    with pytest.raises(nova_exception.InstanceNotRescuable) as raised:
        rescues(engine)._start(instance())
    assert engine.started == [naming.rescue_name(UUID)]
    message = raised.value.format_message()
    assert "status 3" in message
    assert "cannot open /dev/tty" in message


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ((127, b""), "no chpasswd"),
        ((1, b"chpasswd: bad line"), "chpasswd: bad line"),
        (exception.EngineError(action="exec", reason="gone"), "gone"),
    ],
)
def test_a_rescue_password_not_applied_is_logged(caplog, answer, said):
    rescues(FakeEngine(answer))._set_password(instance(), "pw")
    assert "rescue password was not applied" in caplog.text
    assert said in caplog.text


def test_no_rescue_password_runs_nothing():
    engine = FakeEngine(exec_answer=AssertionError("ran"))
    rescues(engine)._set_password(instance(), None)
