"""The registry of resources: each one served as a /ws/ stream and under /api/."""
from __future__ import annotations

from typing import Mapping

from server.resources.crud import QUERIES_FOR
from server.resources.declaration import Resource
from server.resources.subscribe import ACTIONS

# isort: split
from server.resources.patients import patients
from server.resources.vitals import vitals

RESOURCES: tuple[Resource, ...] = (
    patients,
    vitals,
)


def check_queries(resources: tuple[Resource, ...], queries: Mapping[str, str]) -> None:
    """Refuse to start when a resource's action needs a query its sql file lacks."""
    missing = sorted(
        resource.query(name)
        for resource in resources
        for action in resource.actions
        if resource.actions[action] is ACTIONS.get(action)
        for name in QUERIES_FOR[action]
        if resource.query(name) not in queries
    )
    if missing:
        raise ValueError(f"missing SQL queries: {', '.join(missing)}")
