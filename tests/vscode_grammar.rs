//! The VS Code grammar (`editors/vscode/syntaxes/flow.tmLanguage.json`)
//! keeps up with the parser: every stage of `flowc_dsl::parser::STAGES` is
//! highlighted as a stage, every statement keyword as a statement, and
//! every other word of `dsl/src/flow.pest` (keywords, types, literals,
//! attributes) is named by some rule of the grammar. `bash
//! editors/vscode/build.sh` tests the scopes themselves
//! (`editors/vscode/test/*.flow`); this test fails first when the language
//! grows a word the grammar does not know.

use flowc_dsl::parser::{STAGES, STATEMENT_KEYWORDS};
use serde_json::Value;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A rule of the grammar: its regular expressions (`match`, `begin`,
/// `end`) and every scope it gives.
struct Rule {
    regex: String,
    scopes: Vec<String>,
}

fn rules(v: &Value, out: &mut Vec<Rule>) {
    match v {
        Value::Object(o) => {
            let regex: Vec<&str> = ["match", "begin", "end"].iter().filter_map(|k| o.get(*k)?.as_str()).collect();
            if !regex.is_empty() {
                let mut scopes = Vec::new();
                scopes_of(v, &mut scopes);
                // `\b`, `\s`: escapes are not letters of a word.
                let mut text = String::new();
                let joined = regex.join(" ");
                let mut chars = joined.chars().peekable();
                while let Some(c) = chars.next() {
                    if c == '\\' && chars.peek().is_some_and(|n| n.is_ascii_alphabetic()) {
                        chars.next();
                        text.push(' ');
                    } else {
                        text.push(c);
                    }
                }
                out.push(Rule { regex: text, scopes });
            }
            for (k, x) in o {
                if k != "captures" && k != "beginCaptures" && k != "endCaptures" {
                    rules(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| rules(x, out)),
        _ => {}
    }
}

fn scopes_of(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                match (k.as_str(), x) {
                    ("name", Value::String(s)) => out.push(s.clone()),
                    ("captures" | "beginCaptures" | "endCaptures", _) => scopes_of(x, out),
                    (_, Value::Object(_)) if k.chars().all(|c| c.is_ascii_digit()) => scopes_of(x, out),
                    _ => {}
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| scopes_of(x, out)),
        _ => {}
    }
}

/// Whether `word` stands as a whole word in `text`.
fn has_word(text: &str, word: &str) -> bool {
    let is_word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    text.match_indices(word)
        .any(|(i, _)| !is_word(text[..i].chars().last()) && !is_word(text[i + word.len()..].chars().next()))
}

/// The words of the parser's grammar: its quoted literals of two letters
/// or more (one-letter ones are escapes and duration units), outside
/// comments.
fn pest_words() -> Vec<String> {
    let pest = std::fs::read_to_string(root().join("dsl/src/flow.pest")).expect("reading flow.pest");
    let mut words = Vec::new();
    for line in pest.lines().filter(|l| !l.trim_start().starts_with("//")) {
        for (i, piece) in line.split('"').enumerate() {
            let literal = i % 2 == 1;
            let word = piece.len() >= 2 && piece.chars().all(|c| c.is_ascii_lowercase() || c == '_');
            if literal && word && !words.iter().any(|w| w == piece) {
                words.push(piece.to_string());
            }
        }
    }
    words
}

fn grammar() -> Vec<Rule> {
    let path = root().join("editors/vscode/syntaxes/flow.tmLanguage.json");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("reading the grammar")).expect("JSON");
    let mut out = Vec::new();
    rules(&json["patterns"], &mut out);
    rules(&json["repository"], &mut out);
    out
}

fn missing(rules: &[Rule], words: &[String], scope: Option<&str>) -> Vec<String> {
    words
        .iter()
        .filter(|w| {
            !rules.iter().any(|r| has_word(&r.regex, w) && scope.is_none_or(|s| r.scopes.iter().any(|x| x == s)))
        })
        .cloned()
        .collect()
}

#[test]
fn the_grammar_highlights_every_stage_and_keyword_of_the_parser() {
    let rules = grammar();
    assert!(rules.len() > 20, "{} rules", rules.len());
    let stages: Vec<String> = STAGES.iter().map(|s| s.to_string()).chain(["left".to_string()]).collect();
    assert_eq!(missing(&rules, &stages, Some("keyword.other.stage.flow")), Vec::<String>::new(), "stages");
    let statements: Vec<String> = STATEMENT_KEYWORDS.iter().map(|s| s.to_string()).chain(["rust".into()]).collect();
    assert_eq!(
        missing(&rules, &statements, Some("keyword.control.statement.flow")),
        Vec::<String>::new(),
        "statements"
    );
    let words = pest_words();
    for w in ["unnest", "ordinality", "versioned", "null", "array", "epoch_millis", "on_error", "where"] {
        assert!(words.iter().any(|x| x == w), "{w} is a word of flow.pest: {words:?}");
    }
    assert_eq!(missing(&rules, &words, None), Vec::<String>::new(), "words of flow.pest");
}

#[test]
fn a_word_the_grammar_lacks_is_found() {
    let rules = grammar();
    let words = ["frobnicate".to_string(), "top".to_string()];
    assert_eq!(missing(&rules, &words, None), ["frobnicate"]);
    assert_eq!(missing(&rules, &["ttl".into()], Some("keyword.other.stage.flow")), ["ttl"]);
    assert!(has_word("(by|on)", "on") && !has_word("(by|once)", "on") && !has_word("on_error", "on"));
}
