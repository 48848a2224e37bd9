"""The `patients` stream: the ward's patients, CRUD over sql/patients.sql.

    >>> {"stream": "patients", "payload": {"action": "retrieve", "request_id": 7, "pk": 1}}
    <<< {"stream": "patients", "payload": {"errors": [], "data": {"id": 1, "first_name": "Ada", ...},
         "action": "retrieve", "response_status": 200, "request_id": 7}}
"""
from schemas.patients import PatientSchema
from server.resources.base import CRUD, CRUD_PERMISSIONS, Resource

FIELDS = ("id", "first_name", "last_name", "admission_date", "dismissal_date", "updated_at", "created_at")

patients = Resource(
    name="patients",
    verbose_name="Patient",
    schema=PatientSchema,
    actions=CRUD,
    permissions=CRUD_PERMISSIONS,  # viewers list and retrieve; editors also write
    filter_fields=FIELDS,
    ordering_fields=FIELDS,
)
