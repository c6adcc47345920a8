"""hlr-gateway service: HTTP API, lookup orchestration, routing, storage and the ``hlrgw`` CLI.

The wire codecs live in :mod:`protocols`; the network simulator in :mod:`simulators`.
"""

__version__ = "0.1.0"
