"""The engine layer: the only code that talks to Docker.

``client`` wraps the SDK; ``naming``, ``spec`` and ``state`` are pure.
"""
