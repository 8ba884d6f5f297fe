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

"""DockerDriver: Nova's ComputeDriver calls mapped onto nova-docker's services.

Orchestration only: every engine call lives in :mod:`nova_docker.container`,
:mod:`nova_docker.image` or :mod:`nova_docker.host`.  Load it with
``[DEFAULT] compute_driver = docker.DockerDriver``.
"""

from __future__ import annotations

from typing import Any

import nova.conf
from nova import exception as nova_exception
from nova.compute import power_state
from nova.compute import vm_states
from nova.i18n import _
from nova.image import glance
from nova.virt import driver
from nova.virt import hardware
from nova.virt import node
from oslo_log import log as logging
from oslo_utils import excutils
from oslo_utils import units

from nova_docker import bounds
from nova_docker import conf as docker_conf
from nova_docker import configdrive
from nova_docker import container
from nova_docker import diagnostics
from nova_docker import events
from nova_docker import exception
from nova_docker import host
from nova_docker import migration as migration_mod
from nova_docker import rescue as rescue_mod
from nova_docker import rootdisk
from nova_docker import sandbox
from nova_docker.console import serial as serial_console
from nova_docker.engine import client as engine_client
from nova_docker.engine import confinement
from nova_docker.engine import naming
from nova_docker.engine import spec as spec_mod
from nova_docker.image import cache as image_cache
from nova_docker.image import fetch
from nova_docker.image import sandbox as sandbox_image
from nova_docker.image import snapshot
from nova_docker.network import exception as network_exception
from nova_docker.network import record as network_record
from nova_docker.network import service as network_service
from nova_docker.network import vifs

LOG = logging.getLogger(__name__)
CONF = nova.conf.CONF


class DockerDriver(driver.ComputeDriver):
    """Runs each Nova instance as one Docker container."""

    capabilities = {
        **driver.ComputeDriver.capabilities,
        # Glance images are docker/raw: the bytes of ``docker save``.
        "supports_image_type_raw": True,
        # Ports are plugged into the running container's namespace.
        "supports_attach_interface": True,
        # Loaded images are cached by Glance UUID and pruned on request.
        "has_imagecache": True,
        # Evacuate rebuilds from the image on another host; the failed
        # host, once back, destroys its stale container (Nova asks only
        # drivers that say so).
        "supports_evacuate": True,
    }

    def __init__(self, virtapi: Any) -> None:
        super().__init__(virtapi)
        docker_conf.register_opts(CONF)
        self._engine = engine_client.Engine(engine_settings(CONF.docker))
        self._containers = container.Containers(
            self._engine, CONF.host, container_options(CONF.docker)
        )
        sandbox_images = sandbox_image.SandboxImage(
            self._engine,
            CONF.host,
            CONF.docker.sandbox_image,
            CONF.docker.sandbox_busybox,
        )
        self._sandboxes = sandbox.Sandboxes(self._engine, CONF.host, sandbox_images)
        self._networks = network_service.InstanceNetworks(
            vifs.VifPlugger(
                CONF.docker.ovs_datapath_type,
                ovsdb_config=lambda: CONF.os_vif_ovs,
                metadata_route=CONF.docker.metadata_route == "on-link",
            ),
            self._netns_target,
            network_record.PortRecord(CONF.instances_path),
        )
        image_api = glance.API()
        max_image = CONF.docker.max_image_expanded_gb * units.Gi
        self._fetcher = fetch.ImageFetcher(self._engine, image_api, max_image)
        self._snapshotter = snapshot.Snapshotter(
            self._engine, image_api, CONF.host, max_image
        )
        self._image_cache = image_cache.ImageCache(self._engine)
        self._fresh_facts: host.HostFacts | None = None
        #: The host limits last logged: logged again only when they change.
        self._shares_said = ("", "")
        self._moves = migration_mod.Migrations(
            self._engine,
            self._containers,
            self._fetcher,
            self._snapshotter,
            image_api,
            CONF.host,
            max_image,
            start_new=self._start_new,
            power_on=self._power_on,
            release_ports=self._unplug_best_effort,
            config_drive=lambda instance, network_info: self._config_drive(
                instance, [], network_info, None
            ),
        )
        self._rescues = rescue_mod.Rescues(
            self._engine,
            self._containers,
            self._fetcher,
            CONF.host,
            CONF.docker.stop_timeout,
            busybox=sandbox_images.busybox,
            bring_up=self._bring_up,
            power_on=self._power_on,
        )
        self._root_disks = rootdisk.RootDisks(
            self._engine, self._containers, CONF.host, root_disk_options(CONF.docker)
        )
        self._events = events.EngineEvents(
            self._engine, CONF.host, self._engine_event, self._emit_current_states
        )
        self._consoles = serial_console.SerialConsoles(
            self._engine,
            self._console_target,
            CONF.serial_console.proxyclient_address,
            console_options(CONF.docker),
        )

    # -- host -------------------------------------------------------------

    def init_host(self, host: str) -> None:
        url = CONF.docker.api_url
        try:
            version = self._engine.connect()
        except (exception.EngineUnavailable, exception.EngineTooOld) as e:
            LOG.error("Cannot use the Docker Engine at %s: %s", url, e.format_message())
            raise
        self._snapshotter.sweep()
        LOG.info(
            "Using Docker Engine %s (API %s) at %s",
            version.get("Version"),
            self._engine.api_version,
            url,
        )
        self._log_confinement()
        self._sandboxes.prepare()
        facts = self._facts()
        self._share_host(facts, self._inventory(facts, self._get_allocation_ratios({})))
        self._root_disks.start()
        if CONF.docker.lifecycle_events:
            self._events.start()

    def cleanup_host(self, host: str) -> None:
        self._events.stop()
        self._root_disks.stop()
        self._consoles.stop()

    def _engine_event(self, event: Any) -> None:
        """A container of this host changed on the engine: Nova hears it at
        once, and no cached state older than the change answers for it."""
        self._containers.forget_states()
        self.emit_event(event)

    def _emit_current_states(self) -> None:
        """After the event stream was cut: every instance's state now, so
        that nothing that happened meanwhile stays unseen."""
        for event in events.current_state_events(self._containers.listing(), CONF.host):
            self._engine_event(event)

    def _log_confinement(self) -> None:
        """Say which confinement instances really get on this host: it
        depends on the kernel and the engine, not on this driver."""
        opts = CONF.docker
        active = confinement.from_info(
            self._engine.info(), opts.security_opt, opts.allow_privileged
        )
        LOG.info("Instance confinement on this host: %s", active.summary())
        for warning in active.warnings():
            LOG.warning("Instance confinement: %s", warning)

    def get_available_nodes(self, refresh: bool = False) -> list[str]:
        return [CONF.host]

    def get_nodenames_by_uuid(self, refresh: bool = False) -> dict[str, str]:
        return {node.get_local_node_uuid(): CONF.host}

    def get_available_resource(self, nodename: str) -> dict[str, Any]:
        self._fresh_facts = self._facts()
        return host.available_resource(self._fresh_facts, nodename)

    def update_provider_tree(
        self, provider_tree: Any, nodename: str, allocations: Any = None
    ) -> None:
        existing = provider_tree.data(nodename).inventory
        facts = self._take_fresh_facts()
        inventory = self._inventory(facts, self._get_allocation_ratios(existing))
        provider_tree.update_inventory(nodename, inventory)
        self._share_host(facts, inventory)

    def _inventory(
        self, facts: host.HostFacts, ratios: dict[str, float]
    ) -> dict[str, dict[str, Any]]:
        return host.inventory(
            facts,
            reserved_cpus=CONF.reserved_host_cpus,
            reserved_memory_mb=CONF.reserved_host_memory_mb,
            reserved_disk_gb=host.reserved_disk_gb(CONF.reserved_host_disk_mb, facts),
            ratios=ratios,
        )

    def _facts(self) -> host.HostFacts:
        return host.read_facts(self._engine, CONF.instances_path)

    def _take_fresh_facts(self) -> host.HostFacts:
        """The facts that ``get_available_resource`` read, once: a
        resource-tracker update asks for both, one after the other."""
        facts, self._fresh_facts = self._fresh_facts, None
        return facts or self._facts()

    def _share_host(
        self, facts: host.HostFacts, inventory: dict[str, dict[str, Any]]
    ) -> None:
        """Size new containers by what placement admits, and say once (and
        again whenever it changes) when their sum can exceed the host's own
        limits."""
        shares = bounds.Shares(
            facts.kernel, host_policy(CONF.docker), host.capacity(inventory)
        )
        self._containers.use_host_shares(shares)
        problems = "; ".join(shares.shortfalls())
        if (shares.summary(), problems) == self._shares_said:
            return
        self._shares_said = (shares.summary(), problems)
        LOG.info("Host limits for instances: %s", shares.summary())
        if problems:
            LOG.warning("Instances may exceed the host's own limits: %s", problems)

    def get_host_ip_addr(self) -> str:
        return CONF.my_ip

    def get_host_uptime(self) -> str:
        return host.uptime_text()

    def get_host_cpu_stats(self) -> dict[str, int]:
        # This compute host's CPUs, which are the engine's unless it is remote.
        return host.read_cpu_stats()

    # -- instances on this host -------------------------------------------

    def list_instances(self) -> list[str]:
        return self._containers.list_names()

    def list_instance_uuids(self) -> list[str]:
        return self._containers.list_uuids()

    def instance_exists(self, instance: Any) -> bool:
        try:
            self._containers.inspect(instance)
        except nova_exception.InstanceNotFound:
            return False
        return True

    def get_info(self, instance: Any, use_cache: bool = True) -> hardware.InstanceInfo:
        return hardware.InstanceInfo(
            state=self._containers.power_state(instance, use_cache=use_cache)
        )

    # -- lifecycle --------------------------------------------------------

    def spawn(
        self,
        context: Any,
        instance: Any,
        image_meta: Any,
        injected_files: Any,
        admin_password: Any,
        allocations: Any,
        network_info: Any = None,
        block_device_info: Any = None,
        power_on: bool = True,
        accel_info: Any = None,
    ) -> None:
        self._containers.refuse_unfit_flavor(instance, block_device_info, accel_info)
        image_ref, image = self._fetcher.ensure_inspected(context, image_meta, instance)
        try:
            drive = self._config_drive(
                instance, injected_files, network_info, admin_password
            )
            self._create(
                context, instance, image_ref, image_meta, injected_files, drive, image
            )
            if power_on:
                self._start_new(instance, network_info)
                self._inject_password(instance, admin_password)
        except Exception:
            with excutils.save_and_reraise_exception():
                self._teardown(instance, network_info)
        LOG.info(
            "Spawned container %s",
            naming.container_name(instance.uuid),
            instance=instance,
        )

    def _create(
        self,
        context: Any,
        instance: Any,
        image_ref: str,
        image_meta: Any,
        injected_files: Any,
        drive: bytes | None,
        image: Any = None,
    ) -> None:
        """Create the container (``image``: the engine's inspect of
        ``image_ref``, from ensuring it); if its cached image vanished since
        it was ensured (an operator's ``docker image prune``), load it once
        more."""
        try:
            self._containers.create(
                instance, image_ref, image_meta, injected_files, drive, image
            )
        except exception.ImageNotCached:
            LOG.warning(
                "Image %s left the engine before the container was created; "
                "loading it again",
                image_ref,
                instance=instance,
            )
            image_ref, image = self._fetcher.ensure_inspected(
                context, image_meta, instance
            )
            self._containers.create(
                instance, image_ref, image_meta, injected_files, drive, image
            )

    def _inject_password(self, instance: Any, password: str | None) -> None:
        """With ``[docker] inject_password``, the boot's admin password
        becomes root's; an image that cannot take it still boots (Nova
        makes a password for every boot), and the log says why."""
        if not (password and CONF.docker.inject_password):
            return
        try:
            self._containers.set_root_password(instance, password)
        except (
            nova_exception.SetAdminPasswdNotSupported,
            nova_exception.InstancePasswordSetFailed,
        ) as e:
            LOG.warning(
                "The admin password was not set: %s",
                e.format_message(),
                instance=instance,
            )

    def _config_drive(
        self,
        instance: Any,
        injected_files: Any,
        network_info: Any,
        admin_password: str | None,
    ) -> bytes | None:
        """The config drive's files, when Nova asks for a drive; None when
        it does not."""
        if not configdrive.required(instance):
            return None
        LOG.info(
            "Writing a config drive at %s", configdrive.SEED_DIR, instance=instance
        )
        return configdrive.seed_archive(
            instance, injected_files, network_info, admin_password
        )

    def _start_new(self, instance: Any, network_info: Any) -> None:
        """Start a container just made here: its sandbox and ports first,
        waiting for Neutron; a container that fails to start, or exits at
        once, fails the build with its own words."""
        self._bring_up(instance, network_info, self._start_container, fresh=True)

    def _power_on(self, instance: Any, network_info: Any) -> None:
        """Start (or thaw) an instance's container, its sandbox and ports
        first; one from before sandboxes starts, then gets its ports."""
        if not self._containers.in_sandbox(instance):
            self._containers.power_on(instance)
            self._networks.plug(instance, network_info)
            return
        self._bring_up(instance, network_info, self._containers.power_on)

    def _bring_up(
        self, instance: Any, network_info: Any, start: Any, fresh: bool = False
    ) -> None:
        """The sandbox runs with every port plugged (for a ``fresh``
        container, one just made that never ran, Neutron has said so), and
        only then ``start`` runs the instance's first instruction."""
        timeout = CONF.vif_plugging_timeout
        # Only a new container waits for Neutron, as libvirt's spawn does: a
        # restart's ports were bound already, and at nova-compute's start
        # (resume after a host boot) no event could arrive before init_host
        # ends, since the service hears events only after it.
        wait = fresh and timeout
        events = network_service.plug_events(network_info) if wait else []
        renewed = False
        try:
            with self.virtapi.wait_for_instance_event(
                instance, events, timeout=timeout, error_callback=_neutron_failed
            ):
                renewed = self._sandbox_up(instance, network_info, fresh)
        except nova_exception.InstanceEventTimeout:
            if CONF.vif_plugging_is_fatal:
                raise nova_exception.VirtualInterfaceCreateException() from None
            LOG.warning(
                "Neutron did not report the ports plugged; going on "
                "since vif_plugging_is_fatal is false",
                instance=instance,
            )
        if renewed and not fresh:
            # A container still running is in the namespace that went with
            # the old sandbox: it starts again in the new one.
            self._containers.power_off(instance, 0)
        start(instance)

    def _sandbox_up(self, instance: Any, network_info: Any, fresh: bool) -> bool:
        """Run the sandbox, plugging the ports when its namespace is new;
        True if it is."""
        nameservers = network_service.nameservers(network_info)
        try:
            renewed = self._sandboxes.ensure_running(instance, nameservers, fresh)
        except exception.SandboxUnavailable as e:
            if not fresh:
                raise
            # This host's problem: another host may build it.
            raise nova_exception.RescheduledException(
                instance_uuid=instance.uuid, reason=e.format_message()
            ) from e
        if renewed and network_info:
            # The namespace is the sandbox's just started: found once, not
            # looked up again through the instance.
            target = self._sandboxes.target(instance)
            self._networks.plug(instance, network_info, target)
        return renewed

    def _netns_target(self, instance: Any) -> tuple[str, int] | None:
        """The namespace to plug an instance's ports into: its sandbox's; a
        container from before sandboxes (or one whose sandbox was removed
        behind Nova's back) has its own."""
        if not self.instance_exists(instance):
            # Removed outside Nova: no server to plug for, and its leftover
            # sandbox goes when Nova destroys it.
            return None
        return self._sandboxes.target(instance) or self._containers.netns_target(
            instance
        )

    def _start_container(self, instance: Any) -> None:
        try:
            self._containers.start(instance)
        except exception.EngineError as e:
            # The engine ran the image and its command failed to start: the
            # image is at fault, another host would fail the same way.
            raise nova_exception.BuildAbortException(
                instance_uuid=instance.uuid,
                reason=_("the container did not start: %s") % e.format_message(),
            ) from e
        exited = self._containers.exited(instance)
        if exited is None:
            return
        code, output = exited
        if code != 0:
            # As a VM that crashes while it boots, but said at once: the
            # image's command is at fault, and the build must not look fine.
            raise nova_exception.BuildAbortException(
                instance_uuid=instance.uuid,
                reason=_(
                    "the container exited at once with status %(code)d; its "
                    "last output: %(output)s"
                )
                % {"code": code, "output": output},
            )
        # Status 0 is a command that finished, as a VM that powers itself
        # off: the server is built, and shut down.
        LOG.info(
            "The container's command finished at once (status 0); the server "
            "is shut down",
            instance=instance,
        )

    def _teardown(self, instance: Any, network_info: Any) -> None:
        """Undo a failed spawn without hiding why it failed."""
        self._containers.destroy(instance)
        self._unplug_best_effort(instance, network_info)

    def _unplug_best_effort(self, instance: Any, network_info: Any) -> None:
        # As in libvirt's cleanup: a port that cannot be unplugged must not
        # stop the instance from being deleted; the log names what is left.
        try:
            self._networks.release(instance, network_info)
        except network_exception.VifPlugError:
            LOG.exception(
                "Host devices of this instance's ports may be left behind",
                instance=instance,
            )
        # The ports are gone from this host: so is the namespace that held
        # them, so that the next start here plugs them into a new one.
        try:
            self._sandboxes.remove(instance)
        except exception.EngineError as e:
            LOG.error(
                "Could not remove the network sandbox: %s",
                e.format_message(),
                instance=instance,
            )

    def destroy(
        self,
        context: Any,
        instance: Any,
        network_info: Any,
        block_device_info: Any = None,
        destroy_disks: bool = True,
        destroy_secrets: bool = True,
    ) -> None:
        self._consoles.close(instance)
        # Nova keeps the disks when they are shared: a resize reverted on
        # one host, a server evacuated between hosts of one engine.
        if not destroy_disks and not self._moves.keep_stopped(instance):
            return
        self.cleanup(
            context,
            instance,
            network_info,
            block_device_info,
            destroy_disks,
            destroy_secrets=destroy_secrets,
        )

    def cleanup(
        self,
        context: Any,
        instance: Any,
        network_info: Any,
        block_device_info: Any = None,
        destroy_disks: bool = True,
        migrate_data: Any = None,
        destroy_vifs: bool = True,
        destroy_secrets: bool = True,
    ) -> None:
        # The container's filesystem is its disk; there are no host-side
        # instance files, volumes or secrets to clean up.  Another host's
        # container of the instance (an engine hosts share) is left alone,
        # and so are its ports.
        if destroy_disks:
            # First its rescue, which runs in the sandbox's namespace.
            self._rescues.remove(instance)
        if destroy_disks and not self._moves.remove_here(instance):
            return
        if destroy_vifs:
            self._unplug_best_effort(instance, network_info)

    def plug_vifs(self, instance: Any, network_info: Any) -> None:
        self._networks.plug(instance, network_info)

    def unplug_vifs(self, instance: Any, network_info: Any) -> None:
        self._networks.unplug(instance, network_info)

    def attach_interface(
        self, context: Any, instance: Any, image_meta: Any, vif: Any
    ) -> None:
        # Into the sandbox, which runs while the server is stopped too; with
        # no sandbox running, the port is plugged with the others at start.
        self._networks.attach(instance, vif)

    def detach_interface(self, context: Any, instance: Any, vif: Any) -> None:
        self._networks.detach(instance, vif)

    def reboot(
        self,
        context: Any,
        instance: Any,
        network_info: Any,
        reboot_type: str,
        block_device_info: Any = None,
        bad_volumes_callback: Any = None,
        accel_info: Any = None,
        share_info: Any = None,
    ) -> None:
        hard = reboot_type == "HARD"
        self._containers.power_off(instance, 0 if hard else CONF.docker.stop_timeout)
        self._power_on(instance, network_info)

    def power_off(
        self, instance: Any, timeout: int = 0, retry_interval: int = 0
    ) -> None:
        self._consoles.close(instance)
        self._containers.power_off(instance, timeout)

    def power_on(
        self,
        context: Any,
        instance: Any,
        network_info: Any,
        block_device_info: Any = None,
        accel_info: Any = None,
        share_info: Any = None,
    ) -> None:
        self._power_on(instance, network_info)

    def set_admin_password(self, instance: Any, new_pass: str) -> None:
        self._containers.set_root_password(instance, new_pass)

    def pause(self, instance: Any) -> None:
        # Before the freeze: a frozen container runs no hang-up.
        self._consoles.close(instance)
        self._containers.pause(instance)

    def unpause(self, instance: Any) -> None:
        self._containers.unpause(instance)

    # Suspend freezes the processes (the cgroup freezer, like pause) rather
    # than stopping them: a stopped container loses its processes' memory,
    # and resume must give back the running program, not a fresh boot.
    def suspend(self, context: Any, instance: Any) -> None:
        self._consoles.close(instance)
        self._containers.pause(instance)

    def resume(
        self,
        context: Any,
        instance: Any,
        network_info: Any,
        block_device_info: Any = None,
        share_info: Any = None,
    ) -> None:
        self._containers.unpause(instance)

    def resume_state_on_host_boot(
        self,
        context: Any,
        instance: Any,
        network_info: Any,
        share_info: Any,
        block_device_info: Any = None,
    ) -> None:
        if migration_mod.arriving(instance):
            # A move here whose finish is still queued for this host: the
            # finish creates and starts the container; starting now would
            # find none and fail the server.
            LOG.info(
                "Not resuming: the server is moving here and Nova's finish "
                "of the move will start it",
                instance=instance,
            )
            return
        self._power_on(instance, network_info)

    def soft_delete(self, instance: Any) -> None:
        self._consoles.close(instance)
        self._containers.power_off(instance, CONF.docker.stop_timeout)

    def restore(self, instance: Any) -> None:
        # Nova passes no network_info here; the cache has the ports.
        info_cache = instance.info_cache if "info_cache" in instance else None
        self._power_on(instance, info_cache.network_info if info_cache else [])

    def rescue(
        self,
        context: Any,
        instance: Any,
        network_info: Any,
        image_meta: Any,
        rescue_password: Any,
        block_device_info: Any,
        share_info: Any,
    ) -> None:
        self._consoles.close(instance)
        self._rescues.rescue(
            context, instance, network_info, image_meta, rescue_password
        )

    def unrescue(self, context: Any, instance: Any) -> None:
        self._consoles.close(instance)
        self._rescues.unrescue(instance)

    # -- moves between hosts ----------------------------------------------

    def migrate_disk_and_power_off(
        self,
        context: Any,
        instance: Any,
        dest: str,
        flavor: Any,
        network_info: Any,
        block_device_info: Any = None,
        timeout: int = 0,
        retry_interval: int = 0,
    ) -> str:
        return self._moves.migrate(context, instance, flavor, network_info, timeout)

    def finish_migration(
        self,
        context: Any,
        migration: Any,
        instance: Any,
        disk_info: str,
        network_info: Any,
        image_meta: Any,
        resize_instance: bool,
        allocations: Any,
        block_device_info: Any = None,
        power_on: bool = True,
        share_info: Any = None,
    ) -> None:
        self._moves.finish(
            context, migration, instance, disk_info, network_info, image_meta, power_on
        )

    def confirm_migration(
        self, context: Any, migration: Any, instance: Any, network_info: Any
    ) -> None:
        self._moves.confirm(context, migration, instance, network_info)

    def finish_revert_migration(
        self,
        context: Any,
        instance: Any,
        network_info: Any,
        migration: Any,
        block_device_info: Any = None,
        power_on: bool = True,
        share_info: Any = None,
    ) -> None:
        self._moves.revert(context, migration, instance, network_info, power_on)

    # Nova asks whether two hosts share the instance's disks before it
    # destroys a copy (resize revert, a returning evacuated host): they do
    # when both reach the same engine.
    def check_instance_shared_storage_local(
        self, context: Any, instance: Any
    ) -> dict[str, str]:
        return {"docker_engine": self._moves.engine_identity()}

    def check_instance_shared_storage_remote(self, context: Any, data: Any) -> bool:
        return self._moves.shares_engine(data)

    # Live migration is refused in its pre-checks, so the API leaves the
    # server ACTIVE where it is and never reaches live_migration.
    def check_can_live_migrate_destination(
        self,
        context: Any,
        instance: Any,
        src_compute_info: Any,
        dst_compute_info: Any,
        block_migration: bool = False,
        disk_over_commit: bool = False,
    ) -> Any:
        raise migration_mod.live_migration_refused()

    def check_can_live_migrate_source(
        self,
        context: Any,
        instance: Any,
        dest_check_data: Any,
        block_device_info: Any = None,
    ) -> Any:
        raise migration_mod.live_migration_refused()

    # -- images and console -----------------------------------------------

    def snapshot(
        self, context: Any, instance: Any, image_id: str, update_task_state: Any
    ) -> None:
        try:
            self._containers.inspect(instance)
        except nova_exception.InstanceNotFound as e:
            raise nova_exception.InstanceNotRunning(instance_id=instance.uuid) from e
        self._snapshotter.snapshot(
            context,
            instance,
            naming.container_name(instance.uuid),
            image_id,
            update_task_state,
        )

    def manage_image_cache(self, context: Any, all_instances: Any) -> None:
        self._snapshotter.sweep()
        if not CONF.image_cache.remove_unused_base_images:
            return
        in_use = {i.image_ref for i in all_instances if i.image_ref}
        self._image_cache.prune(
            in_use, CONF.image_cache.remove_unused_original_minimum_age_seconds
        )

    def cache_image(self, context: Any, image_id: str) -> bool:
        return self._fetcher.prefetch(context, image_id)

    def get_diagnostics(self, instance: Any) -> dict[str, int]:
        return diagnostics.legacy_diagnostics(self._containers.stats(instance))

    def get_instance_diagnostics(self, instance: Any) -> Any:
        return diagnostics.instance_diagnostics(
            self._containers.inspect(instance),
            self._containers.stats(instance),
            self._sandboxes.nic_counters(instance),
            configdrive.required(instance),
        )

    def get_console_output(self, context: Any, instance: Any) -> str:
        try:
            return self._containers.console_output(instance)
        except exception.ContainerNotFound as e:
            raise nova_exception.InstanceNotFound(instance_id=instance.uuid) from e
        except exception.EngineError as e:
            raise nova_exception.ConsoleLogOutputException(
                instance_id=instance.uuid, reason=e.format_message()
            ) from e

    def _console_target(self, instance: Any) -> tuple[str, bool]:
        """The container a console reaches, and whether it runs: the
        rescue container while the server is rescued."""
        if instance.vm_state == vm_states.RESCUED:
            rescue = self._rescues.console_target(instance)
            if rescue is not None:
                return rescue
        running = self._containers.power_state(instance) == power_state.RUNNING
        return naming.container_name(instance.uuid), running

    def get_serial_console(self, context: Any, instance: Any) -> Any:
        # nova-compute checks this too; nova-serialproxy's port check
        # reaches here through validate_console_port, which does not.
        if not CONF.serial_console.enabled:
            raise nova_exception.ConsoleTypeUnavailable(console_type="serial")
        return self._consoles.get(instance)


def _neutron_failed(event_name: str, instance: Any) -> None:
    LOG.error("Neutron reported failure on event %s", event_name, instance=instance)
    if CONF.vif_plugging_is_fatal:
        raise nova_exception.VirtualInterfaceCreateException()


def engine_settings(opts: Any) -> engine_client.EngineSettings:
    return engine_client.EngineSettings(
        url=opts.api_url,
        version=opts.api_version,
        timeout=opts.api_timeout,
        events_keepalive=opts.events_keepalive,
        tls_ca_cert=opts.tls_ca_cert,
        tls_cert=opts.tls_cert,
        tls_key=opts.tls_key,
        tls_verify=opts.tls_verify,
        min_version=docker_conf.MIN_API_VERSION,
    )


def container_options(opts: Any) -> container.ContainerOptions:
    return container.ContainerOptions(
        spec=spec_mod.SpecOptions(
            pids_limit=opts.pids_limit,
            nofile_limit=opts.nofile_limit,
            log_driver=opts.log_driver,
            allow_privileged=opts.allow_privileged,
            security_opt=tuple(opts.security_opt),
            cap_drop=tuple(opts.cap_drop),
            metadata_as_env=opts.metadata_as_env,
            allow_image_healthcheck=opts.allow_image_healthcheck,
            healthcheck_min_interval=opts.healthcheck_min_interval,
            unsized_root_disk_gb=opts.max_image_expanded_gb,
        ),
        stop_timeout=opts.stop_timeout,
        console_max_bytes=opts.console_log_max_bytes,
        inject_key=opts.inject_key,
    )


def host_policy(opts: Any) -> bounds.Policy:
    return bounds.Policy(
        reserved_tasks=opts.reserved_host_pids,
        reserved_files=opts.reserved_host_files,
        pids_min=opts.pids_limit_min,
        nofile_min=opts.nofile_limit_min,
    )


def root_disk_options(opts: Any) -> rootdisk.Options:
    return rootdisk.Options(
        audit_interval=opts.root_disk_audit_interval,
        overuse_action=opts.root_disk_overuse_action,
        stop_timeout=opts.stop_timeout,
    )


def console_options(opts: Any) -> serial_console.Options:
    return serial_console.Options(
        command=opts.console_command,
        listen_timeout=opts.serial_console_listen_timeout,
        idle_timeout=opts.serial_console_idle_timeout,
        max_sessions=opts.serial_console_max_sessions,
    )
