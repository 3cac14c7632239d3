-- How far a clip's MP4 export has come (0 to 1, across every file it makes), written by the
-- export job about once a second so `GET /api/clips/:id` (and `edgelive clips export --wait`)
-- can show it. NULL for exports made before this column existed.
ALTER TABLE clips ADD COLUMN export_progress REAL;
