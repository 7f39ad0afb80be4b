"""Short tapedeck links to stored audio: each click mints a fresh signed URL; links can be revoked."""

from __future__ import annotations

import json
import re
import secrets

from shared.core.call_record import call_key
from shared.core.errors import Gone, NotFound
from shared.core.ports import BlobStore
from shared.flows.calls import read_call
from shared.flows.documents import claim_once, document_of

__all__ = ["create_link", "erase_link", "link_key", "link_mark_key", "resolve_link", "revoke_link"]

_LINK_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
# What an erased link's document becomes: it answers 410 and names nothing.
_ERASED = {"erased": True}


def link_key(link_id: str) -> str:
    if not _LINK_ID.match(link_id):
        raise NotFound("no such link")
    return f"links/{link_id}.json"


def link_mark_key(conversation_uuid: str, link_id: str) -> str:
    """The mark a call's folder keeps of each link to its audio, so that erasing the call finds them."""
    return call_key(conversation_uuid, f"links/{link_id}.json")


def create_link(store: BlobStore, object_key: str, now: float, ttl_days: int) -> str:
    """A new unguessable link id for `object_key`, valid for `ttl_days`."""
    document = {"object": object_key, "created": now, "expires": now + ttl_days * 86400, "revoked": False}
    conversation_uuid = _call_of(object_key)
    while True:
        link_id = secrets.token_urlsafe(12)
        if conversation_uuid is not None:
            # Marked first: a link is never made that erasing its call could miss.
            store.write(link_mark_key(conversation_uuid, link_id), b"{}", "application/json")
        # 96 random bits never collide in practice; if they did, the next id is as good.
        if claim_once(store, link_key(link_id), document):
            return link_id


def erase_link(store: BlobStore, link_id: str) -> int:
    """Make a link answer 410 for good, keeping nothing of what it pointed at; returns 1 when
    there was a link to erase."""
    found = document_of(store.read(link_key(link_id)))
    if found is None or found == _ERASED:
        return 0
    store.write(link_key(link_id), json.dumps(_ERASED).encode(), "application/json")
    return 1


def _call_of(object_key: str) -> str | None:
    folder = object_key.split("/")
    return folder[1] if len(folder) > 2 and folder[0] == "calls" else None


def resolve_link(store: BlobStore, link_id: str, now: float) -> str:
    """The object a live link points at; NotFound or Gone otherwise."""
    blob = store.read(link_key(link_id))
    if blob is None:
        raise NotFound("no such link")
    document = json.loads(blob.data)
    if document == _ERASED:
        raise Gone("this link's call was erased")
    if document.get("revoked") or now > float(document.get("expires", 0)):
        raise Gone("this link has expired or was revoked")
    object_key = str(document["object"])
    conversation_uuid = _call_of(object_key)
    if conversation_uuid is not None:
        call = read_call(store, conversation_uuid)
        # No record: the call was erased, by a version that kept no mark of its links.
        if call is None or call.deleted:
            raise Gone("this call's audio was deleted")
    return object_key


def revoke_link(store: BlobStore, link_id: str) -> None:
    blob = store.read(link_key(link_id))
    if blob is None:
        raise NotFound("no such link")
    document = json.loads(blob.data) | {"revoked": True}
    store.write(link_key(link_id), json.dumps(document).encode(), "application/json")
