//! `docs/cookbook.md` cannot drift from the product: each recipe's code
//! block is its file in `jobs/examples/` (marked `<!-- recipe: PATH -->`
//! before the block), every example has a recipe, every recipe passes
//! `flowc check`, and a recipe whose output is shown (`<!-- output -->`
//! before the block) prints exactly those records when run with `flowc run`
//! (compared as multisets: a job with two print sinks interleaves them).
//! Its table of contents lists every section, in order, with the anchor
//! GitHub gives it.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::cluster::{flowc_bin, Scratch};
use support::local::{flowc_run_ok, printed_records};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// One marked block of the page.
struct Marked {
    /// The line of the mark, 1-based.
    line: usize,
    mark: String,
    text: String,
}

/// The fenced blocks that follow a `<!-- recipe: … -->`, `<!-- file: … -->`
/// or `<!-- output -->` mark.
fn marked_blocks(page: &str) -> Vec<Marked> {
    let mut out = Vec::new();
    let lines: Vec<&str> = page.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim();
        if let Some(mark) = t.strip_prefix("<!--").and_then(|m| m.strip_suffix("-->")) {
            let mark = mark.trim().to_string();
            let at = i + 1;
            i += 1;
            assert!(
                lines.get(i).is_some_and(|l| l.starts_with("```")),
                "docs/cookbook.md:{at}: the mark `{mark}` must stand right before a fenced block"
            );
            i += 1;
            let mut text = String::new();
            while i < lines.len() && !lines[i].starts_with("```") {
                text.push_str(lines[i]);
                text.push('\n');
                i += 1;
            }
            out.push(Marked { line: at, mark, text });
        }
        i += 1;
    }
    out
}

fn examples(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("reading jobs/examples") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            examples(&path, out);
        } else if path.extension().is_some_and(|e| e == "flow") {
            out.push(path);
        }
    }
}

/// The records `flowc run` prints (the client's own messages left out).
/// Run from the repository's root, as the examples say (their default
/// inputs are paths from there); only jobs that print are run.
fn records_printed(job: &Path) -> Vec<String> {
    let scratch = Scratch::new("cookbook");
    let mut lines = printed_records(&flowc_run_ok(&scratch, root(), job, &[]));
    lines.sort();
    lines
}

#[test]
fn the_cookbook_is_the_examples_and_prints_what_it_shows() {
    let page = std::fs::read_to_string(root().join("docs/cookbook.md")).expect("reading docs/cookbook.md");
    let blocks = marked_blocks(&page);
    let mut recipes: BTreeMap<PathBuf, usize> = BTreeMap::new();
    let mut last_recipe: Option<PathBuf> = None;
    let mut shown = 0;
    for b in &blocks {
        if let Some(path) = b.mark.strip_prefix("recipe:").or_else(|| b.mark.strip_prefix("file:")) {
            let path = root().join(path.trim());
            let file = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("docs/cookbook.md:{}: {}: {e}", b.line, path.display()));
            assert_eq!(
                b.text,
                file,
                "docs/cookbook.md:{}: the block differs from {}: copy the file into the page",
                b.line,
                path.display()
            );
            if b.mark.starts_with("recipe:") {
                recipes.insert(path.clone(), b.line);
                last_recipe = Some(path);
            }
        } else if b.mark == "output" {
            let job =
                last_recipe.clone().unwrap_or_else(|| panic!("docs/cookbook.md:{}: output before any recipe", b.line));
            let mut expected: Vec<String> = b.text.lines().map(str::to_string).collect();
            expected.sort();
            assert_eq!(
                records_printed(&job),
                expected,
                "docs/cookbook.md:{}: {} prints other records than the page shows",
                b.line,
                job.display()
            );
            shown += 1;
        } else {
            panic!("docs/cookbook.md:{}: unknown mark `{}`", b.line, b.mark);
        }
    }
    assert!(shown >= 5, "only {shown} recipes show their output");

    let mut all = Vec::new();
    examples(&root().join("jobs/examples"), &mut all);
    all.sort();
    let missing: Vec<String> =
        all.iter().filter(|p| !recipes.contains_key(*p)).map(|p| p.display().to_string()).collect();
    assert!(missing.is_empty(), "examples without a recipe in docs/cookbook.md: {missing:?}");

    for (job, line) in &recipes {
        let o = Command::new(flowc_bin()).arg("check").arg(job).output().expect("running flowc check");
        assert!(
            o.status.success(),
            "docs/cookbook.md:{line}: flowc check {} failed:\n{}{}",
            job.display(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// GitHub's anchor of a heading: lower case, punctuation dropped (letters,
/// digits, `_` and `-` kept), spaces made `-`.
fn anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn the_table_of_contents_lists_every_section() {
    let page = std::fs::read_to_string(root().join("docs/cookbook.md")).expect("reading docs/cookbook.md");
    let mut in_fence = false;
    let mut headings = Vec::new();
    let mut entries = Vec::new();
    for line in page.lines() {
        if line.starts_with("```") {
            in_fence = !in_fence;
        } else if in_fence {
            continue;
        } else if let Some(h) = line.strip_prefix("## ") {
            headings.push(format!("- [{h}](#{})", anchor(h)));
        } else if line.starts_with("- [") && line.contains("](#") {
            entries.push(line.to_string());
        }
    }
    assert!(headings.len() >= 30, "{headings:?}");
    assert_eq!(entries, headings, "the table of contents is `- [Heading](#anchor)` for each `## Heading`, in order");
    assert_eq!(anchor("The latest row per key (`dedup … keep last`)"), "the-latest-row-per-key-dedup--keep-last");
}
