-- 0001: the evidence core. Who published what (sources), on which model and task, with which method.
-- Dimension tables are keyed by surrogate ids; `results` keeps the raw published method name and value
-- beside their normalised forms so nothing is lost in normalisation.

CREATE TABLE task_types (
    task_type VARCHAR PRIMARY KEY,
    description VARCHAR NOT NULL
);

-- The conventions of data/published_results_sources.md.
INSERT INTO task_types VALUES
    ('classification', 'label prediction; multiple-choice commonsense QA counts here'),
    ('extraction', 'span or structure extraction, e.g. extractive QA'),
    ('generation', 'free-text generation: data-to-text, summarisation'),
    ('reasoning-math', 'math word problems and arithmetic reasoning'),
    ('code', 'code generation and code continued pretraining'),
    ('instruction', 'instruction tuning, judged by chat or knowledge benchmarks');

-- A mirror of core.registry.METHODS, refreshed on every writable open (the registry stays the one source).
CREATE TABLE methods (
    method_id VARCHAR PRIMARY KEY,
    name VARCHAR NOT NULL,
    family VARCHAR NOT NULL,
    estimable BOOLEAN NOT NULL
);

CREATE SEQUENCE source_ids START 1;
CREATE TABLE sources (
    source_id INTEGER PRIMARY KEY DEFAULT nextval('source_ids'),
    citation VARCHAR NOT NULL,
    table_ref VARCHAR NOT NULL,        -- the table or figure of the citation the rows come from
    where_read VARCHAR,                -- which copy was read (paper tables, official README, translation)
    coverage VARCHAR,
    caveats VARCHAR,
    UNIQUE (citation, table_ref)
);

CREATE SEQUENCE model_ids START 1;
CREATE TABLE models (
    model_id INTEGER PRIMARY KEY DEFAULT nextval('model_ids'),
    name VARCHAR NOT NULL,             -- as published, e.g. 'RoBERTa-base'
    params_b DOUBLE NOT NULL CHECK (params_b > 0),
    family VARCHAR NOT NULL,
    catalogue_id VARCHAR,              -- data/catalogue id when the name is a known alias, else NULL
    UNIQUE (name, params_b)
);

CREATE SEQUENCE task_ids START 1;
CREATE TABLE tasks (
    task_id INTEGER PRIMARY KEY DEFAULT nextval('task_ids'),
    name VARCHAR NOT NULL,
    task_type VARCHAR NOT NULL REFERENCES task_types (task_type),
    metric VARCHAR NOT NULL,
    metric_kind VARCHAR NOT NULL CHECK (metric_kind IN ('target', 'forgetting')),
    higher_is_better BOOLEAN NOT NULL,
    distribution VARCHAR NOT NULL CHECK (distribution IN ('in-domain', 'ood', 'adversarial')),
    UNIQUE (name, task_type, metric, distribution)
);

-- A setup is one experimental configuration of one source table: the same model, task (with its metric and
-- distribution), training-set size and epochs. Methods compared on a setup are comparable: the FFT-vs-PEFT
-- pair key. Sizes and epochs are NULL when the source does not say; a NULL matches only NULL (the writer
-- looks setups up NULL-safely, which a UNIQUE constraint cannot express).
CREATE SEQUENCE setup_ids START 1;
CREATE TABLE setups (
    setup_id INTEGER PRIMARY KEY DEFAULT nextval('setup_ids'),
    source_id INTEGER NOT NULL REFERENCES sources (source_id),
    model_id INTEGER NOT NULL REFERENCES models (model_id),
    task_id INTEGER NOT NULL REFERENCES tasks (task_id),
    train_examples BIGINT CHECK (train_examples >= 0),
    train_tokens BIGINT CHECK (train_tokens >= 0),     -- continued pretraining, e.g. '4B_tokens'
    epochs DOUBLE CHECK (epochs > 0)                   -- stated in the notes, e.g. 'epochs=4'
);

CREATE SEQUENCE import_ids START 1;
CREATE TABLE imports (
    import_id INTEGER PRIMARY KEY DEFAULT nextval('import_ids'),
    file_name VARCHAR NOT NULL,
    sha256 VARCHAR UNIQUE,             -- of the file's bytes; NULL for rows added from a DataFrame
    origin VARCHAR NOT NULL CHECK (origin IN ('published', 'user', 'calibration')),
    row_count INTEGER NOT NULL,
    other_methods INTEGER NOT NULL,    -- rows whose method name could not be normalised (method 'other')
    imported_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE SEQUENCE result_ids START 1;
CREATE TABLE results (
    result_id BIGINT PRIMARY KEY DEFAULT nextval('result_ids'),
    import_id INTEGER NOT NULL REFERENCES imports (import_id),
    source_id INTEGER NOT NULL REFERENCES sources (source_id),
    model_id INTEGER NOT NULL REFERENCES models (model_id),
    task_id INTEGER NOT NULL REFERENCES tasks (task_id),
    setup_id INTEGER NOT NULL REFERENCES setups (setup_id),  -- same source, model and task as above
    method_id VARCHAR NOT NULL REFERENCES methods (method_id),
    method_raw VARCHAR NOT NULL,       -- the method name exactly as published
    rank INTEGER CHECK (rank > 0),
    alpha DOUBLE,
    targets VARCHAR,
    top_layers INTEGER CHECK (top_layers > 0),
    quantization VARCHAR,
    variant VARCHAR,
    quoted_from_prior_work BOOLEAN NOT NULL,   -- '*': the source quotes this number from prior work
    restricted_setup BOOLEAN NOT NULL,         -- '+': a restricted setup
    trainable_pct DOUBLE CHECK (trainable_pct BETWEEN 0 AND 100),
    metric_value DOUBLE NOT NULL,              -- as published, on the source's own scale
    value_scale VARCHAR NOT NULL CHECK (value_scale IN ('0-100', 'fraction', '0-10', 'unbounded')),
    value_100 DOUBLE,                          -- on a 0-100 scale; NULL for unbounded metrics
    seed INTEGER,
    notes VARCHAR,
    origin VARCHAR NOT NULL CHECK (origin IN ('published', 'user', 'calibration')),
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- The seed paper's relative gaps (Liu et al., 'Look Within or Look Beyond?'), numeric and qualitative.
CREATE TABLE claims (
    claim_id VARCHAR PRIMARY KEY,
    citation VARCHAR NOT NULL,
    base_model VARCHAR NOT NULL,
    params_b DOUBLE,
    catalogue_id VARCHAR,
    task VARCHAR NOT NULL,
    task_type VARCHAR NOT NULL,        -- a task type, or 'mixed' for averages over several
    train_examples VARCHAR,            -- as written, e.g. '51000' or '5 to 200 per class'
    comparison VARCHAR NOT NULL,       -- e.g. 'FFT minus LoRA'
    metric VARCHAR NOT NULL,
    claim_value DOUBLE,
    qualitative BOOLEAN NOT NULL,      -- no number in the text; the finding is in notes
    method_id VARCHAR REFERENCES methods (method_id),
    peft_minus_fft_100 DOUBLE,         -- the claim as PEFT minus FFT on a 0-100 scale, when it is a gap
    distribution VARCHAR NOT NULL CHECK (distribution IN ('in-domain', 'ood', 'adversarial', 'mixed')),
    notes VARCHAR
);
