"""A local stand-in for the Vonage Voice platform: it places simulated calls against tapedeck.

It plays Vonage's part: fetches NCCOs, signs webhooks as Vonage does, streams audio over
the websocket protocol as paced 20 ms frames, sends DTMF, rings the parties of phone connects,
records calls (voicemail-style, or split one channel per leg for the rest of the call), and
runs the outbound calls a back end places through its create-call API, as each callee's script says.
"""

from tools.standin.inbound_calls import CallReport, DtmfPress, VonageStandin
from tools.standin.outbound import CalleeScript, OutboundReport

__all__ = ["CallReport", "CalleeScript", "DtmfPress", "OutboundReport", "VonageStandin"]
