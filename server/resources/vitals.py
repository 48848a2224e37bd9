"""The `vitals` stream: vital signs measured on the ward's patients, CRUD over sql/vitals.sql.

    >>> {"stream": "vitals", "payload": {"action": "list", "request_id": 1, "filters": {"patient": 1}}}
    <<< {"stream": "vitals", "payload": {"errors": [], "data": [{"id": 1, "patient": 1, "kind": "spo2", ...}],
         "action": "list", "response_status": 200, "request_id": 1}}
"""
from schemas.vitals import VitalSchema
from server.resources.declaration import CRUD_PERMISSIONS, Resource
from server.resources.subscribe import ACTIONS

vitals = Resource(
    name="vitals",
    verbose_name="Vital",
    schema=VitalSchema,
    actions=ACTIONS,               # CRUD and live changes (its table has the change trigger)
    permissions=CRUD_PERMISSIONS,  # viewers read and subscribe; editors also write
    filter_fields=("id", "patient", "kind", "measured_at"),
    ordering_fields=("id", "measured_at"),
)
