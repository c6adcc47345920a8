"""Network simulator: operator networks whose HLRs speak M3UA/SCCP/TCAP/MAP like a real one,
so the gateway runs and is tested end to end on one machine (``hlrgw simulate``,
docs/simulator.md).

- :mod:`.model`: networks, number ranges, per-number overrides, and :func:`.model.resolve`,
  the pure function from a number to what an HLR knows of it;
- :mod:`.config`: the network file (TOML), checked with errors that name the key;
- :mod:`.faults`: latency, no answer, aborts, malformed answers, resets, refused ASP Active,
  heartbeat silence; seeded draws;
- :mod:`.state`: the run-time state (overrides, faults, counters) the HLRs and the control API
  share;
- :mod:`.hlr`: one simulated HLR endpoint (M3UA in the SGP role + a MAP responder);
- :mod:`.runner`: :class:`.runner.Simulator`, every endpoint plus the control API;
- :mod:`.control`: the HTTP control API;
- :mod:`.client`: :class:`.client.SimulatorPeer`, a MapClient wired to the endpoints;
- :mod:`.pytest_plugin`: the ``simulator`` fixtures; :mod:`.cli`: ``hlrgw simulate``.
"""
