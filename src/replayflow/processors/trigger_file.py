"""Triggers declared in a YAML file (`replayflow trigger --file triggers.yaml`):

    triggers:
      - topic: orders               # every key of rf.KafkaTrigger
        format: json
        workflow: checkout
        id: .orderId
        input: .
      - name: payments-to-orders
        topic: payments
        format: cloudevents
        event: payment              # deliver event "payment" to the instance ...
        id: .data.orderId           # ... whose id this gives
        input: .data

Schema files (`schema:`) are relative to the file's folder. Every problem names the
file and the entry.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from replayflow.core.errors import ValidationError
from replayflow.core.triggers import KafkaTrigger

FIELDS = frozenset(f.name for f in dataclasses.fields(KafkaTrigger))


def parse_triggers(text: str, path: str = "<triggers>") -> list[KafkaTrigger]:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        document = YAML(typ="safe").load(text)
    except YAMLError as exc:
        raise ValidationError(f"{path} is not valid YAML: {exc}") from None
    entries = document.get("triggers") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValidationError(f"{path}: expected a mapping with a 'triggers' list")
    triggers = []
    for index, entry in enumerate(entries):
        where = f"{path}: triggers[{index}]"
        if not isinstance(entry, dict):
            raise ValidationError(f"{where} is not a mapping")
        unknown = sorted(set(entry) - FIELDS)
        if unknown:
            raise ValidationError(
                f"{where}: unknown key(s) {', '.join(map(str, unknown))} "
                f"(known: {', '.join(sorted(FIELDS))})"
            )
        values: dict[str, Any] = dict(entry)
        if "version" in values and values["version"] is not None:
            values["version"] = str(values["version"])
        try:
            trigger = KafkaTrigger(**values)
            trigger.trigger_name  # noqa: B018 - a trigger without a name fails here
        except (TypeError, ValidationError) as exc:
            raise ValidationError(f"{where}: {exc}") from None
        triggers.append(trigger)
    return triggers


def load_triggers(path: str | Path) -> tuple[list[KafkaTrigger], Path]:
    """The triggers of a file, and the folder their schema paths are relative to."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"cannot read the triggers file {str(path)!r}: {exc}") from None
    return parse_triggers(text, str(path)), path.resolve().parent
