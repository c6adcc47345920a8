"""Shared pytest configuration: the simulator fixtures (``simulator``, ``simulator_peer``,
``simulator_factory``; see ``simulators/pytest_plugin.py``)."""

pytest_plugins = ["simulators.pytest_plugin"]
