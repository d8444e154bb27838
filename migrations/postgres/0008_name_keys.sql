-- Case-insensitive search and sorting by name compare `name_key`: the name folded by
-- Rust (`ci_key`, all of Unicode), so both backends agree on `Écran`, `ÄRGER` or `Σήμα`
-- (SQLite's lower() folds ASCII only). Filled on every write; rows written before this
-- migration are folded by the server at start (Db::fold_names).
ALTER TABLE procedures ADD COLUMN name_key TEXT;
ALTER TABLE stations ADD COLUMN name_key TEXT;
ALTER TABLE parts ADD COLUMN name_key TEXT;
ALTER TABLE users ADD COLUMN name_key TEXT;
