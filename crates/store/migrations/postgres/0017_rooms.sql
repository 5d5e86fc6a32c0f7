-- Every spelling of one meeting room is one room, and only safe links are
-- handed to participants, whoever writes the pool: the rule of
-- meetpool_domain::room, step for step (SQLite's 0017 writes the same
-- steps as generated columns).

-- A link's parts as the rule reads them: the link in lower case with its
-- percent-encoded unreserved characters (and ') decoded; after https://,
-- the authority up to the first / ? or #; the host without :443, an empty
-- port or a trailing dot; the path, query and fragment.
CREATE FUNCTION meetpool_url_parts(
    link text,
    OUT https boolean, OUT url_text text, OUT authority text, OUT host text,
    OUT path text, OUT query text, OUT fragment text)
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    c text;
    rest text;
    tail text;
    e int;
    h int;
    q int;
BEGIN
    url_text := lower(link);
    IF strpos(url_text, '%') > 0 THEN
        FOREACH c IN ARRAY string_to_array('0123456789abcdefghijklmnopqrstuvwxyz-._~', NULL) LOOP
            url_text := replace(url_text, '%' || to_hex(ascii(c)), c);
            IF ascii(c) BETWEEN 97 AND 122 THEN
                url_text := replace(url_text, '%' || to_hex(ascii(upper(c))), c);
            END IF;
        END LOOP;
        url_text := replace(url_text, '%27', '''');
    END IF;
    https := url_text LIKE 'https://%';
    authority := ''; host := ''; path := ''; query := ''; fragment := '';
    IF NOT https THEN
        RETURN;
    END IF;
    rest := substr(url_text, 9);
    e := least(strpos(rest || '/', '/'), strpos(rest || '?', '?'), strpos(rest || '#', '#'));
    authority := substr(rest, 1, e - 1);
    tail := substr(rest, e);
    h := strpos(tail, '#');
    IF h > 0 THEN
        fragment := substr(tail, h + 1);
        tail := substr(tail, 1, h - 1);
    END IF;
    q := strpos(tail, '?');
    IF q > 0 THEN
        query := substr(tail, q + 1);
        path := substr(tail, 1, q - 1);
    ELSE
        path := tail;
    END IF;
    host := CASE WHEN authority LIKE '%:443' THEN substr(authority, 1, length(authority) - 4) ELSE authority END;
    host := rtrim(replace(rtrim(host, ':'), '.:', ':'), '.');
END
$$;

-- An enabled pool link must be an https:// URL naming a host (no user
-- name, no percent-encoded host), written with the characters a URI may
-- hold, every % starting an octet, no . or .. segment, at most 2048
-- characters: what javascript:, data: or http: links and markup fail.
CREATE FUNCTION meetpool_safe_link(link text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path FROM CURRENT AS $$
DECLARE
    p record;
BEGIN
    IF length(link) > 2048 OR lower(substr(link, 1, 8)) <> 'https://'
       OR link !~ '^[]A-Za-z0-9._~:/?#@!$&''()*+,;=%[-]*$'
       OR link ~ '%([^0-9A-Fa-f]|.[^0-9A-Fa-f]|.?$)' THEN
        RETURN false;
    END IF;
    p := meetpool_url_parts(link);
    RETURN p.authority <> '' AND strpos(p.authority, '@') = 0 AND strpos(p.authority, '%') = 0
        AND p.host <> '' AND p.host NOT LIKE ':%'
        AND strpos(p.path || '/', '/./') = 0 AND strpos(p.path || '/', '/../') = 0;
END
$$;

-- Links already in the pool that are not safe are disabled first (`meetpool
-- migrate` lists them and moves their coming sessions), then the rule holds
-- for every enabled link. A disabled link keeps its history.
UPDATE meeting_links_pool SET is_available = false
WHERE is_available AND NOT meetpool_safe_link(meeting_link);
ALTER TABLE meeting_links_pool ADD CONSTRAINT meeting_links_safe
    CHECK (NOT is_available OR meetpool_safe_link(meeting_link));

-- The room, with every spelling a provider documents as one room folded:
-- Google Meet codes with or without dashes and g.co/meet links, Zoom
-- meeting numbers on any *.zoom.us host without their passcode, Teams
-- meetings by thread or id, Whereby and Jitsi rooms by name; elsewhere the
-- URL folded as RFC 3986 §6.2 allows, its query and fragment kept. The
-- stored room is recomputed, so the column is built anew.
ALTER TABLE meeting_links_pool DROP COLUMN room;

CREATE OR REPLACE FUNCTION meetpool_room(link text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path FROM CURRENT AS $$
DECLARE
    p record;
    s text;
    bare text;
    zoom boolean;
    teams boolean;
BEGIN
    p := meetpool_url_parts(link);
    IF NOT p.https THEN
        RETURN p.url_text;
    END IF;
    s := btrim(regexp_replace(p.path, '/+', '/', 'g'), '/');
    IF p.host = 'meet.google.com' OR (p.host = 'g.co' AND s LIKE 'meet/%') THEN
        IF p.host = 'g.co' THEN
            s := substr(s, 6);
        END IF;
        bare := replace(s, '-', '');
        IF bare ~ '^[a-z]{10}$' THEN
            RETURN 'https://meet.google.com/' || substr(bare, 1, 3) || '-' || substr(bare, 4, 4)
                || '-' || substr(bare, 8, 3);
        ELSIF s = '' THEN
            RETURN 'https://meet.google.com';
        END IF;
        RETURN 'https://meet.google.com/' || s;
    END IF;
    zoom := p.host = 'zoom.us' OR p.host LIKE '%.zoom.us';
    teams := p.host IN ('teams.microsoft.com', 'teams.live.com');
    IF zoom AND (s LIKE 'j/%' OR s LIKE 's/%') THEN
        RETURN 'https://zoom.us/j/' || split_part(substr(s, 3), '/', 1);
    ELSIF zoom AND s LIKE 'wc/join/%' THEN
        RETURN 'https://zoom.us/j/' || split_part(substr(s, 9), '/', 1);
    ELSIF zoom AND s LIKE 'wc/%' THEN
        RETURN 'https://zoom.us/j/' || split_part(substr(s, 4), '/', 1);
    ELSIF zoom AND s LIKE 'my/%' THEN
        RETURN 'https://zoom.us/my/' || split_part(substr(s, 4), '/', 1);
    ELSIF teams AND s LIKE 'l/meetup-join/%' THEN
        RETURN 'https://' || p.host || '/l/meetup-join/'
            || replace(replace(split_part(substr(s, 15), '/', 1), '%3a', ':'), '%40', '@');
    ELSIF teams AND s LIKE 'meet/%' THEN
        RETURN 'https://' || p.host || '/meet/' || split_part(substr(s, 6), '/', 1);
    ELSIF p.host IN ('whereby.com', 'www.whereby.com') AND s <> '' THEN
        RETURN 'https://whereby.com/' || split_part(s, '/', 1);
    ELSIF (p.host LIKE '%.whereby.com' OR p.host = 'meet.jit.si') AND s <> '' THEN
        RETURN 'https://' || p.host || '/' || split_part(s, '/', 1);
    END IF;
    RETURN 'https://' || p.host
        || CASE WHEN s <> '' THEN '/' || s ELSE '' END
        || CASE WHEN p.query <> '' THEN '?' || p.query ELSE '' END
        || CASE WHEN p.fragment <> '' THEN '#' || p.fragment ELSE '' END;
END
$$;

ALTER TABLE meeting_links_pool
    ADD COLUMN room text GENERATED ALWAYS AS (meetpool_room(meeting_link)) STORED;
-- At most one enabled link per room, as 0005 made it. When the new rule
-- finds one room under two enabled links this fails, the whole migration
-- with it, and `meetpool migrate` lists them.
CREATE UNIQUE INDEX meeting_links_room ON meeting_links_pool (room) WHERE is_available;
