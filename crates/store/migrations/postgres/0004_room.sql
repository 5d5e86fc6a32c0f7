-- One meeting room, one link. The service stores links in their canonical
-- spelling (meetpool_domain::MeetingUrl); rows written by plain SQL may be
-- spelled any way, so the database derives the room from the URL itself:
-- lower case, no default port, no trailing '/', '?' or '#', and for Google
-- Meet only the meeting code. Folding all case errs towards calling two
-- links one room: a refused duplicate costs an operator a 409, a missed one
-- double-books a room that the exclusion constraint sees as two links.
CREATE FUNCTION meetpool_room(link text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE
        WHEN k LIKE 'https://meet.google.com/%'
            THEN rtrim(split_part(split_part(k, '#', 1), '?', 1), '/')
        ELSE k
    END
    FROM (
        SELECT rtrim(
            replace(replace(replace(
                rtrim(lower(btrim(link)), '/?#') || '/',
                ':443/', '/'), ':443?', '?'), ':443#', '#'),
            '/?#') AS k
    ) AS folded
$$;

ALTER TABLE meeting_links_pool
    ADD COLUMN room text GENERATED ALWAYS AS (meetpool_room(meeting_link)) STORED;
