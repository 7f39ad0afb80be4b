"""NCCOs checked as Vonage checks them: every action against the official vonage_voice models,
then the rules of Vonage's NCCO reference and published NCCO schema where the models are lax
(unknown fields, endpoint types, number lengths, languages and styles, text length, URLs, ranges,
what must follow a barge-in or a background recording)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError
from vonage_voice.errors import NccoActionError
from vonage_voice.models import Connect, Conversation, Input, Notify, Record, Stream, Talk
from vonage_voice.models.connect_endpoints import (
    AppEndpoint,
    PhoneEndpoint,
    SipEndpoint,
    VbcEndpoint,
    WebsocketEndpoint,
)
from vonage_voice.models.enums import TtsLanguageCode

from shared.core.vonage_limits import TTS_STYLES

__all__ = ["NCCO_MODELS", "check_ncco", "ncco_faults"]

# The actions an NCCO may hold (the SDK's create-call `ncco` takes exactly these).
NCCO_MODELS: dict[str, type[BaseModel]] = {
    "talk": Talk,
    "stream": Stream,
    "record": Record,
    "input": Input,
    "notify": Notify,
    "connect": Connect,
    "conversation": Conversation,
}
ENDPOINT_MODELS: dict[str, type[BaseModel]] = {
    "phone": PhoneEndpoint,
    "app": AppEndpoint,
    "websocket": WebsocketEndpoint,
    "sip": SipEndpoint,
    "vbc": VbcEndpoint,
}
# The SDK's languages, and those Vonage's guide and Node SDK add (test_vonage_limits keeps the
# declared list holding the SDK's).
LANGUAGES = {code.value for code in TtsLanguageCode} | set(TTS_STYLES)
TALK_LIMIT = 1500
HEADERS_LIMIT = 512
E164 = re.compile(r"[1-9][0-9]{6,14}")
URL_LISTS = ("eventUrl", "streamUrl", "musicOnHoldUrl", "ringbackTone")
# Actions Vonage waits for before going on: talk and stream unless bargeIn, and these.
BLOCKING = {"input", "connect", "conversation", "notify"}


def _spoken(text: str) -> str:
    """A talk text as Vonage counts it: an SSML text's tags are not counted."""
    return re.sub(r"<[^>]*>", "", text) if text.lstrip().startswith("<speak") else text


def _as_model_fields(action: dict[str, Any]) -> dict[str, Any]:
    """The action's JSON as the models take it: `from_` for `from`, `contentType` for `content-type`."""
    fields = {("from_" if k == "from" else k): v for k, v in action.items()}
    if isinstance(fields.get("endpoint"), list):
        fields["endpoint"] = [
            {("contentType" if k == "content-type" else k): v for k, v in e.items()} if isinstance(e, dict) else e
            for e in fields["endpoint"]
        ]
    if action.get("action") == "talk" and isinstance(action.get("text"), str):
        # The model counts SSML tags against the limit, the reference does not: checked below.
        fields["text"] = _spoken(action["text"])
    return fields


def _round_trip(model: type[BaseModel], fields: dict[str, Any], original: dict[str, Any], where: str) -> list[str]:
    """The model must take the fields and give back the same JSON: an unknown field is dropped,
    and a field the model fills in (record's `split` for `channels`) is added, and both differ."""
    try:
        dumped = model(**fields).model_dump(mode="json", by_alias=True, exclude_none=True)
    except (ValidationError, NccoActionError, TypeError) as err:
        return [f"{where}: refused by vonage_voice.models.{model.__name__}: {err}"]
    expected = dict(original)
    if model is Talk:
        expected["text"] = fields["text"]
    if dumped != expected:
        unknown = sorted(set(expected) - set(dumped))
        return [f"{where}: not as {model.__name__} writes it (unknown or changed fields: {unknown or dumped})"]
    return []


def _url_faults(action: dict[str, Any], where: str) -> list[str]:
    faults = []
    for name in URL_LISTS:
        if name not in action:
            continue
        urls = action[name]
        if not (isinstance(urls, list) and len(urls) == 1 and isinstance(urls[0], str)):
            faults.append(f"{where}: {name} must be an array holding one URL")
            continue
        parts = urlsplit(urls[0])
        if parts.scheme not in ("http", "https") or not parts.netloc or re.search(r"\s", urls[0]):
            faults.append(f"{where}: {name} {urls[0]!r} is not an http(s) URL")
    if action.get("eventMethod", "POST") not in ("GET", "POST"):
        faults.append(f"{where}: eventMethod must be GET or POST")
    return faults


def _talk_faults(action: dict[str, Any], where: str) -> list[str]:
    faults = []
    text = action.get("text")
    if isinstance(text, str):
        if not text.strip():
            faults.append(f"{where}: talk text is blank")
        if len(_spoken(text)) > TALK_LIMIT:
            faults.append(f"{where}: talk text is {len(_spoken(text))} characters, over {TALK_LIMIT}")
    language = action.get("language", "en-US")
    if language not in LANGUAGES:
        faults.append(f"{where}: {language!r} is not a text-to-speech language")
    elif "style" in action and action["style"] not in TTS_STYLES[language]:
        faults.append(f"{where}: style {action['style']} is not one of {language}'s")
    return faults


def _endpoint_faults(action: dict[str, Any], where: str) -> list[str]:
    endpoints = action.get("endpoint")
    if not isinstance(endpoints, list) or len(endpoints) != 1:
        return [f"{where}: connect takes exactly one endpoint"]
    endpoint = endpoints[0]
    kind = endpoint.get("type") if isinstance(endpoint, dict) else None
    if kind not in ENDPOINT_MODELS:
        return [f"{where}: endpoint type {kind!r} is not one of {sorted(ENDPOINT_MODELS)}"]
    faults = _round_trip(ENDPOINT_MODELS[kind], _as_model_fields(action)["endpoint"][0], endpoint, f"{where} endpoint")
    if kind == "phone" and not E164.fullmatch(str(endpoint.get("number"))):
        faults.append(f"{where}: phone number {endpoint.get('number')!r} is not E.164 of 7 to 15 digits")
    if kind == "websocket":
        if urlsplit(str(endpoint.get("uri"))).scheme not in ("ws", "wss"):
            faults.append(f"{where}: websocket uri must be ws:// or wss://")
        if "content-type" not in endpoint:
            faults.append(f"{where}: websocket endpoint has no content-type")
        headers = endpoint.get("headers", {})
        if not all(isinstance(v, str) for v in headers.values()):
            faults.append(f"{where}: websocket headers must be flat strings")
        size = len(json.dumps(headers, separators=(",", ":"), ensure_ascii=False).encode())
        if size > HEADERS_LIMIT:
            faults.append(f"{where}: websocket headers are {size} bytes, over {HEADERS_LIMIT}")
    return faults


# A record action's `transcription`, which the SDK's Record model lacks (Vonage's NCCO reference;
# `sentimentAnalysis` from vonage-java-sdk's TranscriptionSettings).
TRANSCRIPTION_FIELDS = {"language", "eventUrl", "eventMethod", "sentimentAnalysis"}


def _transcription_faults(settings: Any, where: str) -> list[str]:
    where = f"{where} transcription"
    if not isinstance(settings, dict):
        return [f"{where}: must be an object"]
    faults = [f"{where}: unknown field {name!r}" for name in sorted(set(settings) - TRANSCRIPTION_FIELDS)]
    language = settings.get("language", "en-US")
    if not isinstance(language, str) or not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*", language):
        faults.append(f"{where}: language {language!r} is not a BCP-47 tag")
    if not isinstance(settings.get("sentimentAnalysis", False), bool):
        faults.append(f"{where}: sentimentAnalysis must be true or false")
    return faults + _url_faults(settings, where)


def _action_faults(action: dict[str, Any], where: str) -> list[str]:
    kind = action.get("action")
    if kind == "record" and "transcription" in action:
        action = dict(action)
        faults = _transcription_faults(action.pop("transcription"), where)
        if faults:
            return faults
    faults = _round_trip(NCCO_MODELS[str(kind)], _as_model_fields(action), action, where)
    if faults:
        return faults  # the rules below read fields of the types the model takes
    faults += _url_faults(action, where)
    if kind == "talk":
        faults += _talk_faults(action, where)
    if kind == "connect":
        faults += _endpoint_faults(action, where)
        if "from" in action and not E164.fullmatch(str(action["from"])):
            faults.append(f"{where}: from {action['from']!r} is not E.164 of 7 to 15 digits")
        if not 0 <= action.get("limit", 7200) <= 7200:
            faults.append(f"{where}: limit must be from 0 to 7200")
    if kind == "record" and action.get("format") == "mp3" and action.get("channels", 1) > 2:
        faults.append(f"{where}: mp3 holds at most 2 channels, not {action['channels']}")
    if kind == "input":
        types = action.get("type", [])
        if not types or len(set(types)) != len(types):
            faults.append(f"{where}: input type must name dtmf, speech or both, once each")
        if "dtmf" in action and "dtmf" not in types:
            faults.append(f"{where}: dtmf settings on an input that takes no dtmf")
    return faults


def _blocks(action: dict[str, Any]) -> bool:
    kind = action.get("action")
    return kind in BLOCKING or (kind in ("talk", "stream") and not action.get("bargeIn"))


def _order_faults(ncco: list[dict[str, Any]]) -> list[str]:
    faults = []
    ending = ("endOnSilence", "endOnKey", "timeOut")
    for index, action in enumerate(ncco):
        after = ncco[index + 1 :]
        rest = [a for a in after if a.get("action") not in ("talk", "stream")]
        # "When true, the next non-talk action has to be input."
        barges_in = action.get("action") in ("talk", "stream") and action.get("bargeIn")
        if barges_in and (not rest or rest[0].get("action") != "input"):
            faults.append(f"action {index}: bargeIn, but the next non-talk action is not an input")
        # A background recording goes on only while a later action holds the call.
        background = action.get("action") == "record" and not any(k in action for k in ending)
        if background and not any(_blocks(a) for a in after):
            faults.append(f"action {index}: a background record with nothing after it to hold the call")
    return faults


def ncco_faults(ncco: Any) -> list[str]:
    """Everything Vonage would refuse in `ncco` (the JSON as sent), or [] when it takes it."""
    if not isinstance(ncco, list) or not ncco:
        return ["an NCCO is an array of at least one action"]
    faults = []
    for index, action in enumerate(ncco):
        if not isinstance(action, dict) or action.get("action") not in NCCO_MODELS:
            faults.append(f"action {index}: not one of {sorted(NCCO_MODELS)}")
            continue
        faults += _action_faults(action, f"action {index} ({action['action']})")
    return faults or _order_faults(ncco)


def check_ncco(ncco: Any) -> None:
    """Fail unless Vonage would take `ncco`, read as Vonage reads it: as JSON."""
    faults = ncco_faults(json.loads(json.dumps(ncco)))
    assert faults == [], "\n".join(faults)
