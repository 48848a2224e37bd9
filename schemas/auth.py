"""Schemas of the auth endpoints: the credentials DRF's AuthTokenSerializer takes, and what we answer."""
from marshmallow import EXCLUDE, Schema, fields

from schemas.fields import Text


class CredentialsSchema(Schema):
    """POST /api/auth/token/ and /api/auth/login/, JSON or form; DRF's messages for missing or blank."""

    class Meta:
        unknown = EXCLUDE

    username = Text(required=True, max_length=150)
    # Not trimmed (DRF's trim_whitespace=False): spaces can be part of a password.
    password = Text(required=True, max_length=4096, trim_whitespace=False, load_only=True)


class TokenSchema(Schema):
    """The answer of POST /api/auth/token/: the user's 40-hex key."""

    token = fields.String(required=True)


class MeSchema(Schema):
    """Who the credentials belong to (GET /api/auth/me/, POST /api/auth/login/)."""

    id = fields.Integer(required=True)
    username = fields.String(required=True)
    role = fields.String(required=True, metadata={"enum": ["viewer", "editor"]})
