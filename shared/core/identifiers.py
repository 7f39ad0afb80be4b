"""The shapes of what tapedeck accepts as ids, numbers, digits and tags: pure, no I/O.

Every pattern is ASCII and matched against the whole string, so `١٢٣٤`, full-width digits and a
trailing newline never pass (Python's `\\d` takes any Unicode digit, and `$` allows a final `\\n`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import TypeIs

__all__ = [
    "CONVERSATION_ID",
    "DTMF_DIGITS",
    "DTMF_KEY",
    "E164",
    "LANGUAGE_TAG",
    "PIN",
    "RECORDING_ID",
    "ROUTE_NUMBER",
    "TRANSACTION_ID",
    "is_shaped",
]

# A Vonage number: 7 to 15 digits, no leading 0 or `+` (the vonage_voice models' own pattern).
E164 = re.compile(r"[1-9][0-9]{6,14}", re.ASCII)
# A called number as routes name it: short codes too.
ROUTE_NUMBER = re.compile(r"[0-9]{5,15}", re.ASCII)
# A PIN is typed into one input, whose dtmf.maxDigits Vonage takes up to 20.
PIN = re.compile(r"[0-9]{1,20}", re.ASCII)
DTMF_KEY = re.compile(r"[0-9*#]", re.ASCII)
DTMF_DIGITS = re.compile(r"[0-9*#]{0,40}", re.ASCII)
# BCP 47's common shape: language, optional script, optional region (en-US, cmn-Hans-CN, es-419).
LANGUAGE_TAG = re.compile(r"[a-z]{2,3}(-[A-Z][a-z]{3})?(-(?:[A-Z]{2}|[0-9]{3}))?", re.ASCII)
# Ids that become storage prefixes: `CON-<uuid>` from Vonage, or a bare uuid in SDK fixtures.
CONVERSATION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}", re.ASCII)
RECORDING_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}", re.ASCII)
# A PIN prompt transaction id: a uuid4 as tapedeck writes it, and no other spelling of it.
TRANSACTION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII)


def is_shaped(value: object, pattern: re.Pattern[str]) -> TypeIs[str]:
    """Whether `value` is a string that `pattern` matches from its first character to its last."""
    return isinstance(value, str) and pattern.fullmatch(value) is not None
