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

"""The one seam between nova-docker and the Docker Engine.

This is the only module that imports ``docker``.  Every call goes through
:meth:`Engine._call`, which turns the SDK's and ``requests``' exceptions into
ours: an engine that does not answer becomes :class:`EngineUnavailable`, a 404
becomes the "missing" exception the caller names, anything else the engine
refuses becomes :class:`EngineError` carrying the engine's own words.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any

import docker
import docker.errors
import docker.tls
import requests
import requests.exceptions
import urllib3.exceptions
from oslo_log import log as logging

from nova_docker import exception
from nova_docker.engine import naming
from nova_docker.engine import spec as spec_mod

#: The engine's answer to a create whose name is taken.
CONFLICT = 409
#: Unanswered TCP keepalive probes before the kernel gives a connection up.
KEEPALIVE_PROBES = 5
LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class EngineSettings:
    """How to reach the engine; built from ``[docker]`` by the driver."""

    url: str
    version: str = "auto"
    timeout: int = 60
    #: Read timeout for image loads and saves, which may legitimately take
    #: minutes for the engine to answer after the last byte.
    transfer_timeout: int = 900
    tls_ca_cert: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_verify: bool = True
    min_version: str = "1.41"
    #: Silent seconds before a TCP event stream is probed (keepalive).
    events_keepalive: int = 30

    @property
    def uses_tls(self) -> bool:
        # tcp:// always means TLS; plain HTTP must be asked for as http://.
        return self.url.startswith(("tcp://", "https://"))


@dataclasses.dataclass
class ExecStream:
    """An exec's terminal: ``sock`` carries its raw bytes both ways."""

    sock: socket.socket
    #: What the SDK returned; it holds the HTTP response that owns ``sock``.
    handle: Any

    def close(self) -> None:
        for part in (self.sock, self.handle):
            with contextlib.suppress(OSError):
                part.close()


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


class Engine:
    """Thin verbs over the Engine API; no I/O until :meth:`connect`."""

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings
        self._api: docker.APIClient | None = None
        self._bulk_api: docker.APIClient | None = None

    # -- connection -------------------------------------------------------

    def connect(self) -> dict[str, Any]:
        """Open the connection, negotiate the API version and check it.

        Returns the engine's ``/version`` answer.
        """
        s = self.settings
        pinned = s.version != "auto"
        with self._call("connect"):
            # Never "auto" for the SDK: it would ask the engine from its
            # constructor, before trust_env can be turned off.
            probe = self._new_client(s.version if pinned else s.min_version, s.timeout)
            version = probe.version(api_version=False)
        negotiated = s.version if pinned else str(version.get("ApiVersion", "0"))
        if _version_tuple(negotiated) < _version_tuple(s.min_version):
            raise exception.EngineTooOld(
                url=s.url, version=negotiated, minimum=s.min_version
            )
        self._api = probe if pinned else self._new_client(negotiated, s.timeout)
        self._bulk_api = self._new_client(negotiated, s.transfer_timeout)
        return version

    def _new_client(self, version: str, timeout: int) -> docker.APIClient:
        api = docker.APIClient(
            base_url=self.settings.url,
            version=version,
            timeout=timeout,
            tls=self._tls_config(),
        )
        # Otherwise requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE replace
        # tls_ca_cert (and defeat tls_verify=False), and sends engine traffic
        # through HTTP(S)_PROXY.
        api.trust_env = False
        return api

    def _tls_config(self) -> docker.tls.TLSConfig | bool:
        s = self.settings
        if not s.uses_tls:
            return False
        client_cert = (s.tls_cert, s.tls_key) if s.tls_cert or s.tls_key else None
        return docker.tls.TLSConfig(
            client_cert=client_cert, ca_cert=s.tls_ca_cert, verify=s.tls_verify
        )

    @property
    def api_version(self) -> str:
        """The Engine API version this client speaks (after :meth:`connect`)."""
        return self.api.api_version

    @property
    def api(self) -> docker.APIClient:
        if self._api is None:
            self.connect()
        return self._api

    @property
    def bulk_api(self) -> docker.APIClient:
        if self._bulk_api is None:
            self.connect()
        return self._bulk_api

    @contextlib.contextmanager
    def _call(
        self, action: str, missing: Exception | None = None, names: bool = False
    ) -> Iterator[None]:
        """Translate whatever the SDK raises while doing ``action``; with
        ``names``, a conflict is a container name in use."""
        try:
            yield
        except docker.errors.NotFound as e:
            if missing is None:
                raise exception.EngineError(action=action, reason=_reason(e)) from e
            raise missing from e
        except docker.errors.APIError as e:
            if names and _status(e) == CONFLICT:
                raise exception.ContainerNameInUse(
                    action=action, reason=_reason(e)
                ) from e
            if e.response is not None and e.response.status_code >= 500:
                LOG.debug("Engine error during %s: %s", action, e)
            raise exception.EngineError(action=action, reason=_reason(e)) from e
        except (
            requests.exceptions.ConnectionError,
            requests.exceptions.Timeout,
            # A streamed body (save, logs) that breaks off midway.
            requests.exceptions.ChunkedEncodingError,
            docker.errors.DockerException,
        ) as e:
            raise exception.EngineUnavailable(
                url=self.settings.url, reason=_reason(e)
            ) from e

    # -- engine facts -----------------------------------------------------

    def ping(self) -> bool:
        with self._call("ping"):
            return bool(self.api.ping())

    def info(self) -> dict[str, Any]:
        with self._call("read its system info"):
            return self.api.info()

    # -- containers -------------------------------------------------------

    def create_container(
        self,
        spec: spec_mod.ContainerSpec | spec_mod.SandboxSpec | spec_mod.VolumeLoaderSpec,
    ) -> str:
        # 404 is the image; a name in use is 409.
        missing = exception.ImageNotCached(ref=spec.image)
        with self._call(f"create container {spec.name}", missing, names=True):
            host_config = self.api.create_host_config(**spec.host_config_kwargs())
            host_config.update(spec.host_config_extra())
            created = self.api.create_container(
                host_config=host_config, **spec.create_kwargs()
            )
        return created["Id"]

    def create_like(self, name: str, body: Mapping[str, Any]) -> str:
        """Create ``name`` from a whole create body (``Config`` fields with
        a ``HostConfig``, in inspect's shape): a container made again with
        the settings another one has, rather than from a spec."""
        # A 404 may be the image or the container whose namespace it joins:
        # the engine's own words say which.
        with self._call(f"create container {name}"):
            return self.api.create_container_from_config(dict(body), name)["Id"]

    def rename(self, name: str, new_name: str) -> None:
        with self._call(f"rename {name}", exception.ContainerNotFound(name=name)):
            self.api.rename(name, new_name)

    def inspect_container(self, name: str) -> dict[str, Any]:
        with self._call(
            f"inspect container {name}", exception.ContainerNotFound(name=name)
        ):
            return self.api.inspect_container(name)

    def list_containers(
        self, labels: dict[str, str], sizes: bool = False
    ) -> list[dict[str, Any]]:
        """All containers, running or not, carrying every one of ``labels``.

        With ``sizes``, each carries ``SizeRw``, the bytes of its writable
        layer; the engine then walks every such layer's files before it
        answers, so the wait is the long one of transfers.
        """
        selectors = naming.label_filters(labels)
        api = self.bulk_api if sizes else self.api
        with self._call("list containers"):
            return api.containers(all=True, size=sizes, filters={"label": selectors})

    def start(self, name: str) -> None:
        with self._call(f"start {name}", exception.ContainerNotFound(name=name)):
            self.api.start(name)

    def stop(self, name: str, timeout: int) -> None:
        # The SDK extends the request's timeout by ``timeout`` itself.
        with self._call(f"stop {name}", exception.ContainerNotFound(name=name)):
            self.api.stop(name, timeout=timeout)

    def pause(self, name: str) -> None:
        with self._call(f"pause {name}", exception.ContainerNotFound(name=name)):
            self.api.pause(name)

    def unpause(self, name: str) -> None:
        with self._call(f"unpause {name}", exception.ContainerNotFound(name=name)):
            self.api.unpause(name)

    def remove_container(self, name: str) -> bool:
        """Kill and remove ``name`` with its anonymous volumes.

        Returns False when there was nothing to remove.
        """
        try:
            with self._call(f"remove {name}", exception.ContainerNotFound(name=name)):
                self.api.remove_container(name, v=True, force=True)
        except exception.ContainerNotFound:
            return False
        return True

    def logs(self, name: str, tail: int) -> Iterator[bytes]:
        """Stream the newest ``tail`` lines of stdout and stderr."""
        with self._call(f"read logs of {name}", exception.ContainerNotFound(name=name)):
            stream = self.api.logs(
                name, stdout=True, stderr=True, stream=True, follow=False, tail=tail
            )
            yield from stream

    def stats(self, name: str) -> dict[str, Any]:
        """One resource-usage sample of ``name``."""
        with self._call(
            f"read stats of {name}", exception.ContainerNotFound(name=name)
        ):
            return self.api.stats(name, stream=False)

    def put_archive(self, name: str, path: str, data: bytes) -> None:
        with self._call(
            f"copy files into {name}", exception.ContainerNotFound(name=name)
        ):
            self.api.put_archive(name, path, data)

    def create_volume(self, name: str, labels: Mapping[str, str]) -> None:
        with self._call(f"create volume {name}"):
            self.api.create_volume(name, labels=dict(labels))

    def remove_volume(self, name: str) -> bool:
        """Remove the volume ``name``; False when there was none."""
        try:
            with self._call(
                f"remove volume {name}", exception.VolumeNotFound(name=name)
            ):
                self.api.remove_volume(name, force=True)
        except exception.VolumeNotFound:
            return False
        return True

    def exec_run(
        self, name: str, argv: list[str], environment: Mapping[str, str] | None = None
    ) -> tuple[int, bytes]:
        """Run ``argv`` in the running container ``name``; its exit status
        and output (126 or 127 when there is no such program to run)."""
        with self._call(
            f"run {argv[0]} in {name}", exception.ContainerNotFound(name=name)
        ):
            run = self.api.exec_create(
                name,
                argv,
                environment=dict(environment or {}),
                stdout=True,
                stderr=True,
            )
            output = self.api.exec_start(run["Id"])
            code = self.api.exec_inspect(run["Id"]).get("ExitCode")
        return int(code or 0), output

    def exec_create(self, name: str, argv: list[str], tty: bool = False) -> str:
        """Set up ``argv`` to run in ``name``; with ``tty``, on a terminal
        of its own with its stdin open.  Returns the exec's ID."""
        with self._call(
            f"set up {argv[0]} in {name}", exception.ContainerNotFound(name=name)
        ):
            created = self.api.exec_create(name, argv, stdin=tty, tty=tty)
        return created["Id"]

    def exec_attach(self, exec_id: str) -> ExecStream:
        """Start an exec made with ``tty`` and return its terminal's raw
        byte stream (the engine's hijacked connection)."""
        with self._call(f"start exec {exec_id}"):
            handle = self.api.exec_start(exec_id, tty=True, socket=True)
        # Plain sockets come wrapped in the SocketIO of the HTTP response;
        # a selector needs the socket itself.
        sock = handle if isinstance(handle, socket.socket) else handle._sock
        return ExecStream(sock=sock, handle=handle)

    def exec_inspect(self, exec_id: str) -> dict[str, Any]:
        with self._call(f"inspect exec {exec_id}"):
            return self.api.exec_inspect(exec_id)

    def path_exists(self, name: str, path: str) -> bool:
        """Whether ``path`` exists in the filesystem of ``name`` (the
        engine's ``HEAD /containers/{name}/archive``, which reads nothing)."""
        missing = exception.ContainerNotFound(name=name)
        try:
            with self._call(f"look for {path} in {name}", missing):
                api = self.api
                url = api._url("/containers/{0}/archive", name)
                answer = api.head(
                    url, params={"path": path}, **api._set_request_timeout({})
                )
                api._raise_for_status(answer)
        except exception.ContainerNotFound:
            # The engine answers 404 for a missing path and a missing
            # container alike; callers have just seen the container.
            return False
        return True

    def update_resources(self, name: str, resources: Mapping[str, int]) -> list[str]:
        """Change a container's cgroup limits in place (``docker update``);
        returns the engine's warnings.

        ``resources`` is in the API's own names (``Memory``, ``PidsLimit``):
        the SDK's ``update_container`` cannot send a pids limit.
        """
        with self._call(f"update {name}", exception.ContainerNotFound(name=name)):
            api = self.api
            url = api._url("/containers/{0}/update", name)
            answer = api._result(api._post_json(url, data=dict(resources)), True)
        return list((answer or {}).get("Warnings") or ())

    def container_size(self, name: str) -> int:
        """What the container's filesystem holds, in bytes (``SizeRootFs``:
        its image and its writable layer); the engine walks the writable
        layer's files to answer, so this waits as long as transfers do."""
        with self._call(
            f"measure container {name}", exception.ContainerNotFound(name=name)
        ):
            api = self.bulk_api
            url = api._url("/containers/{0}/json", name)
            found = api._result(api._get(url, params={"size": 1}), True)
        return int(found.get("SizeRootFs") or 0)

    def commit(self, name: str, repository: str, tag: str) -> str:
        with self._call(f"commit {name}", exception.ContainerNotFound(name=name)):
            return self.bulk_api.commit(name, repository=repository, tag=tag)["Id"]

    # -- images -----------------------------------------------------------

    def inspect_image(self, ref: str) -> dict[str, Any]:
        with self._call(f"inspect image {ref}", exception.ImageNotCached(ref=ref)):
            return self.api.inspect_image(ref)

    def image_exists(self, ref: str) -> bool:
        try:
            self.inspect_image(ref)
        except exception.ImageNotCached:
            return False
        return True

    def import_image(self, data: bytes, ref: str, labels: dict[str, str]) -> None:
        """Make an image of one layer from the tar archive ``data`` (as
        ``docker import`` does), tagged ``ref`` and carrying ``labels``."""
        repository, tag = ref.rsplit(":", 1)
        changes = [f"LABEL {json.dumps(k)}={json.dumps(v)}" for k, v in labels.items()]
        with self._call(f"import image {ref}"):
            self.api.import_image_from_data(
                data, repository=repository, tag=tag, changes=changes
            )

    def tag_image(self, source: str, ref: str) -> None:
        repository, tag = ref.rsplit(":", 1)
        with self._call(f"tag {source} as {ref}", exception.ImageNotCached(ref=source)):
            self.api.tag(source, repository, tag)

    def image_tags(
        self, repository: str, labels: dict[str, str] | None = None
    ) -> list[str]:
        """Every ``repository:tag`` the engine holds in ``repository``, of
        images carrying every one of ``labels``."""
        selectors = naming.label_filters(labels or {})
        with self._call(f"list images of {repository}"):
            found = self.api.images(name=repository, filters={"label": selectors})
        prefix = f"{repository}:"
        return [
            tag
            for image in found
            for tag in image.get("RepoTags") or ()
            if tag.startswith(prefix)
        ]

    def images_size(self) -> int:
        """Bytes the engine's images take, from one listing.

        Each image counts whole, so a layer that several images share counts
        once per image: never less than the disk they take.  The engine's
        exact figure (``/system/df``) walks every container's writable layer
        before it answers (API < 1.42), a cost a tenant's files would set.
        """
        with self._call("list images"):
            found = self.api.images()
        sizes = {image["Id"]: int(image.get("Size") or 0) for image in found}
        return sum(sizes.values())

    def remove_image(self, ref: str) -> bool:
        """Untag ``ref`` (and delete its layers if nothing else uses them)."""
        try:
            with self._call(f"remove image {ref}", exception.ImageNotCached(ref=ref)):
                self.api.remove_image(ref, noprune=False)
        except exception.ImageNotCached:
            return False
        return True

    def load_image(self, chunks: Iterable[bytes]) -> list[str]:
        """Stream a ``docker save`` tarball into the engine.

        ``chunks`` is sent as a chunked request body as it is produced, so
        memory stays bounded by what the producer buffers.  Returns what the
        engine reports as loaded (``name:tag`` or ``sha256:...``).
        """
        loaded = []
        with self._call("load the image"):
            for message in self.bulk_api.load_image(chunks, quiet=True):
                loaded.extend(_parse_load_message(message))
        return loaded

    def save_image(self, ref: str) -> Iterator[bytes]:
        """Stream ``docker save`` of ``ref``."""
        with self._call(f"save image {ref}", exception.ImageNotCached(ref=ref)):
            yield from self.bulk_api.get_image(ref)

    # -- events -----------------------------------------------------------

    def event_stream(
        self,
        filters: Mapping[str, list[str]],
        since: str | None = None,
        on_open: Any = None,
    ) -> Iterator[dict[str, Any]]:
        """Follow the engine's events that match ``filters`` until the
        stream ends; from ``since`` (the engine's ``seconds.nanoseconds``)
        when given, so that events already past are replayed first.

        The stream gets a client of its own, since it holds its connection
        for as long as it lasts, and no read timeout (the SDK asks for none),
        since it is silent for as long as nothing happens.  Once the engine
        has accepted the subscription, ``on_open`` (a callable, if given)
        receives a function that ends the stream from any thread: the
        blocking read returns and the iteration ends.
        """
        with self._call("follow its events"):
            api = self._new_client(self.api_version, self.settings.timeout)
            try:
                stream = api.events(since=since, filters=dict(filters), decode=True)
                # The SDK reads the answer's status only at the first event:
                # a refusal must not look like a subscription.
                api._raise_for_status(stream._response)
                # Silent for as long as nothing happens: a vanished remote
                # engine must break the read, not leave it waiting for ever.
                sock = stream_socket(stream._response)
                keep_alive(sock, self.settings.events_keepalive)

                def close() -> None:
                    # The engine may end the stream at the same moment,
                    # leaving the SDK's objects half torn down.
                    with contextlib.suppress(
                        OSError, AttributeError, docker.errors.DockerException
                    ):
                        stream.close()

                if on_open is not None:
                    on_open(close)
                yield from stream
            except docker.errors.StreamParseError as e:
                # Cut off in the middle of an event.
                raise exception.EngineUnavailable(
                    url=self.settings.url, reason=str(e.msg)
                ) from e
            except urllib3.exceptions.ReadTimeoutError as e:
                # The stream has no read timeout: only the keepalive probes
                # end a read like this.
                silence = self.settings.events_keepalive
                raise exception.EngineUnavailable(
                    url=self.settings.url,
                    reason=f"no answer to {KEEPALIVE_PROBES} keepalive probes "
                    f"after {silence} s of silence",
                ) from e
            except urllib3.exceptions.HTTPError as e:
                # The connection broke under the read.
                raise exception.EngineUnavailable(
                    url=self.settings.url, reason=_reason(e)
                ) from e
            finally:
                api.close()


def stream_socket(response: requests.Response) -> socket.socket | None:
    """The socket under a streamed HTTP answer, or None if it is not there
    (urllib3 keeps it in the body's buffered reader)."""
    reader = getattr(getattr(response.raw, "_fp", None), "fp", None)
    raw = getattr(reader, "raw", None)
    # socket.SocketIO around a plain or TLS socket.
    sock = getattr(raw, "_sock", raw)
    return sock if isinstance(sock, socket.socket) else None


def keep_alive(sock: socket.socket | None, idle_seconds: int) -> None:
    """Have the kernel probe a silent TCP connection after ``idle_seconds``
    and give it up after :data:`KEEPALIVE_PROBES` unanswered probes, a fifth
    of that apart: a peer that vanished without closing the connection
    (powered off, cut off) then breaks a read that would block for ever.
    A unix socket is left alone: it closes when the engine stops."""
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    interval = max(1, idle_seconds // KEEPALIVE_PROBES)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle_seconds)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPALIVE_PROBES)


def _parse_load_message(message: dict[str, Any]) -> list[str]:
    if "error" in message or "errorDetail" in message:
        detail = message.get("errorDetail") or {}
        raise docker.errors.APIError(detail.get("message") or message.get("error"))
    text = message.get("stream", "")
    refs = []
    for line in text.splitlines():
        for prefix in ("Loaded image: ", "Loaded image ID: "):
            if line.startswith(prefix):
                refs.append(line[len(prefix) :].strip())
    return refs


def _status(error: docker.errors.APIError) -> int | None:
    return error.response.status_code if error.response is not None else None


def _reason(error: Exception) -> str:
    """The engine's own explanation where there is one, else the error text."""
    explanation = getattr(error, "explanation", None)
    if isinstance(explanation, bytes):
        explanation = explanation.decode("utf-8", "replace")
    if explanation:
        with contextlib.suppress(ValueError, TypeError):
            explanation = json.loads(explanation).get("message", explanation)
        return str(explanation).strip()
    return str(error).strip() or type(error).__name__
