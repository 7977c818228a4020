"""Use cases of the starter library: list and read the starters, and create a workspace's
draft journey from one (its slots mapped to the workspace's templates and segments)."""

import orjson

from kit.errors import InvalidArgument
from services.journey import starters
from services.journey.service import JourneyService


def starter_dict(found: starters.Starter) -> dict:
    return {"id": found.id, "name": found.name, "description": found.description, "source": found.source,
            "templates": starters.template_slots(found),
            "segments": [{"slot": s.id, "description": s.description, "rules": s.rules} for s in found.segments],
            "definition": starters.definition(found.id)}


class StarterLibrary:
    def __init__(self, service: JourneyService) -> None:
        self.service = service

    def list(self) -> list[dict]:
        return [starter_dict(s) for s in starters.STARTERS.values()]

    def get(self, starter_id: str) -> dict:
        return starter_dict(starters.starter(starter_id))

    async def create(self, workspace_id: str, actor: str, journey_id: str, name: str, description: str,
                     starter_id: str, templates: dict[str, str], segments: dict[str, str]) -> dict:
        found = starters.starter(starter_id, field="starter")
        tree, template_ids, segment_ids = starters.instantiate(found, templates, segments)
        # each slot checked on its own, so the error names the slot the workspace has to map
        for kind, ids in (("templates", template_ids), ("segments", segment_ids)):
            for slot, ref in ids.items():
                try:
                    named = {ref: f"{kind}.{slot}"}
                    await self.service.platform.check_references(
                        workspace_id, named if kind == "templates" else {}, named if kind == "segments" else {})
                except InvalidArgument:
                    hint = " (the slot's default; create it or map the slot)" if ref == slot else ""
                    raise InvalidArgument(f"{kind}.{slot}: unknown {kind[:-1]} {ref!r}{hint}",
                                          field=f"{kind}.{slot}") from None
        return await self.service.create(workspace_id, actor, journey_id, name or found.name,
                                         description if description else found.description,
                                         orjson.dumps(tree).decode(), starter=starter_id)
