-- The patients resource (server/resources/patients.py). Every query returns the
-- columns PatientSchema dumps, in its order, so each action is one round trip.

-- name: retrieve
SELECT id, first_name, last_name, admission_date, dismissal_date, updated_at, created_at
FROM patients WHERE id = %(pk)s;

-- name: retrieve_many
-- Optional: retrieves arriving together are answered by one query (server/store/batching.py).
SELECT id, first_name, last_name, admission_date, dismissal_date, updated_at, created_at
FROM patients WHERE id = ANY(%(keys)s);

-- name: list
-- {where} and {order_by} are filled from the resource's declared filter fields
-- (server/resources/listing.py); every value travels as a parameter. The count is a scalar subquery
-- (same statement, same snapshot): count(*) OVER () would materialize every matching row
-- for each page, twice the work for a 50-row page of 1,000 (docs/benchmarks.md).
SELECT id, first_name, last_name, admission_date, dismissal_date, updated_at, created_at,
       (SELECT count(*) FROM patients WHERE {where}) AS total_count
FROM patients WHERE {where} ORDER BY {order_by}
LIMIT %(limit)s OFFSET %(offset)s;

-- name: count
SELECT count(*) FROM patients WHERE {where};

-- name: create
INSERT INTO patients (first_name, last_name, admission_date, dismissal_date)
VALUES (%(first_name)s, %(last_name)s, %(admission_date)s, %(dismissal_date)s)
RETURNING id, first_name, last_name, admission_date, dismissal_date, updated_at, created_at;

-- name: update
-- Sets only the fields the request carried (the <field>__set flags), as DRF does for
-- update and patch alike; the trigger bumps updated_at.
UPDATE patients SET
    first_name     = CASE WHEN %(first_name__set)s THEN %(first_name)s ELSE first_name END,
    last_name      = CASE WHEN %(last_name__set)s THEN %(last_name)s ELSE last_name END,
    admission_date = CASE WHEN %(admission_date__set)s THEN %(admission_date)s ELSE admission_date END,
    dismissal_date = CASE WHEN %(dismissal_date__set)s THEN %(dismissal_date)s ELSE dismissal_date END
WHERE id = %(pk)s
RETURNING id, first_name, last_name, admission_date, dismissal_date, updated_at, created_at;

-- name: delete
DELETE FROM patients WHERE id = %(pk)s RETURNING id;
