"""Benchmarks: nova-docker against raw Docker and Nova's fake driver.

Run with ``python -m bench`` (``make bench``); ``--quick`` is the CI smoke.
Every figure is a ratio against a baseline measured in the same run, so the
numbers hold on a noisy machine.  Nothing here asserts a wall-clock time.
"""
