-- Every spelling of one meeting room is one room, and only safe links are
-- handed to participants, whoever writes the pool: the rule of
-- meetpool_domain::room, step for step, as PostgreSQL's 0017 writes it.
-- SQLite has no functions in plain SQL, so each step is a generated
-- column of its own (url_*), computed when read, and the room is built
-- from them.

DROP INDEX meeting_links_room;
ALTER TABLE meeting_links_pool DROP COLUMN room;

-- The link in lower case with its percent-encoded unreserved characters
-- (and ') decoded: a plain column the triggers below keep current (every
-- later step reads it, and a step read from a generated column would
-- spell out this one's 67 replacements at each use).
ALTER TABLE meeting_links_pool ADD COLUMN url_text TEXT;
UPDATE meeting_links_pool SET url_text = (SELECT
        replace(replace(replace(replace(replace(replace(replace(d4
            , '%7a', 'z'), '%5a', 'z'), '%2d', '-'), '%2e', '.'), '%5f', '_'), '%7e', '~')
            , '%27', '''')
     FROM (SELECT
        replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(d3
            , '%74', 't'), '%54', 't'), '%75', 'u'), '%55', 'u'), '%76', 'v'), '%56', 'v')
            , '%77', 'w'), '%57', 'w'), '%78', 'x'), '%58', 'x'), '%79', 'y'), '%59', 'y') AS d4
     FROM (SELECT
        replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(d2
            , '%6e', 'n'), '%4e', 'n'), '%6f', 'o'), '%4f', 'o'), '%70', 'p'), '%50', 'p')
            , '%71', 'q'), '%51', 'q'), '%72', 'r'), '%52', 'r'), '%73', 's'), '%53', 's') AS d3
     FROM (SELECT
        replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(d1
            , '%68', 'h'), '%48', 'h'), '%69', 'i'), '%49', 'i'), '%6a', 'j'), '%4a', 'j')
            , '%6b', 'k'), '%4b', 'k'), '%6c', 'l'), '%4c', 'l'), '%6d', 'm'), '%4d', 'm') AS d2
     FROM (SELECT
        replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(d0
            , '%62', 'b'), '%42', 'b'), '%63', 'c'), '%43', 'c'), '%64', 'd'), '%44', 'd')
            , '%65', 'e'), '%45', 'e'), '%66', 'f'), '%46', 'f'), '%67', 'g'), '%47', 'g') AS d1
     FROM (SELECT
        replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(lower(meeting_link)
            , '%30', '0'), '%31', '1'), '%32', '2'), '%33', '3'), '%34', '4'), '%35', '5')
            , '%36', '6'), '%37', '7'), '%38', '8'), '%39', '9'), '%61', 'a'), '%41', 'a') AS d0))))));
-- After https://, up to the first / ? or #.
ALTER TABLE meeting_links_pool ADD COLUMN url_authority TEXT GENERATED ALWAYS AS (
    CASE WHEN url_text LIKE 'https://%'
        THEN substr(url_text, 9, min(instr(substr(url_text, 9) || '/', '/'),
                                     instr(substr(url_text, 9) || '?', '?'),
                                     instr(substr(url_text, 9) || '#', '#')) - 1)
        ELSE '' END
) VIRTUAL;
-- Without :443, an empty port or a trailing dot.
ALTER TABLE meeting_links_pool ADD COLUMN url_host TEXT GENERATED ALWAYS AS (
    rtrim(replace(rtrim(
        CASE WHEN url_authority LIKE '%:443' THEN substr(url_authority, 1, length(url_authority) - 4)
             ELSE url_authority END, ':'), '.:', ':'), '.')
) VIRTUAL;
-- What follows the authority, T below, up to the first ? or #; the query;
-- the fragment.
--   T = substr(url_text, 9 + length(url_authority))
ALTER TABLE meeting_links_pool ADD COLUMN url_path TEXT GENERATED ALWAYS AS (
    substr(substr(url_text, 9 + length(url_authority)), 1, min(instr(substr(url_text, 9 + length(url_authority)) || '?', '?'), instr(substr(url_text, 9 + length(url_authority)) || '#', '#')) - 1)
) VIRTUAL;
ALTER TABLE meeting_links_pool ADD COLUMN url_fragment TEXT GENERATED ALWAYS AS (
    CASE WHEN instr(substr(url_text, 9 + length(url_authority)), '#') > 0 THEN substr(substr(url_text, 9 + length(url_authority)), instr(substr(url_text, 9 + length(url_authority)), '#') + 1) ELSE '' END
) VIRTUAL;
ALTER TABLE meeting_links_pool ADD COLUMN url_query TEXT GENERATED ALWAYS AS (
    CASE WHEN substr(substr(url_text, 9 + length(url_authority)), length(url_path) + 1, 1) = '?'
         THEN substr(substr(url_text, 9 + length(url_authority)), length(url_path) + 2, instr(substr(url_text, 9 + length(url_authority)) || '#', '#') - length(url_path) - 2)
         ELSE '' END
) VIRTUAL;
-- The path with every run of / as one, and none at either end (char(1),
-- which a safe link never holds, marks the runs).
ALTER TABLE meeting_links_pool ADD COLUMN url_segments TEXT GENERATED ALWAYS AS (
    trim(replace(replace(replace(url_path, '/', '/' || char(1)), char(1) || '/', ''), char(1), ''), '/')
) VIRTUAL;

-- An enabled pool link must be an https:// URL naming a host (no user
-- name, no percent-encoded host), written with the characters a URI may
-- hold, every % starting an octet, no . or .. segment, at most 2048
-- characters: what javascript:, data: or http: links and markup fail.
ALTER TABLE meeting_links_pool ADD COLUMN url_safe INTEGER GENERATED ALWAYS AS (
    coalesce(length(meeting_link) <= 2048
        AND lower(substr(meeting_link, 1, 8)) = 'https://'
        AND meeting_link NOT GLOB '*[^]A-Za-z0-9._~:/?#@!$&''()*+,;=%[-]*'
        AND meeting_link NOT GLOB '*%[^0-9A-Fa-f]*'
        AND meeting_link NOT GLOB '*%?[^0-9A-Fa-f]*'
        AND meeting_link NOT GLOB '*%'
        AND meeting_link NOT GLOB '*%?'
        AND url_authority <> '' AND instr(url_authority, '@') = 0 AND instr(url_authority, '%') = 0
        AND url_host <> '' AND url_host NOT LIKE ':%'
        AND instr(url_path || '/', '/./') = 0 AND instr(url_path || '/', '/../') = 0, 0)
) VIRTUAL;

-- The room, with every spelling a provider documents as one room folded:
-- Google Meet codes with or without dashes and g.co/meet links, Zoom
-- meeting numbers on any *.zoom.us host without their passcode, Teams
-- meetings by thread or id, Whereby and Jitsi rooms by name; elsewhere the
-- URL folded as RFC 3986 §6.2 allows, its query and fragment kept.
--   CODE = (CASE WHEN url_host = 'g.co' THEN substr(url_segments, 6) ELSE url_segments END)
ALTER TABLE meeting_links_pool ADD COLUMN room TEXT GENERATED ALWAYS AS (
    CASE
    WHEN url_text NOT LIKE 'https://%' THEN url_text
    WHEN url_host = 'meet.google.com' OR (url_host = 'g.co' AND url_segments LIKE 'meet/%') THEN
        CASE WHEN replace((CASE WHEN url_host = 'g.co' THEN substr(url_segments, 6) ELSE url_segments END), '-', '') GLOB '[a-z][a-z][a-z][a-z][a-z][a-z][a-z][a-z][a-z][a-z]'
             THEN 'https://meet.google.com/' || substr(replace((CASE WHEN url_host = 'g.co' THEN substr(url_segments, 6) ELSE url_segments END), '-', ''), 1, 3) || '-'
                  || substr(replace((CASE WHEN url_host = 'g.co' THEN substr(url_segments, 6) ELSE url_segments END), '-', ''), 4, 4) || '-' || substr(replace((CASE WHEN url_host = 'g.co' THEN substr(url_segments, 6) ELSE url_segments END), '-', ''), 8, 3)
             WHEN (CASE WHEN url_host = 'g.co' THEN substr(url_segments, 6) ELSE url_segments END) = '' THEN 'https://meet.google.com'
             ELSE 'https://meet.google.com/' || (CASE WHEN url_host = 'g.co' THEN substr(url_segments, 6) ELSE url_segments END) END
    WHEN (url_host = 'zoom.us' OR url_host LIKE '%.zoom.us')
         AND (url_segments LIKE 'j/%' OR url_segments LIKE 's/%')
        THEN 'https://zoom.us/j/' || substr(substr(url_segments, 3), 1, instr(substr(url_segments, 3) || '/', '/') - 1)
    WHEN (url_host = 'zoom.us' OR url_host LIKE '%.zoom.us') AND url_segments LIKE 'wc/join/%'
        THEN 'https://zoom.us/j/' || substr(substr(url_segments, 9), 1, instr(substr(url_segments, 9) || '/', '/') - 1)
    WHEN (url_host = 'zoom.us' OR url_host LIKE '%.zoom.us') AND url_segments LIKE 'wc/%'
        THEN 'https://zoom.us/j/' || substr(substr(url_segments, 4), 1, instr(substr(url_segments, 4) || '/', '/') - 1)
    WHEN (url_host = 'zoom.us' OR url_host LIKE '%.zoom.us') AND url_segments LIKE 'my/%'
        THEN 'https://zoom.us/my/' || substr(substr(url_segments, 4), 1, instr(substr(url_segments, 4) || '/', '/') - 1)
    WHEN url_host IN ('teams.microsoft.com', 'teams.live.com') AND url_segments LIKE 'l/meetup-join/%'
        THEN 'https://' || url_host || '/l/meetup-join/' || replace(replace(
            substr(substr(url_segments, 15), 1, instr(substr(url_segments, 15) || '/', '/') - 1),
            '%3a', ':'), '%40', '@')
    WHEN url_host IN ('teams.microsoft.com', 'teams.live.com') AND url_segments LIKE 'meet/%'
        THEN 'https://' || url_host || '/meet/' || substr(substr(url_segments, 6), 1, instr(substr(url_segments, 6) || '/', '/') - 1)
    WHEN url_host IN ('whereby.com', 'www.whereby.com') AND url_segments <> ''
        THEN 'https://whereby.com/' || substr(url_segments, 1, instr(url_segments || '/', '/') - 1)
    WHEN (url_host LIKE '%.whereby.com' OR url_host = 'meet.jit.si') AND url_segments <> ''
        THEN 'https://' || url_host || '/' || substr(url_segments, 1, instr(url_segments || '/', '/') - 1)
    ELSE 'https://' || url_host
        || CASE WHEN url_segments <> '' THEN '/' || url_segments ELSE '' END
        || CASE WHEN url_query <> '' THEN '?' || url_query ELSE '' END
        || CASE WHEN url_fragment <> '' THEN '#' || url_fragment ELSE '' END
    END
) VIRTUAL;

-- Links already in the pool that are not safe are disabled first (`meetpool
-- migrate` lists them and moves their coming sessions); from now on an
-- enabled link is safe. SQLite adds no CHECK to an existing table, so the
-- triggers that keep url_text refuse the write. A disabled link keeps its
-- history.
UPDATE meeting_links_pool SET is_available = 0 WHERE is_available AND NOT url_safe;
CREATE TRIGGER meeting_links_url_insert AFTER INSERT ON meeting_links_pool
FOR EACH ROW
BEGIN
    -- Any write that would leave url_text stale (an INSERT OR IGNORE whose
    -- room is taken, say) is refused rather than skipped.
    UPDATE meeting_links_pool SET url_text = (SELECT
            replace(replace(replace(replace(replace(replace(replace(d4
                , '%7a', 'z'), '%5a', 'z'), '%2d', '-'), '%2e', '.'), '%5f', '_'), '%7e', '~')
                , '%27', '''')
         FROM (SELECT
            replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(d3
                , '%74', 't'), '%54', 't'), '%75', 'u'), '%55', 'u'), '%76', 'v'), '%56', 'v')
                , '%77', 'w'), '%57', 'w'), '%78', 'x'), '%58', 'x'), '%79', 'y'), '%59', 'y') AS d4
         FROM (SELECT
            replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(d2
                , '%6e', 'n'), '%4e', 'n'), '%6f', 'o'), '%4f', 'o'), '%70', 'p'), '%50', 'p')
                , '%71', 'q'), '%51', 'q'), '%72', 'r'), '%52', 'r'), '%73', 's'), '%53', 's') AS d3
         FROM (SELECT
            replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(d1
                , '%68', 'h'), '%48', 'h'), '%69', 'i'), '%49', 'i'), '%6a', 'j'), '%4a', 'j')
                , '%6b', 'k'), '%4b', 'k'), '%6c', 'l'), '%4c', 'l'), '%6d', 'm'), '%4d', 'm') AS d2
         FROM (SELECT
            replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(d0
                , '%62', 'b'), '%42', 'b'), '%63', 'c'), '%43', 'c'), '%64', 'd'), '%44', 'd')
                , '%65', 'e'), '%45', 'e'), '%66', 'f'), '%46', 'f'), '%67', 'g'), '%47', 'g') AS d1
         FROM (SELECT
            replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(lower(NEW.meeting_link)
                , '%30', '0'), '%31', '1'), '%32', '2'), '%33', '3'), '%34', '4'), '%35', '5')
                , '%36', '6'), '%37', '7'), '%38', '8'), '%39', '9'), '%61', 'a'), '%41', 'a') AS d0))))))
    WHERE id = NEW.id;
    SELECT RAISE(ABORT, 'meetpool: duplicate room: UNIQUE constraint failed: meeting_links_pool.room')
    WHERE (SELECT url_text FROM meeting_links_pool WHERE id = NEW.id) IS NOT (SELECT
            replace(replace(replace(replace(replace(replace(replace(d4
                , '%7a', 'z'), '%5a', 'z'), '%2d', '-'), '%2e', '.'), '%5f', '_'), '%7e', '~')
                , '%27', '''')
         FROM (SELECT
            replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(d3
                , '%74', 't'), '%54', 't'), '%75', 'u'), '%55', 'u'), '%76', 'v'), '%56', 'v')
                , '%77', 'w'), '%57', 'w'), '%78', 'x'), '%58', 'x'), '%79', 'y'), '%59', 'y') AS d4
         FROM (SELECT
            replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(d2
                , '%6e', 'n'), '%4e', 'n'), '%6f', 'o'), '%4f', 'o'), '%70', 'p'), '%50', 'p')
                , '%71', 'q'), '%51', 'q'), '%72', 'r'), '%52', 'r'), '%73', 's'), '%53', 's') AS d3
         FROM (SELECT
            replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(d1
                , '%68', 'h'), '%48', 'h'), '%69', 'i'), '%49', 'i'), '%6a', 'j'), '%4a', 'j')
                , '%6b', 'k'), '%4b', 'k'), '%6c', 'l'), '%4c', 'l'), '%6d', 'm'), '%4d', 'm') AS d2
         FROM (SELECT
            replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(d0
                , '%62', 'b'), '%42', 'b'), '%63', 'c'), '%43', 'c'), '%64', 'd'), '%44', 'd')
                , '%65', 'e'), '%45', 'e'), '%66', 'f'), '%46', 'f'), '%67', 'g'), '%47', 'g') AS d1
         FROM (SELECT
            replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(lower(NEW.meeting_link)
                , '%30', '0'), '%31', '1'), '%32', '2'), '%33', '3'), '%34', '4'), '%35', '5')
                , '%36', '6'), '%37', '7'), '%38', '8'), '%39', '9'), '%61', 'a'), '%41', 'a') AS d0))))));
    SELECT RAISE(ABORT, 'meetpool: unsafe link: an enabled pool link must be an https:// URL naming a host')
    WHERE (SELECT is_available AND NOT url_safe FROM meeting_links_pool WHERE id = NEW.id);
END;
CREATE TRIGGER meeting_links_url_update AFTER UPDATE OF meeting_link, url_text, is_available ON meeting_links_pool
FOR EACH ROW
BEGIN
    -- Any write that would leave url_text stale (an INSERT OR IGNORE whose
    -- room is taken, say) is refused rather than skipped.
    UPDATE meeting_links_pool SET url_text = (SELECT
            replace(replace(replace(replace(replace(replace(replace(d4
                , '%7a', 'z'), '%5a', 'z'), '%2d', '-'), '%2e', '.'), '%5f', '_'), '%7e', '~')
                , '%27', '''')
         FROM (SELECT
            replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(d3
                , '%74', 't'), '%54', 't'), '%75', 'u'), '%55', 'u'), '%76', 'v'), '%56', 'v')
                , '%77', 'w'), '%57', 'w'), '%78', 'x'), '%58', 'x'), '%79', 'y'), '%59', 'y') AS d4
         FROM (SELECT
            replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(d2
                , '%6e', 'n'), '%4e', 'n'), '%6f', 'o'), '%4f', 'o'), '%70', 'p'), '%50', 'p')
                , '%71', 'q'), '%51', 'q'), '%72', 'r'), '%52', 'r'), '%73', 's'), '%53', 's') AS d3
         FROM (SELECT
            replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(d1
                , '%68', 'h'), '%48', 'h'), '%69', 'i'), '%49', 'i'), '%6a', 'j'), '%4a', 'j')
                , '%6b', 'k'), '%4b', 'k'), '%6c', 'l'), '%4c', 'l'), '%6d', 'm'), '%4d', 'm') AS d2
         FROM (SELECT
            replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(d0
                , '%62', 'b'), '%42', 'b'), '%63', 'c'), '%43', 'c'), '%64', 'd'), '%44', 'd')
                , '%65', 'e'), '%45', 'e'), '%66', 'f'), '%46', 'f'), '%67', 'g'), '%47', 'g') AS d1
         FROM (SELECT
            replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(lower(NEW.meeting_link)
                , '%30', '0'), '%31', '1'), '%32', '2'), '%33', '3'), '%34', '4'), '%35', '5')
                , '%36', '6'), '%37', '7'), '%38', '8'), '%39', '9'), '%61', 'a'), '%41', 'a') AS d0))))))
    WHERE id = NEW.id;
    SELECT RAISE(ABORT, 'meetpool: duplicate room: UNIQUE constraint failed: meeting_links_pool.room')
    WHERE (SELECT url_text FROM meeting_links_pool WHERE id = NEW.id) IS NOT (SELECT
            replace(replace(replace(replace(replace(replace(replace(d4
                , '%7a', 'z'), '%5a', 'z'), '%2d', '-'), '%2e', '.'), '%5f', '_'), '%7e', '~')
                , '%27', '''')
         FROM (SELECT
            replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(d3
                , '%74', 't'), '%54', 't'), '%75', 'u'), '%55', 'u'), '%76', 'v'), '%56', 'v')
                , '%77', 'w'), '%57', 'w'), '%78', 'x'), '%58', 'x'), '%79', 'y'), '%59', 'y') AS d4
         FROM (SELECT
            replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(d2
                , '%6e', 'n'), '%4e', 'n'), '%6f', 'o'), '%4f', 'o'), '%70', 'p'), '%50', 'p')
                , '%71', 'q'), '%51', 'q'), '%72', 'r'), '%52', 'r'), '%73', 's'), '%53', 's') AS d3
         FROM (SELECT
            replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(d1
                , '%68', 'h'), '%48', 'h'), '%69', 'i'), '%49', 'i'), '%6a', 'j'), '%4a', 'j')
                , '%6b', 'k'), '%4b', 'k'), '%6c', 'l'), '%4c', 'l'), '%6d', 'm'), '%4d', 'm') AS d2
         FROM (SELECT
            replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(d0
                , '%62', 'b'), '%42', 'b'), '%63', 'c'), '%43', 'c'), '%64', 'd'), '%44', 'd')
                , '%65', 'e'), '%45', 'e'), '%66', 'f'), '%46', 'f'), '%67', 'g'), '%47', 'g') AS d1
         FROM (SELECT
            replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(lower(NEW.meeting_link)
                , '%30', '0'), '%31', '1'), '%32', '2'), '%33', '3'), '%34', '4'), '%35', '5')
                , '%36', '6'), '%37', '7'), '%38', '8'), '%39', '9'), '%61', 'a'), '%41', 'a') AS d0))))));
    SELECT RAISE(ABORT, 'meetpool: unsafe link: an enabled pool link must be an https:// URL naming a host')
    WHERE (SELECT is_available AND NOT url_safe FROM meeting_links_pool WHERE id = NEW.id);
END;

-- At most one enabled link per room, as 0005 made it. When the new rule
-- finds one room under two enabled links this fails, the whole migration
-- with it, and `meetpool migrate` lists them.
CREATE UNIQUE INDEX meeting_links_room ON meeting_links_pool (room) WHERE is_available;
