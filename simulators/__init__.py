"""Network simulator: an HLR, MSCs and a number-portability SIP server that speak the same
M3UA/SCCP/TCAP/MAP and SIP as a real network, so the gateway can run and be tested end to end
on one machine. Arrives with the simulator issue; ``hlrgw demo`` and ``hlrgw simulate`` use it.
"""
