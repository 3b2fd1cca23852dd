-- Which image model (shared.ml's analyzer `version`) gave each processed image its tags and embedding,
-- so the re-embed job (functions/processing/reembed.py) re-runs only what an older model analysed.
-- Rows processed before this column existed are null: the first re-embed run treats them as out of date.
alter table processing.results add column if not exists model_version text;
