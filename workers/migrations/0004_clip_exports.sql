-- Clip MP4 exports: the renditions an export makes (a JSON array of names, the default download
-- first), one file each under exports/{clip}/{rendition}.mp4. export_status covers them all.
ALTER TABLE clips ADD COLUMN export_renditions TEXT;
