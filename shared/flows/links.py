"""Short tapedeck links to stored audio: each click mints a fresh signed URL; links can be revoked."""

from __future__ import annotations

import json
import re
import secrets

from shared.core.errors import Gone, NotFound
from shared.core.ports import BlobStore
from shared.flows.calls import read_call
from shared.flows.documents import claim_once

__all__ = ["create_link", "link_key", "resolve_link", "revoke_link"]

_LINK_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def link_key(link_id: str) -> str:
    if not _LINK_ID.match(link_id):
        raise NotFound("no such link")
    return f"links/{link_id}.json"


def create_link(store: BlobStore, object_key: str, now: float, ttl_days: int) -> str:
    """A new unguessable link id for `object_key`, valid for `ttl_days`."""
    document = {"object": object_key, "created": now, "expires": now + ttl_days * 86400, "revoked": False}
    while True:
        link_id = secrets.token_urlsafe(12)
        # 96 random bits never collide in practice; if they did, the next id is as good.
        if claim_once(store, link_key(link_id), document):
            return link_id


def resolve_link(store: BlobStore, link_id: str, now: float) -> str:
    """The object a live link points at; NotFound or Gone otherwise."""
    blob = store.read(link_key(link_id))
    if blob is None:
        raise NotFound("no such link")
    document = json.loads(blob.data)
    if document.get("revoked") or now > float(document.get("expires", 0)):
        raise Gone("this link has expired or was revoked")
    object_key = str(document["object"])
    folder = object_key.split("/")
    if len(folder) > 2 and folder[0] == "calls":
        call = read_call(store, folder[1])
        if call is not None and call.deleted:
            raise Gone("this call's audio was deleted")
    return object_key


def revoke_link(store: BlobStore, link_id: str) -> None:
    blob = store.read(link_key(link_id))
    if blob is None:
        raise NotFound("no such link")
    document = json.loads(blob.data) | {"revoked": True}
    store.write(link_key(link_id), json.dumps(document).encode(), "application/json")
