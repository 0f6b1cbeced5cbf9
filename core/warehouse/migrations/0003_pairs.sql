-- 0003: matched pairs. Each PEFT result is paired with full fine-tuning on the same setup (same source
-- table, model, task with metric and distribution, training-set size and epochs; see `setups`); the gap is
-- PEFT minus FFT on the 0-100 scale.
--
-- Several FFT rows on one setup (e.g. a number quoted from prior work and the source's own replication):
-- the source's own row is preferred, then an unrestricted one, then the first imported. `fft_candidates`
-- counts them and `fft_alt_value_100` shows the runner-up, so nothing is hidden.
--
-- `pairs` is the definition; `pair_rows` holds its rows for fast dashboard reads. The single writer
-- refreshes `pair_rows` from `pairs` for the setups each import touches, in the import's transaction.

CREATE VIEW results_wide AS
SELECT
    r.result_id, s.citation AS source, s.table_ref AS source_table,
    m.name AS model, m.params_b, m.family AS model_family, m.catalogue_id,
    t.name AS task, t.task_type, t.metric, t.metric_kind, t.higher_is_better, t.distribution,
    r.method_id, me.name AS method_name, me.family AS method_family, me.estimable, r.method_raw,
    r.rank, r.alpha, r.targets, r.top_layers, r.quantization, r.variant,
    r.quoted_from_prior_work, r.restricted_setup, r.trainable_pct,
    su.train_examples, su.train_tokens, su.epochs,
    r.metric_value, r.value_scale, r.value_100, r.seed, r.notes, r.origin, r.created_at,
    r.source_id, r.model_id, r.task_id, r.setup_id, r.import_id
FROM results r
JOIN sources s ON s.source_id = r.source_id
JOIN models m ON m.model_id = r.model_id
JOIN tasks t ON t.task_id = r.task_id
JOIN setups su ON su.setup_id = r.setup_id
JOIN methods me ON me.method_id = r.method_id;

CREATE VIEW pairs AS
WITH fft AS (
    SELECT
        r.setup_id, r.result_id, r.method_raw, r.quoted_from_prior_work, r.metric_value, r.value_100,
        row_number() OVER (
            PARTITION BY r.setup_id ORDER BY r.quoted_from_prior_work, r.restricted_setup, r.result_id
        ) AS choice,
        count(*) OVER (PARTITION BY r.setup_id) AS candidates
    FROM results r
    JOIN methods me ON me.method_id = r.method_id AND me.family = 'full'
)
SELECT
    p.result_id AS peft_result_id, f.result_id AS fft_result_id,
    s.citation AS source, s.table_ref AS source_table,
    m.name AS model, m.params_b, m.family AS model_family,
    t.name AS task, t.task_type, t.metric, t.metric_kind, t.higher_is_better, t.distribution,
    su.train_examples, su.train_tokens, su.epochs,
    p.method_id, p.method_raw, p.rank, p.targets, p.variant, p.quantization, p.trainable_pct,
    p.quoted_from_prior_work AS peft_quoted, p.restricted_setup AS peft_restricted,
    p.metric_value AS peft_value, p.value_100 AS peft_value_100,
    f.method_raw AS fft_method_raw, f.quoted_from_prior_work AS fft_quoted,
    f.metric_value AS fft_value, f.value_100 AS fft_value_100,
    f.candidates AS fft_candidates, runner_up.value_100 AS fft_alt_value_100,
    round(p.value_100 - f.value_100, 6) AS gap,  -- rounded: published values have at most 4 decimals
    -- positive when PEFT did better, whichever way the metric points
    round(CASE WHEN t.higher_is_better THEN p.value_100 - f.value_100 ELSE f.value_100 - p.value_100 END, 6)
        AS peft_advantage,
    p.origin, p.source_id, p.model_id, p.task_id, p.setup_id
FROM results p
JOIN methods pm ON pm.method_id = p.method_id AND pm.family NOT IN ('full', 'baseline')
JOIN fft f ON f.setup_id = p.setup_id AND f.choice = 1
LEFT JOIN fft runner_up ON runner_up.setup_id = p.setup_id AND runner_up.choice = 2
JOIN setups su ON su.setup_id = p.setup_id
JOIN sources s ON s.source_id = p.source_id
JOIN models m ON m.model_id = p.model_id
JOIN tasks t ON t.task_id = p.task_id;

CREATE TABLE pair_rows AS SELECT * FROM pairs WITH NO DATA;
-- results already in an upgraded file; clustered by the dashboard's main filters (see importer.refresh_pairs)
INSERT INTO pair_rows SELECT * FROM pairs ORDER BY task_type, method_id, peft_result_id;
