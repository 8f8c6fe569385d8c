//! The file-system paths a plan makes the cluster read or write: a file
//! source's directory and its `dead_letter_path`, a file sink's directory,
//! a lookup join's file side, any dead-letter directory of an error policy.
//! One list, so that whoever confines paths (the JobManager at submission)
//! sees every one; the match below has no wildcard arm, so a new operator
//! kind must say what it touches.
//!
//! A plan's UDF libraries name their source file (`UdfLibrary::path`) for
//! messages only: the cluster runs the artifact by digest from its own blob
//! store and never opens that path.

use crate::graph::JobGraph;
use crate::ir::{ErrorPolicy, FileSource, LookupSide, OperatorKind};

/// One path of a plan: the operator's name, what the path is for (`the file
/// sink's path`) and the path as the plan has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanPath<'a> {
    pub operator: &'a str,
    pub what: &'static str,
    pub path: &'a str,
}

/// Every file-system path the plan's operators read or write, in plan order.
pub fn plan_paths(graph: &JobGraph) -> Vec<PlanPath<'_>> {
    let mut out = Vec::new();
    for v in graph.graph.node_weights() {
        for o in &v.operators {
            let mut found = kind_paths(&o.kind);
            found.extend(dead_letter_dir(o.on_error.as_ref(), "the stage's dead-letter directory"));
            out.extend(found.into_iter().map(|(what, path)| PlanPath { operator: &o.name, what, path }));
        }
    }
    out
}

fn dead_letter_dir<'a>(policy: Option<&'a ErrorPolicy>, what: &'static str) -> Option<(&'static str, &'a str)> {
    match policy? {
        ErrorPolicy::DeadLetterFiles(p) => Some((what, p.as_str())),
        ErrorPolicy::Fail | ErrorPolicy::Skip | ErrorPolicy::DeadLetter(_) => None,
    }
}

fn file_source<'a>(f: &'a FileSource, path: &'static str, dead_letters: &'static str) -> Vec<(&'static str, &'a str)> {
    let mut out = vec![(path, f.path.as_str())];
    out.extend(dead_letter_dir(Some(&f.on_error), dead_letters));
    out
}

fn kind_paths(kind: &OperatorKind) -> Vec<(&'static str, &str)> {
    let sink_dead_letters = "the sink's dead-letter directory";
    match kind {
        OperatorKind::FileSource(f) => file_source(f, "the file source's path", "the file source's `dead_letter_path`"),
        OperatorKind::FileSink(f) => vec![("the file sink's path", f.path.as_str())],
        OperatorKind::LookupJoin(j) => match &j.side {
            LookupSide::File(f) => {
                file_source(f, "the lookup join's side path", "the lookup join side's `dead_letter_path`")
            }
            LookupSide::Kafka(k) => {
                dead_letter_dir(Some(&k.on_error), "the lookup join side's dead-letter directory").into_iter().collect()
            }
        },
        OperatorKind::KafkaSource(k) => {
            dead_letter_dir(Some(&k.on_error), "the Kafka source's dead-letter directory").into_iter().collect()
        }
        OperatorKind::KafkaSink(k) => dead_letter_dir(Some(&k.on_error), sink_dead_letters).into_iter().collect(),
        OperatorKind::UpsertKafkaSink(u) => {
            dead_letter_dir(Some(&u.sink.on_error), sink_dead_letters).into_iter().collect()
        }
        OperatorKind::DatagenSource(_)
        | OperatorKind::NexmarkSource(_)
        | OperatorKind::Watermark(_)
        | OperatorKind::Filter(_)
        | OperatorKind::Project(_)
        | OperatorKind::WindowAggregate(_)
        | OperatorKind::Union
        | OperatorKind::Join(_)
        | OperatorKind::LateOutput
        | OperatorKind::WindowTop(_)
        | OperatorKind::WindowTopPer(_)
        | OperatorKind::PrintSink
        | OperatorKind::DiscardSink
        | OperatorKind::RunningAggregate(_)
        | OperatorKind::Dedup(_)
        | OperatorKind::KeyedTop(_)
        | OperatorKind::Unnest(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{compile, CheckOptions};
    use flowc_dsl::SourceFile;

    fn paths(text: &str) -> Vec<(String, &'static str, String)> {
        let src = SourceFile::new("t.flow", text);
        let c = compile(&src, &CheckOptions::default()).unwrap_or_else(|d| panic!("{}", src.render_all(&d)));
        plan_paths(&c.graph).into_iter().map(|p| (p.operator.to_string(), p.what, p.path.to_string())).collect()
    }

    #[test]
    fn lists_every_path_a_job_reads_or_writes() {
        let got = paths(
            r#"job "Paths"
schema Click { user: string, page: string }
schema Page { page: string, category: string }
let pages = source file { path: "/side", format: csv, schema: Page, on_error: dead_letter, dead_letter_path: "/side-bad" }
source file { path: "/in", schema: Click, on_error: dead_letter, dead_letter_path: "/in-bad" } name "Clicks"
    | left join pages as of proctime() on page == pages.page name "Enrich"
    | select { user, page: left.page, category }
    | sink file { path: "/out" } name "Out"
"#,
        );
        let whats: Vec<(&str, &str)> = got.iter().map(|(_, w, p)| (*w, p.as_str())).collect();
        for want in [
            ("the file source's path", "/in"),
            ("the file source's `dead_letter_path`", "/in-bad"),
            ("the lookup join's side path", "/side"),
            ("the lookup join side's `dead_letter_path`", "/side-bad"),
            ("the file sink's path", "/out"),
        ] {
            assert!(whats.contains(&want), "{want:?} missing from {got:?}");
        }
        assert_eq!(got.len(), 5, "{got:?}");
        assert!(got.iter().any(|(o, _, p)| o == "Out" && p == "/out"), "{got:?}");
    }

    #[test]
    fn a_job_without_files_has_no_paths() {
        let got = paths(
            "job \"None\"\nschema E { n: long }\nsource datagen { schema: E, count: 5, n: sequence(1, 5) }\n    | filter n > 2\n    | sink discard\n",
        );
        assert_eq!(got, Vec::new());
    }
}
