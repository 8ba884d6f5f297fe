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

import io
import tarfile

from nova_docker_aio import images


def test_rootfs_holds_busybox_its_applets_and_extra_files() -> None:
    data = images.rootfs_tar({"/etc/peer": b"10.0.0.5"})
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        assert "bin/busybox" in names
        assert all(f"bin/{applet}" in names for applet in images.APPLETS)
        assert tar.getmember("bin/sh").linkname == "busybox"
        assert tar.extractfile("etc/peer").read() == b"10.0.0.5"
