-- Rules the schemas check (schemas/patients.py, schemas/vitals.py), kept here too for the
-- writes the schema cannot judge alone: a patch that sends one side of a rule is checked
-- against the stored other side in the same UPDATE (one round trip, no read-then-write race),
-- and writes from psql are held to the same rules. The schemas map each constraint's name to a
-- message on its field (constraint_errors), so keep the names.
--
-- NOT VALID: rows written before this migration (the old stack accepted them) are not checked,
-- so the migration cannot fail on a ward's history; every new or changed row is. Once old rows
-- are fixed, `ALTER TABLE ... VALIDATE CONSTRAINT ...` makes the rule cover them as well.

ALTER TABLE patients ADD CONSTRAINT patients_dismissal_not_before_admission
    CHECK (dismissal_date >= admission_date) NOT VALID;

-- The same limits as VITAL_LIMITS in schemas/vitals.py: possible, not normal, values.
ALTER TABLE vitals ADD CONSTRAINT vitals_value_possible CHECK (CASE kind
    WHEN 'heart_rate'   THEN value BETWEEN 0 AND 300
    WHEN 'spo2'         THEN value BETWEEN 0 AND 100
    WHEN 'temperature'  THEN value BETWEEN 10 AND 45
    WHEN 'systolic_bp'  THEN value BETWEEN 0 AND 300
    WHEN 'diastolic_bp' THEN value BETWEEN 0 AND 200
    WHEN 'resp_rate'    THEN value BETWEEN 0 AND 100
END) NOT VALID;

ALTER TABLE vitals ADD CONSTRAINT vitals_unit_allowed CHECK (CASE kind
    WHEN 'heart_rate'   THEN unit = 'bpm'
    WHEN 'spo2'         THEN unit = '%'
    WHEN 'temperature'  THEN unit = '°C'
    WHEN 'systolic_bp'  THEN unit = 'mmHg'
    WHEN 'diastolic_bp' THEN unit = 'mmHg'
    WHEN 'resp_rate'    THEN unit = '/min'
END) NOT VALID;
