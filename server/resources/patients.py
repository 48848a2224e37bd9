"""The `patients` stream: the ward's patients, CRUD over sql/patients.sql.

    >>> {"stream": "patients", "payload": {"action": "retrieve", "request_id": 7, "pk": 1}}
    <<< {"stream": "patients", "payload": {"errors": [], "data": {"id": 1, "first_name": "Ada", ...},
         "action": "retrieve", "response_status": 200, "request_id": 7}}
"""
from schemas.patients import PatientSchema
from server.resources.declaration import CRUD_PERMISSIONS, Resource
from server.resources.subscribe import ACTIONS

FIELDS = ("id", "first_name", "last_name", "admission_date", "dismissal_date", "updated_at", "created_at")

patients = Resource(
    name="patients",
    verbose_name="Patient",
    schema=PatientSchema,
    actions=ACTIONS,               # CRUD and live changes (its table has the change trigger, 0004)
    permissions=CRUD_PERMISSIONS,  # viewers read and subscribe; editors also write
    filter_fields=FIELDS,
    ordering_fields=FIELDS,
)
