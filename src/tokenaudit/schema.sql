-- tokenaudit schema, version 1. Applied by migrations.py; documented in docs/schema.md.
-- Money is DECIMAL(38,12) everywhere; timestamps are TIMESTAMP holding UTC instants.

CREATE TABLE IF NOT EXISTS meta (
    key   VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);

CREATE SEQUENCE IF NOT EXISTS file_id_seq START 1;

-- One row per input file that was loaded (its content hash makes reloads no-ops).
CREATE TABLE IF NOT EXISTS files (
    file_id          INTEGER PRIMARY KEY,
    path             VARCHAR NOT NULL,
    sha256           VARCHAR NOT NULL UNIQUE,
    size_bytes       BIGINT NOT NULL,
    format           VARCHAR NOT NULL,
    kind             VARCHAR NOT NULL,          -- usage | billing | outcomes
    records_read     BIGINT NOT NULL,
    rows_loaded      BIGINT NOT NULL,
    rows_quarantined BIGINT NOT NULL,
    loaded_at        TIMESTAMP NOT NULL
);

-- Records that were read but not loaded: line and reason, never the raw text.
CREATE TABLE IF NOT EXISTS quarantine (
    file_id INTEGER NOT NULL,
    line_no BIGINT NOT NULL,
    reason  VARCHAR NOT NULL
);

-- One row per model call (request logs and traces). Token categories never overlap.
CREATE TABLE IF NOT EXISTS usage_events (
    file_id               INTEGER NOT NULL,
    line_no               BIGINT NOT NULL,
    source                VARCHAR NOT NULL,     -- input format name
    ts                    TIMESTAMP NOT NULL,   -- UTC
    request_id            VARCHAR,
    trace_id              VARCHAR,
    span_id               VARCHAR,
    parent_span_id        VARCHAR,
    session_id            VARCHAR,
    provider              VARCHAR,
    model                 VARCHAR NOT NULL,     -- as logged
    model_id              VARCHAR,              -- canonical priced model (NULL = unpriced)
    service_tier          VARCHAR,              -- standard | batch | priority | flex
    workflow              VARCHAR,
    team                  VARCHAR,
    tenant                VARCHAR,
    "user"                VARCHAR,
    agent                 VARCHAR,
    prompt_version        VARCHAR,
    environment           VARCHAR,
    project               VARCHAR,
    api_key_hash          VARCHAR,              -- keyed hash; the raw key is never stored
    api_key_last4         VARCHAR,
    input_tokens          BIGINT NOT NULL,      -- uncached input only
    cache_read_tokens     BIGINT NOT NULL,
    cache_write_tokens    BIGINT NOT NULL,      -- 5-minute (or unspecified TTL) cache writes
    cache_write_1h_tokens BIGINT NOT NULL,      -- 1-hour cache writes
    output_tokens         BIGINT NOT NULL,      -- all output, reasoning included
    reasoning_tokens      BIGINT NOT NULL,      -- informational subset of output_tokens
    attempt               INTEGER NOT NULL,     -- 1 = first try
    status                VARCHAR NOT NULL,     -- ok | error
    error_type            VARCHAR,
    http_status           INTEGER,
    latency_ms            DOUBLE,
    outcome               VARCHAR,              -- accepted | edited | rejected | escalated
    prompt_hash           VARCHAR,              -- keyed hash of the normalized prompt
    prefix_hash           VARCHAR,              -- keyed hash of system prompt + tools
    local_input_tokens    BIGINT,               -- locally tokenized input, where text was seen
    reported_cost_usd     DECIMAL(38,12),       -- the source's own cost, kept beside ours
    cost_usd              DECIMAL(38,12),       -- computed; NULL = unpriced
    price_id              INTEGER,              -- the prices row used
    tags                  JSON
);

-- What the provider billed: bucket x model x project/key x token category.
CREATE TABLE IF NOT EXISTS billing_lines (
    file_id        INTEGER NOT NULL,
    line_no        BIGINT NOT NULL,
    source         VARCHAR NOT NULL,
    period_start   TIMESTAMP NOT NULL,
    period_end     TIMESTAMP NOT NULL,
    provider       VARCHAR,
    account        VARCHAR,
    project        VARCHAR,
    workspace      VARCHAR,
    api_key_hash   VARCHAR,
    api_key_last4  VARCHAR,
    model          VARCHAR,
    model_id       VARCHAR,
    token_category VARCHAR,                     -- input | cache_read | cache_write | ... | other
    quantity       DECIMAL(38,6),
    cost           DECIMAL(38,12),
    currency       VARCHAR
);

-- Outcomes keyed by trace, session or request id (from outcome files or scores).
CREATE TABLE IF NOT EXISTS outcomes (
    file_id    INTEGER NOT NULL,
    line_no    BIGINT NOT NULL,
    key_kind   VARCHAR NOT NULL,                -- trace | session | request
    key        VARCHAR NOT NULL,
    outcome    VARCHAR NOT NULL,
    ts         TIMESTAMP,
    reviewer   VARCHAR
);

-- Resolved prices, per million tokens, each with its source and effective dates.
-- A row applies to a call of (provider, model) on a UTC day in [effective_from, effective_to)
-- whose total input (input + cache read + cache writes) is in (input_above, input_upto].
CREATE TABLE IF NOT EXISTS prices (
    price_id            INTEGER PRIMARY KEY,
    provider            VARCHAR NOT NULL,       -- as logged ('' when the source had none)
    model               VARCHAR NOT NULL,       -- as logged
    model_id            VARCHAR NOT NULL,       -- canonical model
    price_provider      VARCHAR,
    service_tier        VARCHAR NOT NULL,
    effective_from      DATE NOT NULL,
    effective_to        DATE,
    input_above         BIGINT NOT NULL,
    input_upto          BIGINT,
    input_mtok          DECIMAL(38,12),
    cache_read_mtok     DECIMAL(38,12),
    cache_write_mtok    DECIMAL(38,12),
    cache_write_1h_mtok DECIMAL(38,12),
    output_mtok         DECIMAL(38,12),
    reasoning_mtok      DECIMAL(38,12),
    source              VARCHAR NOT NULL
);

-- Every (provider, model) pair seen in the data and how it resolved.
CREATE TABLE IF NOT EXISTS model_resolution (
    provider   VARCHAR NOT NULL,
    model      VARCHAR NOT NULL,
    model_id   VARCHAR,
    status     VARCHAR NOT NULL,                -- priced | unpriced
    detail     VARCHAR
);
