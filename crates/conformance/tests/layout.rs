//! The map a newcomer walks: the README's Layout names every crate and every
//! module folder (and none that is gone), and every relative link of
//! `README.md` and `docs/` leads to a file, and a heading, that exist. No
//! database: these read the repository's own files.
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository's folder")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn is_fence(line: &str) -> bool {
    line.trim_start().starts_with("```")
}

/// The section under `## {title}`, up to the next heading of its level,
/// headings inside code blocks not counting.
fn section<'a>(markdown: &'a str, title: &str) -> Option<Vec<&'a str>> {
    let heading = format!("## {title}");
    let mut lines = markdown.lines();
    lines.find(|l| l.trim_end() == heading)?;
    let mut fenced = false;
    let mut body = Vec::new();
    for line in lines {
        if is_fence(line) {
            fenced = !fenced;
        } else if !fenced && line.starts_with("## ") {
            break;
        }
        body.push(line);
    }
    Some(body)
}

/// The folders the Layout lists: the first word of each line of its code
/// blocks that names a path under `crates/`, without a trailing `/`.
fn listed(layout: &[&str]) -> BTreeSet<String> {
    let mut fenced = false;
    let mut found = BTreeSet::new();
    for line in layout {
        if is_fence(line) {
            fenced = !fenced;
            continue;
        }
        let first = line.split_whitespace().next();
        if let Some(path) = first.filter(|w| fenced && w.starts_with("crates/")) {
            found.insert(path.trim_end_matches('/').to_owned());
        }
    }
    found
}

/// Every crate (a folder of `crates/` with a `Cargo.toml`) and every folder
/// under a crate's `src/`, as paths from the repository's root.
fn folders(repository: &Path) -> BTreeSet<String> {
    fn walk(dir: &Path, name: &str, into: &mut BTreeSet<String>) {
        let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let entry = entry.expect("a folder entry");
            if entry.file_type().expect("its type").is_dir() {
                let file_name = entry.file_name();
                let child = format!("{name}/{}", file_name.to_string_lossy());
                walk(&entry.path(), &child, into);
                into.insert(child);
            }
        }
    }
    let mut all = BTreeSet::new();
    let crates = repository.join("crates");
    for entry in fs::read_dir(&crates).expect("the crates folder") {
        let entry = entry.expect("a folder entry");
        if !entry.path().join("Cargo.toml").is_file() {
            continue;
        }
        let name = format!("crates/{}", entry.file_name().to_string_lossy());
        let src = entry.path().join("src");
        if src.is_dir() {
            walk(&src, &format!("{name}/src"), &mut all);
        }
        all.insert(name);
    }
    all
}

/// What is wrong with a Layout: the folders it does not name, and the paths
/// it names that do not exist.
fn layout_problems(layout: &[&str], repository: &Path) -> Vec<String> {
    let named = listed(layout);
    let mut problems: Vec<String> = folders(repository)
        .difference(&named)
        .map(|f| format!("{f}/ is not in the README's Layout"))
        .collect();
    problems.extend(
        named
            .iter()
            .filter(|p| !repository.join(p).exists())
            .map(|p| format!("{p}/ is in the README's Layout but does not exist")),
    );
    problems
}

#[test]
fn the_readme_layout_names_every_crate_and_module_folder() {
    let repository = repository();
    let readme = read(&repository.join("README.md"));
    let layout = section(&readme, "Layout").expect("README.md has a `## Layout` section");
    let problems = layout_problems(&layout, &repository);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_folder_left_out_of_the_layout_is_named() {
    let repository = repository();
    let readme = read(&repository.join("README.md"));
    let layout = section(&readme, "Layout").expect("README.md has a `## Layout` section");
    for left_out in ["crates/app/src/events", "crates/bench"] {
        let line = format!("{left_out}/");
        let without: Vec<&str> = layout
            .iter()
            .copied()
            .filter(|l| l.split_whitespace().next() != Some(line.as_str()))
            .collect();
        assert_eq!(
            without.len() + 1,
            layout.len(),
            "{left_out}/ has a line of its own"
        );
        assert_eq!(
            layout_problems(&without, &repository),
            [format!("{left_out}/ is not in the README's Layout")]
        );
    }
}

/// The anchor GitHub gives a heading: lower case, spaces as `-`, and every
/// other character but letters, digits, `-` and `_` left out.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown file's headings (a repeated one numbered as
/// GitHub numbers it).
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut found = BTreeSet::new();
    for line in markdown.lines() {
        if is_fence(line) {
            fenced = !fenced;
            continue;
        }
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if fenced || !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = anchor(&line[hashes..]);
        let mut candidate = base.clone();
        let mut n = 0;
        while !found.insert(candidate.clone()) {
            n += 1;
            candidate = format!("{base}-{n}");
        }
    }
    found
}

/// The targets of a Markdown file's links and images, outside code blocks
/// and code spans.
fn link_targets(markdown: &str) -> Vec<(usize, String)> {
    let mut fenced = false;
    let mut targets = Vec::new();
    for (number, line) in markdown.lines().enumerate() {
        if is_fence(line) {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let end = rest.find(')').unwrap_or(rest.len());
            targets.push((number + 1, rest[..end].to_owned()));
            rest = &rest[end..];
        }
    }
    targets
}

#[test]
fn every_relative_link_of_the_documentation_resolves() {
    let repository = repository();
    let mut files = vec![repository.join("README.md")];
    let docs = repository.join("docs");
    for entry in fs::read_dir(&docs).expect("the docs folder") {
        let path = entry.expect("a folder entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = read(file);
        let shown = file
            .strip_prefix(&repository)
            .unwrap_or(file.as_path())
            .display();
        for (line, target) in link_targets(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, fragment) = target.split_once('#').unwrap_or((target.as_str(), ""));
            let linked = if path.is_empty() {
                file.clone()
            } else {
                file.parent().expect("a file's folder").join(path)
            };
            if !linked.exists() {
                broken.push(format!("{shown}:{line}: {target}: no such file"));
            } else if !fragment.is_empty() && !anchors(&read(&linked)).contains(fragment) {
                broken.push(format!("{shown}:{line}: {target}: no such heading"));
            }
        }
    }
    assert!(
        checked > 0,
        "no relative link found: the link reader is wrong"
    );
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn anchors_are_made_as_github_makes_them() {
    assert_eq!(anchor("One room, one link"), "one-room-one-link");
    assert_eq!(anchor("PostgreSQL and replicas"), "postgresql-and-replicas");
    assert_eq!(
        anchor("Scheduling: assignment, join URLs"),
        "scheduling-assignment-join-urls"
    );
    assert_eq!(
        anchors("# A\n```\n# not a heading\n```\n## A\n"),
        BTreeSet::from(["a".to_owned(), "a-1".to_owned()])
    );
}
