"""nova-docker: a Nova compute driver that runs instances as Docker containers."""
