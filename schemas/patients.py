"""PatientSchema: the patient object of the protocol, field for field."""
from marshmallow import EXCLUDE, Schema

from schemas.fields import DateTime, Id, Text


class PatientSchema(Schema):
    """Loads create/update/patch data and dumps replies, in the protocol's field order."""

    class Meta:
        unknown = EXCLUDE  # unknown and read-only input keys are ignored, as in DRF

    id = Id()
    first_name = Text(required=True, max_length=240)
    last_name = Text(required=True, max_length=240)
    admission_date = DateTime(required=True)
    dismissal_date = DateTime(allow_none=True)
    updated_at = DateTime(dump_only=True)
    created_at = DateTime(dump_only=True)
