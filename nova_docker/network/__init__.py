"""Neutron VIFs for containers: os-vif for the host side, privsep+pyroute2
for the container's network namespace (see :mod:`nova_docker.network.vifs`).
"""
