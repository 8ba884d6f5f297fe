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

"""Options of the ``[docker]`` group, in the form Nova's own conf modules use."""

from oslo_config import cfg

from nova_docker.conf import console as console_opts
from nova_docker.conf import network as network_opts

# The oldest Engine API we test against: Debian 12's docker.io 20.10.
MIN_API_VERSION = "1.41"

docker_group = cfg.OptGroup(
    "docker",
    title="Docker driver options",
    help="""
Options for nova-docker, the compute driver that runs each Nova instance as a
Docker container (``[DEFAULT] compute_driver = docker.DockerDriver``).
""",
)

engine_opts = [
    cfg.StrOpt(
        "api_url",
        default="unix:///var/run/docker.sock",
        help="""
Where the Docker Engine API listens.

Possible values:

* ``unix:///path/to/docker.sock`` for a local engine (the default).
* ``tcp://host:2376`` (or ``https://host:2376``) for a remote engine. TLS is
  always used: ``tcp://`` never means plain HTTP. The engine's certificate is
  verified against ``tls_ca_cert`` (or the system CA bundle) unless
  ``tls_verify`` is false, and ``tls_cert``/``tls_key`` authenticate this host.
* ``http://host:2375`` for plain HTTP, only where the network is trusted.

Related options:

* ``tls_ca_cert``, ``tls_cert``, ``tls_key``, ``tls_verify``
""",
    ),
    cfg.StrOpt(
        "api_version",
        default="auto",
        help=f"""
The Engine API version to speak.

``auto`` negotiates the highest version both sides know. The driver refuses to
start against an engine older than API {MIN_API_VERSION} (Docker 20.10).
Current Docker Engine releases refuse clients older than API 1.44, so pin a
version only when you know the engine accepts it.

Possible values:

* ``auto`` (the default)
* A version string such as ``1.41`` or ``1.44``
""",
    ),
    cfg.StrOpt(
        "tls_ca_cert",
        help="""
CA certificate (PEM) that signed the remote engine's server certificate.

Related options:

* ``api_url``, ``tls_verify``
""",
    ),
    cfg.StrOpt(
        "tls_cert",
        help="""
Client certificate (PEM) presented to a remote engine.

Related options:

* ``tls_key`` must be set as well.
""",
    ),
    cfg.StrOpt(
        "tls_key",
        help="""
Private key (PEM) of ``tls_cert``.

Related options:

* ``tls_cert``
""",
    ),
    cfg.BoolOpt(
        "tls_verify",
        default=True,
        help="""
Verify the remote engine's certificate against ``tls_ca_cert`` (or the system
CA bundle when ``tls_ca_cert`` is unset).

Turning this off lets anyone on the path impersonate the engine and run
containers in your name; keep it on.

Related options:

* ``tls_ca_cert``
""",
    ),
    cfg.IntOpt(
        "api_timeout",
        default=60,
        min=1,
        help="""
Seconds to wait for an answer from the engine before failing the call.

Image loads, saves and commits wait up to 900 seconds instead: the engine
may work for minutes on a large image before it answers.  Both limits bound
a silence, not a transfer that is still moving data.
""",
    ),
    cfg.BoolOpt(
        "lifecycle_events",
        default=True,
        help="""
Follow the engine's container events, so that Nova learns within seconds
that an instance started, stopped, paused or was unpaused, also when that
happened outside Nova: its process exited, the kernel's OOM killer ended
it, or someone ran ``docker stop`` on the host.

nova-compute keeps one event stream open to the engine, of this host's
instances only, and hands each change to Nova as a lifecycle event, as the
libvirt driver does; Nova then syncs that instance's power state at once.
An instance that the kernel killed for exceeding its flavor's memory is
logged as a warning. When the stream breaks (the engine restarts),
nova-compute reconnects, waiting from 1 up to 30 seconds between attempts,
and then reports every instance's current state, so that what changed
meanwhile is seen too.

Nova's periodic power-state sync stays the backstop either way.

Possible values:

* ``true`` (the default)
* ``false``: Nova sees changes made outside it only at its periodic sync.

Related options:

* ``[DEFAULT] sync_power_state_interval``: the periodic sync, every 600
  seconds by default.
* ``[workarounds] handle_virt_lifecycle_events``: when false, Nova ignores
  these events.
""",
    ),
    cfg.IntOpt(
        "events_keepalive",
        default=30,
        min=1,
        help="""
Seconds the event stream from a remote engine (``tcp://``, ``https://``,
``http://``) may stay silent before nova-compute starts probing its
connection with TCP keepalives.

The stream is silent for as long as nothing happens to an instance, so
without probes a connection whose engine host vanished (powered off, or cut
off by the network, so that nothing closes the connection) would be waited
on for ever, and Nova would see power changes only at its periodic sync. The
probes follow every fifth of this, and after five unanswered ones the
connection is given up: about twice this many seconds after the last
answer. nova-compute then reconnects as for any broken stream, and resyncs.

A local engine's unix socket needs none: it closes when the engine stops.

Related options:

* ``lifecycle_events``
""",
    ),
]

instance_opts = [
    cfg.IntOpt(
        "stop_timeout",
        default=10,
        min=0,
        help="""
Seconds a soft reboot waits after SIGTERM before killing the container.

Power off uses Nova's own ``shutdown_timeout`` (or the image's
``os_shutdown_timeout``) instead.
""",
    ),
    cfg.BoolOpt(
        "allow_privileged",
        default=False,
        help="""
Allow flavors to request privileged containers.

When true, a flavor with the extra spec ``docker:privileged=true`` runs its
containers privileged: they see all host devices and may escape to the host.
Only enable it for flavors restricted to trusted projects. When false (the
default) that extra spec makes the boot fail.
""",
    ),
    cfg.ListOpt(
        "security_opt",
        default=[],
        help="""
Extra ``--security-opt`` values for every container.

``no-new-privileges`` is always set and the engine's default seccomp profile
applies; so does its AppArmor profile, but only where the host loads
AppArmor. nova-compute logs at start which confinement is in force. Use this
for, e.g., an SELinux label.

Possible values:

* A list such as ``label=type:svirt_lxc_net_t``
""",
    ),
    cfg.ListOpt(
        "cap_drop",
        default=[],
        help="""
Capabilities to drop beyond the engine's default set.

Possible values:

* A list of capability names such as ``NET_RAW,MKNOD``
""",
    ),
    cfg.IntOpt(
        "pids_limit",
        default=4096,
        min=1,
        help="""
The most tasks (processes and threads) one container may have.

Each container also gets no more than its share of the host's tasks: what
``kernel.pid_max`` and ``kernel.threads-max`` allow, less
``reserved_host_pids``, shared by flavor memory, so that all the instances
placement admits stay under the host's limits together. A flavor extra spec
``docker:pids_limit`` replaces this ceiling for that flavor; the share still
applies.

Related options:

* ``pids_limit_min``, ``reserved_host_pids``
""",
    ),
    cfg.IntOpt(
        "console_log_max_bytes",
        default=100 * 1024,
        min=1024,
        help="""
Most bytes of container output that ``console log show`` returns: the newest.
""",
    ),
    cfg.BoolOpt(
        "inject_key",
        default=False,
        help="""
Write the SSH public key of the instance's keypair to
``/root/.ssh/authorized_keys`` in the container before it starts.
""",
    ),
    cfg.BoolOpt(
        "inject_password",
        default=False,
        help="""
Set root's password in the container to the admin password of the boot
(``--admin-pass``, or the one Nova makes), with the image's own
``chpasswd``. An image without ``chpasswd`` still boots, and nova-compute
logs that the password was not set. ``openstack server set --password``
always sets it this way, whatever this option says. The password also goes
onto the config drive (``admin_pass`` in ``meta_data.json``) when the
server has one.
""",
    ),
    cfg.BoolOpt(
        "metadata_as_env",
        default=False,
        help="""
Expose instance metadata (``openstack server create --property k=v``) to the
container as environment variables.

Only keys that are valid variable names (letters, digits, underscore, not
starting with a digit) are passed; other keys are skipped with a warning.
Values are visible to anyone who can inspect the container on the host.
""",
    ),
    cfg.BoolOpt(
        "allow_image_healthcheck",
        default=False,
        help="""
Run the health check that an image declares (its ``HEALTHCHECK``).

Each check is an exec that dockerd, containerd and runc start on the host,
and their CPU is not counted in the container's quota. The engine checks a
health check's interval only when it comes with the create request, never
when it comes with the image, so an image could ask for a check every
nanosecond. Nova does not read the health status.

Possible values:

* ``false`` (the default): every container is created with health checks
  turned off (test ``NONE``).
* ``true``: the image's check runs, with its interval, timeout and start
  period raised to ``healthcheck_min_interval``. A check that sets a start
  interval (Docker 25 and later) stays off, since the driver cannot raise it.

Related options:

* ``healthcheck_min_interval``
""",
    ),
    cfg.IntOpt(
        "healthcheck_min_interval",
        default=30,
        min=1,
        max=86400,
        help="""
Seconds: the shortest interval, timeout and start period an image's health
check may have. A shorter interval or timeout (an unset one means the
engine's 30 seconds) is raised to this, and so is a start period the image
sets.

Possible values:

* An integer from 1 to 86400

Related options:

* ``allow_image_healthcheck``: without it, no image health check runs.
""",
    ),
    cfg.IntOpt(
        "reserved_host_pids",
        default=4096,
        min=0,
        help="""
Tasks (PIDs, threads) kept for the host itself, out of the least of
``kernel.pid_max`` and ``kernel.threads-max``.

The rest, less 16 for each instance's containerd shim, is shared among the
instances that the VCPU and MEMORY_MB inventory admit, in proportion to
their flavor's memory. nova-compute logs at start what each instance gets,
and warns when the floors cannot fit.

Possible values:

* 0 or more tasks

Related options:

* ``pids_limit``, ``pids_limit_min``
""",
    ),
    cfg.IntOpt(
        "pids_limit_min",
        default=256,
        min=1,
        help="""
The fewest tasks a container gets, however small its flavor's memory.

This floor is set aside once for each instance the VCPU inventory admits
((VCPUs - ``reserved_host_cpus``) x ``cpu_allocation_ratio``) before the
rest is shared by memory. If those floors exceed the host's tasks,
nova-compute warns at start that the bound cannot hold.

Possible values:

* A positive number of tasks

Related options:

* ``pids_limit``, ``reserved_host_pids``
""",
    ),
    cfg.IntOpt(
        "nofile_limit",
        default=65536,
        min=1,
        help="""
The most open files (``RLIMIT_NOFILE``, soft and hard) of one process in a
container.

The limit is per process, so a container may hold its pids limit times this.
Each container gets the host's open files (``fs.file-max`` less
``reserved_host_files``) per task, times its share of tasks, divided by its
pids limit; never less than ``nofile_limit_min`` and never more than this or
``fs.nr_open``. A flavor extra spec ``docker:nofile_limit`` replaces this
ceiling for that flavor.

Possible values:

* A positive number of files

Related options:

* ``nofile_limit_min``, ``reserved_host_files``, ``pids_limit``
""",
    ),
    cfg.IntOpt(
        "nofile_limit_min",
        default=1024,
        min=1,
        help="""
The fewest open files (``RLIMIT_NOFILE``) a container's process gets.

When the host's ``fs.file-max`` cannot give this many to every task the
instances may have, nova-compute warns at start with the ``fs.file-max``
that would.

Possible values:

* A positive number of files

Related options:

* ``nofile_limit``, ``reserved_host_files``
""",
    ),
    cfg.IntOpt(
        "reserved_host_files",
        default=65536,
        min=0,
        help="""
Open files kept for the host itself, out of ``fs.file-max``.

Possible values:

* 0 or more files

Related options:

* ``nofile_limit``, ``nofile_limit_min``
""",
    ),
    cfg.StrOpt(
        "log_driver",
        default="local",
        choices=[
            (
                "local",
                "The engine's compact format; 30 to 40 % less engine CPU per "
                "line of output than json-file.",
            ),
            (
                "json-file",
                "One JSON object per line, for log shippers that read the "
                "engine's files.",
            ),
        ],
        help="""
How the engine stores a container's output, which ``console log show``
reads back.

Either way the log is rotated, in blocking mode: a container that writes
faster than the engine can store waits for it, rather than the engine
reading and dropping as fast as it writes. Each line of output costs the
engine CPU outside the flavor's quota, about one core for as long as a
flood lasts. Changing this applies to containers created afterwards.

Possible values:

* ``local`` (the default)
* ``json-file``
""",
    ),
]

image_opts = [
    cfg.IntOpt(
        "max_image_expanded_gb",
        default=10,
        min=1,
        help="""
The most disk, in GB, that one image may take on the engine's storage once
unpacked.

An image is counted while it streams in from Glance, before the engine
unpacks anything: each layer at the larger of its bytes on the wire and what
it expands to, so that a small tarball of sparse files or of compressed
zeros cannot fill the host, nor a large one that inflates to nothing. A load
past the limit is stopped and the boot fails with a fault that names the
image, what was counted and the limit. The engine stores the archive before
it unpacks it, so during a load it holds about the archive plus what it
expands to, each within the limit. When the flavor has a root disk
(``root_gb`` > 0) that is smaller, the root disk is the limit instead.
Images cached with ``openstack aggregate cache image`` and snapshots are
held to this limit too. It is also the root disk of an instance whose
flavor has none (``root_gb`` = 0), by quota or audit.

Possible values:

* A positive number of GB (2^30 bytes)

Related options:

* ``[DEFAULT] reserved_host_disk_mb``
* ``root_disk_audit_interval``
""",
    ),
]

root_disk_opts = [
    cfg.IntOpt(
        "root_disk_audit_interval",
        default=60,
        min=0,
        help="""
Seconds between two audits of the instances' root disks, where the engine
cannot enforce them itself.

Where the engine stores containers with overlay2 on XFS mounted with
``pquota`` (or on btrfs), every container is created with a quota of
its flavor's root disk (``root_gb``), and the engine stops a write past it
with "No space left on device" (btrfs: "Disk quota exceeded"). Elsewhere,
e.g. overlay2 on ext4, nothing limits a container's writable layer; then
nova-compute measures every instance's writable layer this often, in one
engine call, and acts on those grown past their root disk as
``root_disk_overuse_action`` says. nova-compute logs at start which of the
two holds on its host. Instances created by a driver older than this option
carry no record of their root disk and are not audited. A flavor with
``root_gb`` = 0 gets ``max_image_expanded_gb`` as its root disk.

Possible values:

* 0: never audit.
* A positive number of seconds (60 by default).

Related options:

* ``root_disk_overuse_action``
* ``max_image_expanded_gb``
""",
    ),
    cfg.StrOpt(
        "root_disk_overuse_action",
        default="stop",
        choices=[
            ("log", "Log a warning naming the instance, its usage and its limit."),
            (
                "stop",
                "Stop the container (Nova's power-state sync then marks the "
                "instance SHUTOFF) and record an instance fault naming the "
                "usage and the limit.",
            ),
        ],
        help="""
What the root-disk audit does to a running or paused instance whose writable
layer is larger than its flavor's root disk.

The writable layer is measured as the engine measures it (``SizeRw``): every
file the instance wrote or changed, at its length. A stopped instance that
is started again is stopped again at the next audit unless it got back
under its limit by then.

Possible values:

* ``stop`` (the default)
* ``log``

Related options:

* ``root_disk_audit_interval``: 0 turns the audit off.
""",
    ),
]

sandbox_opts = [
    cfg.StrOpt(
        "sandbox_image",
        help="""
The image of every instance's network sandbox: a small container that holds
the instance's network namespace, so that its ports are plugged before the
instance's own process starts and stay plugged across its reboots (as
Kubernetes' pause image does for a pod).

Unset (the default), the driver builds its own image from
``sandbox_busybox``, with no registry, and tags it ``nova-sandbox:<digest>``.
Set, it names an image already in the engine (the driver never pulls); its
own command must run until stopped, and it must answer SIGTERM. The image is
pinned by ID at start. With an image of your own, a subnet without DNS
servers leaves the engine's default ``/etc/resolv.conf`` in the instance.

Related options:

* ``sandbox_busybox``
""",
    ),
    cfg.StrOpt(
        "sandbox_busybox",
        default="/bin/busybox",
        help="""
A statically linked busybox (Debian's ``busybox-static``) that the driver's
own sandbox image is built from, when ``sandbox_image`` is unset. It is
checked at start: nova-compute logs one error line when it is missing or
not static, and builds then fail with that reason.

Related options:

* ``sandbox_image``
""",
    ),
]

ALL_OPTS = (
    engine_opts
    + instance_opts
    + sandbox_opts
    + image_opts
    + root_disk_opts
    + network_opts.network_opts
    + console_opts.console_opts
)


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_group(docker_group)
    conf.register_opts(ALL_OPTS, group=docker_group)


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    return [(docker_group, ALL_OPTS)]
