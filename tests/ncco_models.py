"""NCCOs checked against the official vonage_voice models."""

from __future__ import annotations

from typing import Any

from vonage_voice.models import Connect, Record, Talk

NCCO_MODELS = {"talk": Talk, "connect": Connect, "record": Record}


def check_ncco(ncco: list[dict[str, Any]]) -> None:
    """Every action must round-trip through the official vonage_voice models unchanged."""
    for action in ncco:
        fields = {("from_" if k == "from" else k): v for k, v in action.items()}
        if "endpoint" in fields:
            # The models take `contentType` and serialise it as `content-type`.
            fields["endpoint"] = [
                {("contentType" if k == "content-type" else k): v for k, v in e.items()} for e in fields["endpoint"]
            ]
        model = NCCO_MODELS[action["action"]](**fields)
        assert model.model_dump(mode="json", by_alias=True, exclude_none=True) == action
