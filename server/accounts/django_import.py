"""import-django: users, token keys and patients from the old stack's database, idempotently."""
from __future__ import annotations

import dataclasses
import re
from typing import Any

from server.accounts.secret import Sealer, digest
from server.accounts.users import TOKEN_SHAPE, USERNAME
from server.store.db import Database, Session

# Every user of the old stack could write (DRF's IsAuthenticated), so every imported user is
# an editor, staff or not: nobody loses what they could do. Demote with SQL if needed.
IMPORTED_ROLE = "editor"
TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?")


def quote_table(name: str) -> str:
    """A table name (optionally schema-qualified) quoted for a {fragment}; refuses anything else."""
    if not TABLE_NAME.fullmatch(name):
        raise ValueError(f"not a table name: {name!r}")
    return ".".join(f'"{part}"' for part in name.split("."))


@dataclasses.dataclass
class Counts:
    created: int = 0
    updated: int = 0

    def add(self, row: dict[str, Any] | None) -> None:
        if row is not None:
            self.created += row["created"]
            self.updated += not row["created"]

    def __str__(self) -> str:
        return f"{self.created} new, {self.updated} updated"


@dataclasses.dataclass
class ImportReport:
    users: Counts = dataclasses.field(default_factory=Counts)
    tokens: Counts = dataclasses.field(default_factory=Counts)
    patients: Counts = dataclasses.field(default_factory=Counts)
    skipped: list[str] = dataclasses.field(default_factory=list)

    def lines(self) -> list[str]:
        summary = f"users: {self.users}; tokens: {self.tokens}; patients: {self.patients}"
        return [summary, *self.skipped]


async def _read_source(source: Database, patients_table: str) -> tuple[list[Any], list[Any], list[Any]]:
    users = await source.fetch_all("django_import.source_users")
    has_tokens = await source.fetch_one("django_import.source_has_table", {"name": "authtoken_token"})
    tokens = await source.fetch_all("django_import.source_tokens") if has_tokens and has_tokens["exists"] else []
    patients = await source.fetch_all("django_import.source_patients", patients_table=quote_table(patients_table))
    return users, tokens, patients


async def _import_users(session: Session, users: list[Any], report: ImportReport) -> None:
    for user in users:
        if not USERNAME.fullmatch(user["username"]):
            report.skipped.append(f"skipped user {user['username']!r}: not a valid username here")
            continue
        password = user["password"] or "!"  # Django's unusable passwords start with "!" too
        row = await session.fetch_one("django_import.upsert_user", {
            "username": user["username"], "password": password,
            "is_active": user["is_active"], "role": IMPORTED_ROLE})
        report.users.add(row)
        if not password.startswith(("pbkdf2_sha256$", "!")):
            scheme = password.partition("$")[0]
            report.skipped.append(f"user {user['username']!r}: {scheme} hashes cannot be checked here; "
                                  f"set a password with 'dashboard-server passwd'")


async def _import_tokens(session: Session, tokens: list[Any], sealer: Sealer, report: ImportReport) -> None:
    for token in tokens:
        if not TOKEN_SHAPE.fullmatch(token["key"]):
            report.skipped.append(f"skipped the token of {token['username']!r}: not 40 lowercase hex")
            continue
        report.tokens.add(await session.fetch_one("django_import.upsert_token", {
            "username": token["username"], "digest": digest(token["key"]), "sealed": sealer.seal(token["key"])}))


async def import_django(target: Database, source: Database, sealer: Sealer,
                        patients_table: str = "patients_patient") -> ImportReport:
    """Copy the Django database's users (with their password hashes), token keys and patients
    (with their ids) into ours, in one transaction; a second run changes nothing."""
    users, tokens, patients = await _read_source(source, patients_table)
    report = ImportReport()
    async with target.session() as session, session.transaction():
        await _import_users(session, users, report)
        await _import_tokens(session, tokens, sealer, report)
        for patient in patients:
            report.patients.add(await session.fetch_one("django_import.upsert_patient", patient))
        await session.execute("django_import.bump_patient_ids")
    return report
