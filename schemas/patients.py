"""PatientSchema: the patient object of the protocol, field for field."""
from typing import Any, Mapping

from marshmallow import EXCLUDE, Schema, ValidationError, validates_schema

from schemas.fields import DateTime, Id, Text

NOT_BEFORE_ADMISSION = "Ensure this value is not before the admission date."
NOT_AFTER_DISMISSAL = "Ensure this value is not after the dismissal date."


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

    @validates_schema(skip_on_field_errors=True)  # as DRF's validate(): once every field is valid
    def dismissal_not_before_admission(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        admitted, dismissed = data.get("admission_date"), data.get("dismissal_date")
        if admitted is not None and dismissed is not None and dismissed < admitted:
            raise ValidationError({"dismissal_date": [NOT_BEFORE_ADMISSION]})

    def constraint_errors(self, constraint: str | None, data: Mapping[str, Any]) -> dict[str, list[str]] | None:
        """The field message for a CHECK of sql/migrations/0007_validation.sql that a write broke:
        a patch that sent one date, judged against the stored other one."""
        if constraint != "patients_dismissal_not_before_admission":
            return None
        if "admission_date" in data and "dismissal_date" not in data:
            return {"admission_date": [NOT_AFTER_DISMISSAL]}
        return {"dismissal_date": [NOT_BEFORE_ADMISSION]}
