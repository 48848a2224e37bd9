"""VitalSchema: the vital-sign object of the vitals stream, field for field."""
from marshmallow import EXCLUDE, Schema

from schemas.fields import Choice, DateTime, Float, Id, Related, Text

KINDS = ("heart_rate", "spo2", "temperature", "systolic_bp", "diastolic_bp", "resp_rate")


class VitalSchema(Schema):
    """Loads create/update/patch data and dumps replies, in the protocol's field order."""

    class Meta:
        unknown = EXCLUDE  # unknown and read-only input keys are ignored, as in DRF

    id = Id()
    patient = Related(required=True, to="patients")  # the database checks that the patient exists
    kind = Choice(required=True, choices=KINDS)
    value = Float(required=True)
    unit = Text(required=True, max_length=16)
    measured_at = DateTime(required=True)
    created_at = DateTime(dump_only=True)
