//! Which meeting room a link opens, and whether a link is safe to send a
//! participant to: the rule that both databases hold too (migration 0017:
//! PostgreSQL's `meetpool_room` and `meetpool_safe_link`, SQLite's `room`
//! and `url_safe` columns), written here step for step as it is written in
//! SQL, so that a row written by plain SQL and a link added through the
//! service land on the same room.
//!
//! The room folds every spelling that a provider documents as the same
//! room, and errs towards calling two links one room elsewhere (case is
//! folded everywhere): a refused duplicate costs an operator a 409, a missed
//! one sends two sessions to one room.

/// The characters RFC 3986 allows in a URI besides letters and digits
/// (unreserved, reserved and `%`).
const URI_PUNCTUATION: &[u8] = b"-._~:/?#[]@!$&'()*+,;=%";

/// The longest link the pool holds.
pub const LINK_MAX: usize = 2048;

/// Whether `link` is a link the pool may hand to a participant: an
/// `https://` URL naming a host (no user name, no percent-encoded host),
/// written only with the characters a URI may hold, every `%` starting a
/// percent-encoded octet, no `.` or `..` path segment, at most
/// [`LINK_MAX`] characters. What `javascript:`, `data:` or `http:` links
/// and markup-breaking text all fail.
pub fn is_safe_link(link: &str) -> bool {
    link.len() <= LINK_MAX
        && link
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
        && link
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || URI_PUNCTUATION.contains(&b))
        && percent_well_formed(link)
        && {
            let p = Parts::of(link);
            !p.authority.is_empty()
                && !p.authority.contains(['@', '%'])
                && !p.host.is_empty()
                && !p.host.starts_with(':')
                && !format!("{}/", p.path).contains("/./")
                && !format!("{}/", p.path).contains("/../")
        }
}

/// The meeting room `link` opens, as text: equal for every spelling of one
/// room.
///
/// - Everywhere: case folded, percent-encoded unreserved characters
///   (and `'`) decoded (RFC 3986 §6.2.2.2), the default port, a trailing dot on the
///   host, repeated and trailing `/`, an empty `?` or `#` dropped.
/// - Google Meet (`meet.google.com/CODE`, `g.co/meet/CODE`): the code, a
///   ten-letter one written `xxx-xxxx-xxx` with or without its dashes;
///   nothing after it.
/// - Zoom (`zoom.us` and every `*.zoom.us`): the meeting number of
///   `/j/ID`, `/s/ID`, `/wc/join/ID` and `/wc/ID/...` as `https://zoom.us/j/ID`,
///   a personal link `/my/NAME` as `https://zoom.us/my/NAME`; the passcode
///   and other parameters dropped.
/// - Microsoft Teams (`teams.microsoft.com`, `teams.live.com`): the thread
///   of `/l/meetup-join/THREAD/...` (with `:` and `@` decoded), the id of
///   `/meet/ID`; the context and passcode dropped.
/// - Whereby (`whereby.com`, `www.whereby.com`, `*.whereby.com`) and Jitsi
///   (`meet.jit.si`): the room name, the first path segment; parameters
///   dropped.
/// - Elsewhere the query and fragment are kept: they may name the room.
pub fn room_of(link: &str) -> String {
    let p = Parts::of(link);
    if !p.https {
        return p.text;
    }
    let segments = collapse_slashes(&p.path);
    let s = segments.trim_matches('/');
    let host = p.host.as_str();
    let generic = || {
        let mut room = format!("https://{host}");
        for (sep, part) in [
            ("/", s),
            ("?", p.query.as_str()),
            ("#", p.fragment.as_str()),
        ] {
            if !part.is_empty() {
                room.push_str(sep);
                room.push_str(part);
            }
        }
        room
    };
    let zoom = host == "zoom.us" || host.ends_with(".zoom.us");
    let teams = host == "teams.microsoft.com" || host == "teams.live.com";
    if host == "meet.google.com" {
        meet_room(s)
    } else if host == "g.co" && s.starts_with("meet/") {
        meet_room(&s[5..])
    } else if zoom && (s.starts_with("j/") || s.starts_with("s/")) {
        format!("https://zoom.us/j/{}", first_segment(&s[2..]))
    } else if zoom && s.starts_with("wc/join/") {
        format!("https://zoom.us/j/{}", first_segment(&s[8..]))
    } else if zoom && s.starts_with("wc/") {
        format!("https://zoom.us/j/{}", first_segment(&s[3..]))
    } else if zoom && s.starts_with("my/") {
        format!("https://zoom.us/my/{}", first_segment(&s[3..]))
    } else if teams && s.starts_with("l/meetup-join/") {
        let thread = first_segment(&s[14..])
            .replace("%3a", ":")
            .replace("%40", "@");
        format!("https://{host}/l/meetup-join/{thread}")
    } else if teams && s.starts_with("meet/") {
        format!("https://{host}/meet/{}", first_segment(&s[5..]))
    } else if (host == "whereby.com" || host == "www.whereby.com") && !s.is_empty() {
        format!("https://whereby.com/{}", first_segment(s))
    } else if (host.ends_with(".whereby.com") || host == "meet.jit.si") && !s.is_empty() {
        format!("https://{host}/{}", first_segment(s))
    } else {
        generic()
    }
}

/// A Meet room from its code (the path after the host): a code of ten
/// letters, however dashed, is `xxx-xxxx-xxx`.
fn meet_room(code: &str) -> String {
    let bare = code.replace('-', "");
    if bare.len() == 10 && bare.bytes().all(|b| b.is_ascii_lowercase()) {
        format!(
            "https://meet.google.com/{}-{}-{}",
            &bare[..3],
            &bare[3..7],
            &bare[7..]
        )
    } else if code.is_empty() {
        "https://meet.google.com".to_owned()
    } else {
        format!("https://meet.google.com/{code}")
    }
}

/// A link's parts, read as the databases read them: from the link in lower
/// case with its unreserved characters decoded.
struct Parts {
    https: bool,
    text: String,
    authority: String,
    host: String,
    path: String,
    query: String,
    fragment: String,
}

impl Parts {
    fn of(link: &str) -> Parts {
        // `'` is not unreserved, but URL parsers write it `%27` in a query
        // (WHATWG) and leave it elsewhere: read alike, as one room.
        let text = decode_unreserved(&link.to_ascii_lowercase(), false)
            .to_ascii_lowercase()
            .replace("%27", "'");
        let Some(rest) = text.strip_prefix("https://") else {
            return Parts {
                https: false,
                text,
                authority: String::new(),
                host: String::new(),
                path: String::new(),
                query: String::new(),
                fragment: String::new(),
            };
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (before_hash, fragment) = tail.split_once('#').unwrap_or((tail, ""));
        let (path, query) = before_hash.split_once('?').unwrap_or((before_hash, ""));
        Parts {
            https: true,
            authority: authority.to_owned(),
            host: host_of(authority),
            path: path.to_owned(),
            query: query.to_owned(),
            fragment: fragment.to_owned(),
            text: text.clone(),
        }
    }
}

/// The host (and any port other than 443) of an authority: no `:443`, no
/// empty port, no trailing dot.
fn host_of(authority: &str) -> String {
    let a = authority.strip_suffix(":443").unwrap_or(authority);
    a.trim_end_matches(':')
        .replace(".:", ":")
        .trim_end_matches('.')
        .to_owned()
}

/// `s` up to its first `/`.
fn first_segment(s: &str) -> &str {
    s.split('/').next().unwrap_or_default()
}

/// Every run of `/` as one.
fn collapse_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    out
}

/// Whether every `%` in `s` starts a percent-encoded octet (`%` and two
/// hexadecimal digits).
pub fn percent_well_formed(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter().enumerate().all(|(i, &c)| {
        c != b'%'
            || (b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Decodes the percent-encoded octets that stand for unreserved characters
/// (RFC 3986 §2.3: they mean the same encoded or not), and writes the hex
/// digits of every other one in upper case (§6.2.2.1) when `upper_hex`.
pub fn decode_unreserved(s: &str, upper_hex: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                let byte = (h * 16 + l) as u8;
                if unreserved(byte) {
                    out.push(byte);
                } else {
                    let (h, l) = if upper_hex {
                        (b[i + 1].to_ascii_uppercase(), b[i + 2].to_ascii_uppercase())
                    } else {
                        (b[i + 1], b[i + 2])
                    };
                    out.extend_from_slice(&[b'%', h, l]);
                }
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_owned())
}
