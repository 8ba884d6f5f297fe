from nova_docker.engine import naming


def test_names_and_labels():
    assert naming.container_name("u-1") == "nova-u-1"
    assert naming.glance_image_ref("g-1") == "nova-glance:g-1"
    labels = naming.container_labels("u-1", "instance-1", "p-1", "host-a")
    assert labels[naming.UUID_LABEL] == "u-1"
    assert labels[naming.HOST_LABEL] == "host-a"
    assert naming.host_selector("host-a") == {naming.HOST_LABEL: "host-a"}
