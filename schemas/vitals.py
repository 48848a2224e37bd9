"""VitalSchema: the vital-sign object of the vitals stream, field for field."""
import datetime as dt
from typing import Any, Mapping

from marshmallow import EXCLUDE, Schema, ValidationError, validates, validates_schema

from schemas.fields import Choice, DateTime, Float, Id, Related, Text

# Each kind's unit and the values a living patient can have (not the normal ones), mirrored by
# the CHECKs of sql/migrations/0007_validation.sql and 0008_news2_kinds.sql.
LIMITS = {
    "heart_rate": ("bpm", 0, 300),
    "spo2": ("%", 0, 100),
    "temperature": ("°C", 10, 45),
    "systolic_bp": ("mmHg", 0, 300),
    "diastolic_bp": ("mmHg", 0, 200),
    "resp_rate": ("/min", 0, 100),
    "supplemental_oxygen": ("L/min", 0, 60),  # the flow given; 0 is breathing air
    "consciousness": ("ACVPU", 0, 4),         # an index into ACVPU
}
KINDS = tuple(LIMITS)
ACVPU = ("Alert", "new Confusion", "Voice", "Pain", "Unresponsive")  # NEWS2's consciousness scale
WHOLE = {"consciousness"}
FUTURE_ALLOWED = dt.timedelta(minutes=5)  # clocks on the ward's devices drift


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

    @validates("measured_at")
    def not_in_the_future(self, value: dt.datetime, **kwargs: Any) -> None:
        if value > dt.datetime.now(dt.timezone.utc) + FUTURE_ALLOWED:
            raise ValidationError("Ensure this value is no more than 5 minutes in the future.")

    @validates_schema(skip_on_field_errors=False)  # with the fields that loaded: all errors at once
    def within_limits(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        if data.get("kind") not in LIMITS:  # a patch without kind: the CHECKs judge the stored one
            return
        unit, lowest, highest = LIMITS[data["kind"]]
        errors = {}
        if "value" in data and data["value"] < lowest:
            errors["value"] = [f"Ensure this value is greater than or equal to {lowest}."]
        elif "value" in data and data["value"] > highest:
            errors["value"] = [f"Ensure this value is less than or equal to {highest}."]
        elif "value" in data and data["kind"] in WHOLE and not data["value"].is_integer():
            errors["value"] = ["A valid integer is required."]
        if "unit" in data and data["unit"] != unit:
            errors["unit"] = [f'"{data["unit"]}" is not a valid unit for {data["kind"]}. Use "{unit}".']
        if errors:
            raise ValidationError(errors)

    def constraint_errors(self, constraint: str | None, data: Mapping[str, Any]) -> dict[str, list[str]] | None:
        """The field message for a CHECK (0007, 0008) that a patch broke against a stored value."""
        if constraint == "vitals_value_possible":
            if "value" in data:
                return {"value": ["Ensure this value is possible for the vital's kind."]}
            return {"kind": ["Ensure the vital's value is possible for this kind."]}
        if constraint == "vitals_unit_allowed":
            if "unit" in data:
                return {"unit": ["Ensure this unit is the one of the vital's kind."]}
            return {"kind": ["Ensure the vital's unit is the one of this kind."]}
        return None
