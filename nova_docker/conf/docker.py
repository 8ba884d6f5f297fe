"""Options of the ``[docker]`` group, in the form Nova's own conf modules use."""

from oslo_config import cfg

from nova_docker.network import opts as network_opts

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
* ``tcp://host:2376`` for a remote engine; TLS is used when ``tls_ca_cert``,
  ``tls_cert`` or ``tls_key`` is set, and the engine's certificate is verified
  unless ``tls_verify`` is false.

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
Maximum number of processes (and threads) in one container.

A flavor extra spec ``docker:pids_limit`` overrides it per flavor.
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
unpacks anything: each layer at what it expands to, so that a small tarball
of sparse files or of compressed zeros cannot fill the host. A load past the
limit is stopped and the boot fails with a fault that names the image, what
was counted and the limit. When the flavor has a root disk (``root_gb`` > 0)
that is smaller, the root disk is the limit instead. Images cached with
``openstack aggregate cache image`` and snapshots are held to this limit too.

Possible values:

* A positive number of GB (2^30 bytes)

Related options:

* ``[DEFAULT] reserved_host_disk_mb``
""",
    ),
]

ALL_OPTS = engine_opts + instance_opts + image_opts + network_opts.network_opts


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_group(docker_group)
    conf.register_opts(ALL_OPTS, group=docker_group)


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    return [(docker_group, ALL_OPTS)]
