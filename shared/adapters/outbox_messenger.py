"""Messenger that writes each message as JSON under `outbox/` in storage: the embedded default."""

from __future__ import annotations

import contextlib
import json
import time

from shared.core.ports import BlobStore, StorageConflict, TextMessage

__all__ = ["OUTBOX", "OutboxMessenger"]

OUTBOX = "outbox"


class OutboxMessenger:
    def __init__(self, store: BlobStore) -> None:
        self.store = store

    def send(self, message: TextMessage, key: str) -> str:
        object_key = f"{OUTBOX}/{key}.json"
        document = {"to": message.to, "from": message.sender, "text": message.text, "sent_at": time.time()}
        # Create-only: a message already in the outbox is not written (sent) twice.
        with contextlib.suppress(StorageConflict):
            self.store.write(
                object_key, json.dumps(document, indent=2).encode(), "application/json", if_generation_match=0
            )
        return object_key

    def forget(self, key: str) -> int:
        object_key = f"{OUTBOX}/{key}.json"
        if self.store.read(object_key) is None:
            return 0
        self.store.delete(object_key)
        return 1
