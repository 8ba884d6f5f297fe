"""The all-in-one cloud launcher (``nova-docker-aio``).

An island: it starts upstream Keystone, Glance, Placement and Nova on
loopback ports against a private MariaDB, and reaches the Docker driver only
through the ``nova.conf`` it renders.  Nothing here is imported by the driver.
"""
