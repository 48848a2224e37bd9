-- `dashboard-server import-django` (server/accounts/django_import.py). The source_* queries run on the
-- old stack's Django database; the others on ours, in one transaction. Every upsert changes a
-- row only when the Django side differs, so a second run changes nothing.

-- name: source_has_table
SELECT to_regclass(%(name)s) IS NOT NULL AS exists;

-- name: source_users
SELECT username, password, is_active, is_staff, is_superuser FROM auth_user ORDER BY id;

-- name: source_tokens
SELECT u.username, t.key FROM authtoken_token t JOIN auth_user u ON u.id = t.user_id ORDER BY u.id;

-- name: source_patients
-- {patients_table} is a quoted identifier (server/store/db.py quote_table), never client input.
SELECT id, first_name, last_name, admission_date, dismissal_date, created_at, updated_at
FROM {patients_table} ORDER BY id;

-- name: upsert_user
-- The password is replaced only when Django's hash changed since the last import, so the
-- upgrade to scrypt at the first login here is never undone; a local deactivation sticks.
-- The role of an existing user is kept.
INSERT INTO users (username, password, is_active, role, imported_password)
VALUES (%(username)s, %(password)s, %(is_active)s, %(role)s, %(password)s)
ON CONFLICT (username) DO UPDATE SET
    password = EXCLUDED.password,
    imported_password = EXCLUDED.imported_password,
    is_active = users.is_active AND EXCLUDED.is_active
WHERE users.imported_password IS DISTINCT FROM EXCLUDED.imported_password
   OR (users.is_active AND NOT EXCLUDED.is_active)
RETURNING (xmax = 0) AS created;

-- name: upsert_token
INSERT INTO tokens (user_id, digest, sealed)
SELECT id, %(digest)s, %(sealed)s FROM users WHERE username = %(username)s
ON CONFLICT (user_id) DO UPDATE SET digest = EXCLUDED.digest, sealed = EXCLUDED.sealed, created_at = now()
WHERE tokens.digest IS DISTINCT FROM EXCLUDED.digest
RETURNING (xmax = 0) AS created;

-- name: upsert_patient
-- Ids are kept. updated_at follows the trigger (now) when a row really changes.
INSERT INTO patients (id, first_name, last_name, admission_date, dismissal_date, created_at, updated_at)
VALUES (%(id)s, %(first_name)s, %(last_name)s, %(admission_date)s, %(dismissal_date)s,
        %(created_at)s, %(updated_at)s)
ON CONFLICT (id) DO UPDATE SET
    first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,
    admission_date = EXCLUDED.admission_date, dismissal_date = EXCLUDED.dismissal_date,
    created_at = EXCLUDED.created_at
WHERE (patients.first_name, patients.last_name, patients.admission_date, patients.dismissal_date,
       patients.created_at)
   IS DISTINCT FROM (EXCLUDED.first_name, EXCLUDED.last_name, EXCLUDED.admission_date,
                     EXCLUDED.dismissal_date, EXCLUDED.created_at)
RETURNING (xmax = 0) AS created;

-- name: bump_patient_ids
-- New patients must get ids past the imported ones; the sequence never moves backwards.
SELECT setval(pg_get_serial_sequence('patients', 'id'), top.max_id)
FROM (SELECT max(id) AS max_id FROM patients) top, pg_sequences s
WHERE quote_ident(s.schemaname) || '.' || quote_ident(s.sequencename) = pg_get_serial_sequence('patients', 'id')
  AND top.max_id > coalesce(s.last_value, 0);
