-- listing agents by owner walks an index in id order (owner, id), and text search narrows
-- by a trigram index of id, name and description (kept by triggers; the agents table has
-- rowids that nothing renumbers: no VACUUM, no deletes).

CREATE INDEX agents_owner_id ON agents(owner_id, id);
DROP INDEX agents_owner;
CREATE VIRTUAL TABLE agents_text USING fts5(
    id, name, description, content='agents', content_rowid='rowid', tokenize='trigram'
);
INSERT INTO agents_text(agents_text) VALUES ('rebuild');
CREATE TRIGGER agents_text_insert AFTER INSERT ON agents BEGIN
    INSERT INTO agents_text(rowid, id, name, description)
    VALUES (new.rowid, new.id, new.name, new.description);
END;
CREATE TRIGGER agents_text_delete AFTER DELETE ON agents BEGIN
    INSERT INTO agents_text(agents_text, rowid, id, name, description)
    VALUES ('delete', old.rowid, old.id, old.name, old.description);
END;
CREATE TRIGGER agents_text_update AFTER UPDATE OF id, name, description ON agents BEGIN
    INSERT INTO agents_text(agents_text, rowid, id, name, description)
    VALUES ('delete', old.rowid, old.id, old.name, old.description);
    INSERT INTO agents_text(rowid, id, name, description)
    VALUES (new.rowid, new.id, new.name, new.description);
END;
