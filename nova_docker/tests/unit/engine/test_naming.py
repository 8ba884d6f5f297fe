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

from nova_docker.engine import naming


def test_names_and_labels():
    assert naming.container_name("u-1") == "nova-u-1"
    assert naming.glance_image_ref("g-1") == "nova-glance:g-1"
    labels = naming.container_labels("u-1", "instance-1", "p-1", "host-a")
    assert labels[naming.UUID_LABEL] == "u-1"
    assert labels[naming.HOST_LABEL] == "host-a"
    assert naming.host_selector("host-a") == {naming.HOST_LABEL: "host-a"}


def test_label_filters_ask_for_every_label_of_the_selector():
    selector = {naming.HOST_LABEL: "host-a", naming.UUID_LABEL: "u=1"}
    assert naming.label_filters(selector) == [
        "org.openstack.nova.host=host-a",
        "org.openstack.nova.instance-uuid=u=1",
    ]
    assert naming.label_filters({}) == []
