-- The vitals resource (server/resources/vitals.py). Every query returns the
-- columns VitalSchema dumps, in its order, so each action is one round trip.

-- name: retrieve
SELECT id, patient, kind, value, unit, measured_at, created_at
FROM vitals WHERE id = %(pk)s;

-- name: list
-- {where} and {order_by} are filled from the resource's declared filter fields
-- (server/resources/listing.py); every value travels as a parameter.
SELECT id, patient, kind, value, unit, measured_at, created_at,
       count(*) OVER () AS total_count
FROM vitals WHERE {where} ORDER BY {order_by}
LIMIT %(limit)s OFFSET %(offset)s;

-- name: count
SELECT count(*) FROM vitals WHERE {where};

-- name: create
INSERT INTO vitals (patient, kind, value, unit, measured_at)
VALUES (%(patient)s, %(kind)s, %(value)s, %(unit)s, %(measured_at)s)
RETURNING id, patient, kind, value, unit, measured_at, created_at;

-- name: update
-- Sets only the fields the request carried (the <field>__set flags), as DRF does for
-- update and patch alike.
UPDATE vitals SET
    patient     = CASE WHEN %(patient__set)s THEN %(patient)s ELSE patient END,
    kind        = CASE WHEN %(kind__set)s THEN %(kind)s ELSE kind END,
    value       = CASE WHEN %(value__set)s THEN %(value)s ELSE value END,
    unit        = CASE WHEN %(unit__set)s THEN %(unit)s ELSE unit END,
    measured_at = CASE WHEN %(measured_at__set)s THEN %(measured_at)s ELSE measured_at END
WHERE id = %(pk)s
RETURNING id, patient, kind, value, unit, measured_at, created_at;

-- name: delete
DELETE FROM vitals WHERE id = %(pk)s RETURNING id;
