#!/bin/bash
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

# DevStack plugin for nova-docker: installs the Docker Engine and the driver
# and points nova-compute at it.  See devstack/local.conf.sample.

function nova_docker_install_engine {
    if ! is_package_installed docker.io && ! command -v dockerd >/dev/null; then
        install_package docker.io
    fi
    if is_service_enabled n-cpu; then
        # nova-compute runs as the stack user and talks to the socket.
        sudo usermod -a -G docker "$STACK_USER"
    fi
    if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
        sudo systemctl enable --now docker
    fi
}

function nova_docker_install_driver {
    # A regular install, never "pip install -e": an editable install maps the
    # "nova" name to this checkout and shadows the real Nova.
    pip_install "$NOVA_DOCKER_DIR"
}

function nova_docker_configure {
    iniset "$NOVA_CPU_CONF" DEFAULT compute_driver docker.DockerDriver
    iniset "$NOVA_CPU_CONF" docker api_url "$NOVA_DOCKER_API_URL"
    # Containers are sized by RAM and vCPUs; disk is shared engine storage.
    iniset "$NOVA_CPU_CONF" DEFAULT reserved_host_disk_mb 0
}

function nova_docker_upload_demo_image {
    local rootfs
    rootfs=$(mktemp -d)
    mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/etc"
    install_package busybox-static
    cp /bin/busybox "$rootfs/bin/busybox"
    local applet
    for applet in sh echo sleep cat ls ip ping httpd; do
        ln -sf busybox "$rootfs/bin/$applet"
    done
    sudo tar -C "$rootfs" -c . | sudo docker import \
        -c 'CMD ["/bin/sh", "-c", "echo hello from nova-docker; while :; do sleep 5; done"]' \
        - nova-docker-devstack/busybox:latest
    rm -rf "$rootfs"
    sudo docker save nova-docker-devstack/busybox:latest | \
        openstack --os-cloud devstack-admin image create --public \
        --container-format docker --disk-format raw busybox-docker
    sudo docker rmi nova-docker-devstack/busybox:latest
}

if [[ "$1" == "stack" && "$2" == "pre-install" ]]; then
    echo_summary "Installing the Docker Engine for nova-docker"
    nova_docker_install_engine
elif [[ "$1" == "stack" && "$2" == "install" ]]; then
    echo_summary "Installing nova-docker"
    nova_docker_install_driver
elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
    echo_summary "Configuring nova-compute for nova-docker"
    nova_docker_configure
elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
    if [[ "$NOVA_DOCKER_DEMO_IMAGE" == "True" ]] && is_service_enabled g-api; then
        echo_summary "Uploading a busybox image for nova-docker"
        nova_docker_upload_demo_image
    fi
fi

if [[ "$1" == "unstack" ]]; then
    # Containers are Nova's instances: unstack leaves them to Nova's cleanup,
    # exactly as DevStack leaves libvirt domains.
    :
fi
