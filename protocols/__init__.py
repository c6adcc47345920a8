"""Sans-IO SS7 signalling codecs and state machines: M3UA, SCCP, TCAP, MAP (and SIP).

Nothing in this package opens a socket or touches asyncio: codecs turn bytes into typed
values and back, state machines take events and return the messages to send.
"""
