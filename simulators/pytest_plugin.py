"""pytest fixtures for tests that need simulated operator networks.

Load with ``pytest_plugins = ["simulators.pytest_plugin"]`` (``tests/conftest.py`` does):

- ``simulator``: the example network (``config/network.example.toml``) started in-process on
  free loopback ports, seed 1, control API on a free port; stopped after the test.
- ``simulator_peer``: a :class:`~simulators.client.SimulatorPeer` (a MapClient with a route to
  every endpoint of ``simulator``, timer m 1 s), connected, closed after the test.
- ``simulator_factory``: starts simulators from other network files (a path, TOML text or a
  :class:`~simulators.config.SimConfig`) and stops them after the test.
"""

from __future__ import annotations

import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from .client import SimulatorPeer
from .config import SimConfig, load_config, parse_config
from .runner import Simulator

EXAMPLE_NETWORK = Path(__file__).resolve().parent.parent / "config" / "network.example.toml"

SimulatorFactory = Callable[..., Awaitable[Simulator]]


@pytest.fixture
async def simulator_factory() -> AsyncIterator[SimulatorFactory]:
    started: list[Simulator] = []

    async def start(network: str | Path | SimConfig = EXAMPLE_NETWORK, **kw: Any) -> Simulator:
        if isinstance(network, SimConfig):
            config = network
        elif isinstance(network, Path) or "\n" not in str(network):
            config = load_config(network)
        else:
            config = parse_config(tomllib.loads(str(network)), "<test>")
        kw.setdefault("seed", 1)
        sim = Simulator(config, **kw)
        started.append(sim)
        await sim.start()
        return sim

    yield start
    for sim in reversed(started):
        await sim.stop()


@pytest.fixture
async def simulator(simulator_factory: SimulatorFactory) -> Simulator:
    return await simulator_factory(EXAMPLE_NETWORK)


@pytest.fixture
async def simulator_peer(simulator: Simulator) -> AsyncIterator[SimulatorPeer]:
    peer = SimulatorPeer(simulator.endpoints.values(), timer_m=1.0)
    await peer.start()
    yield peer
    await peer.close()
