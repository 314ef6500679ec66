"""PollOutcomes as JSON and back, so both clients' results compare as plain data."""

from __future__ import annotations

import dataclasses
from typing import Any

from monitor.core.models import PollOutcome


def outcome_to_json(outcome: PollOutcome) -> dict[str, Any]:
    data = dataclasses.asdict(outcome)
    data["items"] = [
        {**item, "published": item["published"].isoformat() if item["published"] else None} for item in data["items"]
    ]
    return data
