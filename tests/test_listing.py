"""List options over /ws/: every filter op, ordering, pagination and their 400s."""
from __future__ import annotations

import pytest

from tests.conftest import Socket, create, error, ok

ALLOWED = "id, first_name, last_name, admission_date, dismissal_date, updated_at, created_at"


@pytest.fixture
async def ward(ws: Socket) -> dict[str, dict]:
    """Four patients: two current inpatients, two discharged."""
    return {
        "ada": await create(ws, first_name="Ada", last_name="Lovelace", admission_date="2026-11-01T08:00:00Z"),
        "grace": await create(ws, first_name="Grace", last_name="Hopper", admission_date="2026-11-03T08:00:00Z",
                              dismissal_date="2026-11-10T08:00:00Z"),
        "alan": await create(ws, first_name="Alan", last_name="Turing", admission_date="2026-10-20T08:00:00Z"),
        "edsger": await create(ws, first_name="Edsger", last_name="Dijkstra_100%",
                               admission_date="2026-11-05T08:00:00Z", dismissal_date="2026-11-06T08:00:00Z"),
    }


async def names(ws: Socket, **options) -> list[str]:
    reply = await ws.request("list", **options)
    assert reply["response_status"] == 200, reply
    return [row["first_name"] for row in reply["data"]]


@pytest.mark.parametrize(("filters", "expected"), [
    ({}, ["Ada", "Grace", "Alan", "Edsger"]),
    ({"first_name": "Grace"}, ["Grace"]),
    ({"first_name": "grace"}, []),                                   # exact is case-sensitive
    ({"last_name__icontains": "OVE"}, ["Ada"]),
    ({"last_name__icontains": "_100%"}, ["Edsger"]),                 # % and _ are literal
    ({"last_name__icontains": "%"}, ["Edsger"]),
    ({"admission_date__gt": "2026-11-01T08:00:00Z"}, ["Grace", "Edsger"]),
    ({"admission_date__gte": "2026-11-01T08:00:00Z"}, ["Ada", "Grace", "Edsger"]),
    ({"admission_date__lt": "2026-11-01T08:00:00Z"}, ["Alan"]),
    ({"admission_date__lte": "2026-11-01T10:00:00+02:00"}, ["Ada", "Alan"]),  # offsets honoured
    ({"admission_date": "2026-11-03T08:00:00"}, ["Grace"]),          # naive is UTC
    ({"dismissal_date__isnull": True}, ["Ada", "Alan"]),
    ({"dismissal_date__isnull": False}, ["Grace", "Edsger"]),
    ({"dismissal_date": None}, ["Ada", "Alan"]),
    ({"dismissal_date__isnull": True, "admission_date__gte": "2026-11-01T00:00:00Z"}, ["Ada"]),  # ANDed
    ({"first_name__gt": "B"}, ["Grace", "Edsger"]),
])
async def test_filters(ws: Socket, ward: dict, filters: dict, expected: list[str]) -> None:
    assert await names(ws, filters=filters) == expected


async def test_filter_on_id(ws: Socket, ward: dict) -> None:
    assert await names(ws, filters={"id__gte": ward["alan"]["id"]}) == ["Alan", "Edsger"]
    assert await names(ws, filters={"id": str(ward["ada"]["id"])}) == ["Ada"]


@pytest.mark.parametrize(("ordering", "expected"), [
    ("last_name", ["Edsger", "Grace", "Ada", "Alan"]),
    ("-last_name", ["Alan", "Ada", "Grace", "Edsger"]),
    ("-admission_date", ["Edsger", "Grace", "Ada", "Alan"]),
    ("dismissal_date,first_name", ["Edsger", "Grace", "Ada", "Alan"]),   # nulls last, ascending
    ("-id", ["Edsger", "Alan", "Grace", "Ada"]),
    ("", ["Ada", "Grace", "Alan", "Edsger"]),
])
async def test_ordering(ws: Socket, ward: dict, ordering: str, expected: list[str]) -> None:
    assert await names(ws, ordering=ordering) == expected


async def test_pages_with_filters_and_ordering(ws: Socket, ward: dict) -> None:
    reply = await ws.request("list", limit=1, offset=1, ordering="-admission_date",
                             filters={"dismissal_date__isnull": False})
    assert reply == ok({"count": 2, "results": [ward["grace"]], "limit": 1, "offset": 1}, "list")
    empty = await ws.request("list", limit=5, filters={"first_name": "Nobody"})
    assert empty == ok({"count": 0, "results": [], "limit": 5, "offset": 0}, "list")


@pytest.mark.parametrize(("options", "problems"), [
    ({"filters": {"email": "x"}}, {"filters": [f'Cannot filter on "email"; use one of: {ALLOWED}.']}),
    ({"filters": {"first_name__startswith": "A"}}, {"filters": [
        'Unknown filter operator "startswith" in "first_name__startswith"; '
        "use none, gt, gte, lt, lte, isnull or icontains."]}),
    ({"filters": {"admission_date__icontains": "2026"}},
     {"filters": ['"icontains" works on text fields only, not on "admission_date".']}),
    ({"filters": {"dismissal_date__isnull": "yes"}}, {"filters": ['"dismissal_date__isnull" takes true or false.']}),
    ({"filters": {"first_name": 5}}, {"filters": ['Invalid value for "first_name": Not a valid string.']}),
    ({"filters": {"first_name__icontains": None}},
     {"filters": ['Invalid value for "first_name__icontains": Not a valid string.']}),
    ({"filters": {"id": "one"}}, {"filters": ['Invalid value for "id": A valid integer is required.']}),
    ({"filters": {"first_name": "A\x00"}}, {"filters": ['Invalid value for "first_name": Null characters are not allowed.']}),
    ({"filters": {"last_name__icontains": "\ud800"}},
     {"filters": ['Invalid value for "last_name__icontains": Surrogate characters are not allowed: U+D800.']}),
    ({"filters": {"first_name__": "Ada"}}, {"filters": [
        'Unknown filter operator "" in "first_name__"; use none, gt, gte, lt, lte, isnull or icontains.']}),
    ({"filters": {"admission_date__gt": "soon"}}, {"filters": [
        'Invalid value for "admission_date__gt": Datetime has wrong format. Use one of these formats instead: '
        "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."]}),
    ({"filters": [["first_name", "Ada"]]}, {"filters": ["Expected an object of field lookups, but got list."]}),
    ({"ordering": "height"}, {"ordering": [f'Cannot order by "height"; use one of: {ALLOWED}.']}),
    ({"ordering": ["last_name"]}, {"ordering": ['Expected a string such as "last_name,-admission_date".']}),
    ({"limit": 0}, {"limit": ["Ensure this value is greater than or equal to 1."]}),
    ({"limit": "x"}, {"limit": ["A valid integer is required."]}),
    ({"limit": True}, {"limit": ["A valid integer is required."]}),
    ({"limit": 2.5}, {"limit": ["A valid integer is required."]}),
    ({"limit": 5, "offset": -1}, {"offset": ["Ensure this value is greater than or equal to 0."]}),
    ({"limit": 5, "offset": 10**30}, {"offset": ["Ensure this value is less than or equal to 9223372036854775807."]}),
    ({"limit": 0, "ordering": "x", "filters": {"y": 1}}, {
        "limit": ["Ensure this value is greater than or equal to 1."],
        "ordering": [f'Cannot order by "x"; use one of: {ALLOWED}.'],
        "filters": [f'Cannot filter on "y"; use one of: {ALLOWED}.']}),
])
async def test_bad_list_options_get_one_400_naming_each(ws: Socket, options: dict, problems: dict) -> None:
    assert await ws.request("list", **options) == error([problems], "list", 400)
