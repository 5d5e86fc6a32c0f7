-- One meeting room, one link: the room derived from the URL by the
-- database itself, so that rows written by plain SQL are held to it too.
-- The same folding as PostgreSQL's meetpool_room (see its migration 0004):
-- lower case, no default port, no trailing '/', '?' or '#', and for Google
-- Meet only the meeting code. SQLite has no user functions in plain SQL,
-- so the folded URL, K below, is written out each time it is used:
--   K = rtrim(replace(replace(replace(rtrim(lower(trim(meeting_link)), '/?#') || '/', ':443/', '/'), ':443?', '?'), ':443#', '#'), '/?#')
ALTER TABLE meeting_links_pool ADD COLUMN room TEXT GENERATED ALWAYS AS (
    CASE
        WHEN rtrim(replace(replace(replace(rtrim(lower(trim(meeting_link)), '/?#') || '/', ':443/', '/'), ':443?', '?'), ':443#', '#'), '/?#')
             LIKE 'https://meet.google.com/%'
        THEN rtrim(substr(rtrim(replace(replace(replace(rtrim(lower(trim(meeting_link)), '/?#') || '/', ':443/', '/'), ':443?', '?'), ':443#', '#'), '/?#'), 1,
                 min(instr(rtrim(replace(replace(replace(rtrim(lower(trim(meeting_link)), '/?#') || '/', ':443/', '/'), ':443?', '?'), ':443#', '#'), '/?#') || '?', '?'),
                     instr(rtrim(replace(replace(replace(rtrim(lower(trim(meeting_link)), '/?#') || '/', ':443/', '/'), ':443?', '?'), ':443#', '#'), '/?#') || '#', '#')) - 1), '/')
        ELSE rtrim(replace(replace(replace(rtrim(lower(trim(meeting_link)), '/?#') || '/', ':443/', '/'), ':443?', '?'), ':443#', '#'), '/?#')
    END
) VIRTUAL;
