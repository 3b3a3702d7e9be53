-- +goose Up
-- store_version: one row; every update increments it first (see store.SQL).
CREATE TABLE store_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO store_version (id, version) VALUES (1, 0);

-- entity: every management entity as JSON under its folded natural key.
-- A deleted row is a tombstone: deleted set, nkey NULL (so the key is free
-- again), version of the deletion. AUTOINCREMENT: ids are never reused.
CREATE TABLE entity (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    kind    TEXT    NOT NULL,
    nkey    TEXT,
    body    TEXT    NOT NULL,
    version INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX entity_kind_nkey ON entity (kind, nkey);
CREATE INDEX entity_version ON entity (version);
CREATE INDEX entity_kind ON entity (kind, id);

-- oplog: the operation log (contract section 9.5).
CREATE TABLE oplog (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT    NOT NULL,
    operation   TEXT    NOT NULL,
    operator_id TEXT    NOT NULL,
    service_key TEXT    NOT NULL,
    complete    INTEGER NOT NULL,
    create_time INTEGER NOT NULL,
    body        TEXT    NOT NULL
);
CREATE INDEX oplog_kind ON oplog (kind, id);
CREATE INDEX oplog_service ON oplog (kind, service_key, id);

-- +goose Down
DROP TABLE oplog;
DROP TABLE entity;
DROP TABLE store_version;
