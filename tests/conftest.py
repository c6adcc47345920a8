"""Shared pytest configuration: the simulator fixtures (``simulator``, ``simulator_peer``,
``simulator_factory``; see ``simulators/pytest_plugin.py``) and a throwaway PostgreSQL
(``postgres_server``, ``postgres_dsn``, ``store_url``; see ``tests/pgserver.py``)."""

pytest_plugins = ["simulators.pytest_plugin", "tests.pgserver"]
