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

"""Host facts for the bounds: the kernel's limits and the image cache."""

import dataclasses
import resource

from nova_docker import bounds
from nova_docker import host
from nova_docker.tests.unit import test_host

FACTS = test_host.FACTS
GIB = 1024**3


def test_kernel_limits_are_read_from_proc_sys(tmp_path):
    for name, value in {
        "kernel/pid_max": "32768\n",
        "kernel/threads-max": "192730\n",
        "fs/file-max": "2466177\n",
        "fs/nr_open": "1048576\n",
    }.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(value)
    nr_open = min(1048576, host.nofile_hard_limit())
    assert host.read_kernel_limits(str(tmp_path)) == bounds.KernelLimits(
        pid_max=32768, threads_max=192730, file_max=2466177, nr_open=nr_open
    )


def test_nofile_ceiling_is_no_more_than_this_process_may_grant():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    ceiling = host.nofile_hard_limit()
    assert hard in (ceiling, resource.RLIM_INFINITY)
    assert ceiling > 0


def test_this_hosts_kernel_limits_are_positive():
    limits = host.read_kernel_limits()
    assert min(limits.pid_max, limits.threads_max, limits.file_max) > 0
    assert limits.nr_open >= 1024


def test_reserved_disk_adds_the_image_cache_to_the_operators_reserve():
    facts = dataclasses.replace(FACTS, images_bytes=3 * GIB + 1)
    # 2048 MiB + 3 GiB and a byte: rounded up, as Nova rounds the reserve.
    assert host.reserved_disk_gb(2048, facts) == 6
    assert host.reserved_disk_gb(0, dataclasses.replace(FACTS, images_bytes=0)) == 0
    assert host.reserved_disk_gb(1, dataclasses.replace(FACTS, images_bytes=0)) == 1
