"""Glance ↔ engine image transfer: streamed loads and snapshots."""
