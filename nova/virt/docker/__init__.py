"""Nova only loads compute drivers from the ``nova.virt`` namespace.

This one-file shim makes ``compute_driver = docker.DockerDriver`` work; the
driver itself lives in the ``nova_docker`` package.  There is deliberately no
``__init__.py`` in ``nova/`` or ``nova/virt/`` of this project: installing one
would replace Nova's own.
"""

from nova_docker.driver import DockerDriver

__all__ = ["DockerDriver"]
