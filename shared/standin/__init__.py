"""A local stand-in for the Vonage Voice platform: it places simulated calls against tapedeck.

It plays Vonage's part: fetches NCCOs, signs webhooks as Vonage does, streams audio over
the websocket protocol as paced 20 ms frames, and sends DTMF.
"""

from shared.standin.calls import CallReport, DtmfPress, VonageStandin

__all__ = ["CallReport", "DtmfPress", "VonageStandin"]
