-- analysis stages per asset, the searchable text, and image embeddings
CREATE TABLE analysis_stages (
    asset_id TEXT NOT NULL,
    stage TEXT NOT NULL,
    state TEXT NOT NULL,
    generation INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    reason TEXT NULL,
    result {json} NULL,
    model TEXT NULL,
    job_id TEXT NULL,
    created_at BIGINT NOT NULL,
    started_at BIGINT NULL,
    finished_at BIGINT NULL,
    PRIMARY KEY (asset_id, stage));
CREATE INDEX ix_analysis_stages_state ON analysis_stages (stage, state);
CREATE TABLE analysis_embeddings (
    asset_id TEXT NOT NULL PRIMARY KEY,
    model TEXT NOT NULL,
    vector {blob} NOT NULL,
    updated_at BIGINT NOT NULL);
--@sqlite
CREATE TABLE analysis_documents (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    asset_id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    updated_at BIGINT NOT NULL);
CREATE VIRTUAL TABLE analysis_search USING fts5(body, content='analysis_documents', content_rowid='seq', tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER analysis_documents_ai AFTER INSERT ON analysis_documents BEGIN
    INSERT INTO analysis_search (rowid, body) VALUES (new.seq, new.body);
END;
CREATE TRIGGER analysis_documents_ad AFTER DELETE ON analysis_documents BEGIN
    INSERT INTO analysis_search (analysis_search, rowid, body) VALUES ('delete', old.seq, old.body);
END;
CREATE TRIGGER analysis_documents_au AFTER UPDATE ON analysis_documents BEGIN
    INSERT INTO analysis_search (analysis_search, rowid, body) VALUES ('delete', old.seq, old.body);
    INSERT INTO analysis_search (rowid, body) VALUES (new.seq, new.body);
END;
--@postgres
CREATE TABLE analysis_documents (
    seq BIGSERIAL PRIMARY KEY,
    asset_id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED);
CREATE INDEX ix_analysis_documents_tsv ON analysis_documents USING GIN (tsv);
--@end
