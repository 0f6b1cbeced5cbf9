-- 0002: measurements TuneWise makes itself. The calibration runner (a separate, long process) writes
-- files that the app ingests; the app stays the only writer of the warehouse.

CREATE TABLE calibration_runs (
    run_id VARCHAR PRIMARY KEY,
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    model VARCHAR NOT NULL,
    method_id VARCHAR NOT NULL REFERENCES methods (method_id),
    task VARCHAR,
    config JSON NOT NULL,
    device VARCHAR NOT NULL,
    library_versions JSON NOT NULL,
    quantity VARCHAR NOT NULL,         -- what was measured, e.g. 'trainable_params' or 'gap_points'
    measured DOUBLE,
    predicted DOUBLE,
    status VARCHAR NOT NULL CHECK (status IN ('ok', 'failed', 'skipped')),
    failure_reason VARCHAR,
    CHECK ((status = 'ok') = (failure_reason IS NULL))
);

CREATE SEQUENCE measurement_ids START 1;
CREATE TABLE memory_measurements (
    measurement_id BIGINT PRIMARY KEY DEFAULT nextval('measurement_ids'),
    run_id VARCHAR REFERENCES calibration_runs (run_id),
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    model VARCHAR NOT NULL,
    method_id VARCHAR NOT NULL REFERENCES methods (method_id),
    config JSON NOT NULL,
    device VARCHAR NOT NULL,
    library_versions JSON NOT NULL,
    measured_bytes BIGINT CHECK (measured_bytes >= 0),   -- peak allocated device memory
    predicted_bytes BIGINT CHECK (predicted_bytes >= 0),
    status VARCHAR NOT NULL CHECK (status IN ('ok', 'failed', 'skipped')),
    failure_reason VARCHAR,
    CHECK ((status = 'ok') = (failure_reason IS NULL))
);
