-- The two observations NEWS2 scores that the vitals stream lacked (issue #16), in its own terms
-- (a kind, a number, a unit; schemas/vitals.py has the same limits):
--   supplemental_oxygen  L/min   the oxygen flow given, 0 = breathing air;
--   consciousness        ACVPU   0 Alert, 1 new Confusion, 2 responds to Voice, 3 to Pain, 4 Unresponsive.
ALTER TABLE vitals DROP CONSTRAINT vitals_kind_check;
ALTER TABLE vitals ADD CONSTRAINT vitals_kind_check CHECK (kind IN (
    'heart_rate', 'spo2', 'temperature', 'systolic_bp', 'diastolic_bp', 'resp_rate',
    'supplemental_oxygen', 'consciousness'));

-- 0007's rules, with the new kinds; NOT VALID as there (rows already stored are not re-checked).
ALTER TABLE vitals DROP CONSTRAINT vitals_value_possible;
ALTER TABLE vitals ADD CONSTRAINT vitals_value_possible CHECK (CASE kind
    WHEN 'heart_rate'          THEN value BETWEEN 0 AND 300
    WHEN 'spo2'                THEN value BETWEEN 0 AND 100
    WHEN 'temperature'         THEN value BETWEEN 10 AND 45
    WHEN 'systolic_bp'         THEN value BETWEEN 0 AND 300
    WHEN 'diastolic_bp'        THEN value BETWEEN 0 AND 200
    WHEN 'resp_rate'           THEN value BETWEEN 0 AND 100
    WHEN 'supplemental_oxygen' THEN value BETWEEN 0 AND 60
    WHEN 'consciousness'       THEN value IN (0, 1, 2, 3, 4)
END) NOT VALID;

ALTER TABLE vitals DROP CONSTRAINT vitals_unit_allowed;
ALTER TABLE vitals ADD CONSTRAINT vitals_unit_allowed CHECK (CASE kind
    WHEN 'heart_rate'          THEN unit = 'bpm'
    WHEN 'spo2'                THEN unit = '%'
    WHEN 'temperature'         THEN unit = '°C'
    WHEN 'systolic_bp'         THEN unit = 'mmHg'
    WHEN 'diastolic_bp'        THEN unit = 'mmHg'
    WHEN 'resp_rate'           THEN unit = '/min'
    WHEN 'supplemental_oxygen' THEN unit = 'L/min'
    WHEN 'consciousness'       THEN unit = 'ACVPU'
END) NOT VALID;
