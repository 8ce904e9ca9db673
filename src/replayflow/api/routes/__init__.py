"""The HTTP routes, one module per resource; each resource lists its operations
(api/operations.py), which the router serves and api/openapi.py documents."""

from __future__ import annotations

from typing import Any

from replayflow.api.commands import Commands
from replayflow.api.context import ApiContext
from replayflow.api.dlq import DeadLetters
from replayflow.api.openapi import document
from replayflow.api.operations import Operation
from replayflow.api.peers import Peers
from replayflow.api.routes.dlq import DeadLetterRoutes
from replayflow.api.routes.instances import Instances
from replayflow.api.routes.listing import Listing
from replayflow.api.routes.meta import Meta
from replayflow.api.routes.schedules import ScheduleRoutes
from replayflow.api.routes.streams import StreamRoutes
from replayflow.api.routes.ui import Ui
from replayflow.api.routes.workflows import WorkflowRoutes


def operations(api: ApiContext) -> list[Operation]:
    """Every operation of the API, in the order the router tries them."""
    peers = Peers(api)
    served: list[Operation] = []
    cached: dict[str, Any] = {}

    def openapi_document() -> dict[str, Any]:
        if not cached:
            cached.update(document(served))
        return cached

    settings = api.config.settings
    commands = Commands(settings)
    listing = Listing(api, peers)
    served += [
        *Meta(api, openapi_document).operations(),
        *Ui().operations(),
        *StreamRoutes(api, peers).operations(),  # before Instances: its {id} matches all
        *Instances(api, commands, peers, listing.add_queue_positions).operations(),
        *listing.operations(),
        *WorkflowRoutes(api, peers).operations(),
        *DeadLetterRoutes(DeadLetters(settings, api.config.node)).operations(),
        *ScheduleRoutes(api, commands, peers).operations(),
    ]
    return served
