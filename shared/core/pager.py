"""The pager SMS for a voicemail: caller, the message in upper case, a link. Pure functions."""

from __future__ import annotations

__all__ = ["SEGMENTS", "build_pager_text", "fit_sms", "sms_length", "sms_limit"]

SEGMENTS = 2
# GSM 03.38: the basic set costs one septet, the extension set two; anything else forces UCS-2.
_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = set("^{}\\[~]|€\f")
_ELLIPSIS = "..."


def _is_gsm(text: str) -> bool:
    return all(c in _GSM_BASIC or c in _GSM_EXTENDED for c in text)


def sms_length(text: str) -> int:
    """Length in the units SMS segments are counted in: septets (GSM-7) or UTF-16 code units."""
    if _is_gsm(text):
        return sum(2 if c in _GSM_EXTENDED else 1 for c in text)
    return len(text.encode("utf-16-le")) // 2


def sms_limit(text: str, segments: int = SEGMENTS) -> int:
    """How many units fit in `segments` concatenated segments for this text's encoding."""
    if segments == 1:
        return 160 if _is_gsm(text) else 70
    return segments * (153 if _is_gsm(text) else 67)


def fit_sms(head: str, body: str, link: str | None) -> str:
    """`head`, `body` and `link` in paragraphs, the body cut at a word to fit two segments."""
    tail = f"\n\n{link}" if link else ""

    def compose(text: str) -> str:
        return f"{head}\n\n{text}{tail}"

    if sms_length(compose(body)) <= sms_limit(compose(body)):
        return compose(body)
    cut = body
    while cut:
        # Drop the last word, whatever whitespace precedes it, keeping the line breaks before.
        cut = cut[: max(cut.rstrip().rfind(" "), cut.rstrip().rfind("\n"), 0)].rstrip()
        candidate = compose(cut + _ELLIPSIS)
        if sms_length(candidate) <= sms_limit(candidate):
            return candidate
    return compose(_ELLIPSIS)


def build_pager_text(caller: str, message: str, link: str | None) -> str:
    """`[From: caller]`, the message in upper case cut to fit two segments, then the link."""
    head = f"[From: +{caller}]" if caller.isdigit() else f"[From: {caller or 'withheld'}]"
    return fit_sms(head, " ".join(message.upper().split()), link)
