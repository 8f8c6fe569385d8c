//! Program arguments bound to the job's `param` and `flag` declarations:
//! defaults, values given on the command line, their types, and arguments
//! that name no parameter.

use super::Checker;
use crate::args::ProgramArgs;
use crate::consts::{self, Const};
use flowc_dsl::ast::{self, Item, JobFile, ParamType};
use flowc_dsl::diagnostic::suggest;
use flowc_dsl::{Diagnostic, Span};
use std::collections::BTreeMap;

impl Checker {
    pub(super) fn bind_params(&mut self, file: &JobFile, args: &ProgramArgs) {
        let mut declared: BTreeMap<String, Span> = BTreeMap::new();
        for item in &file.items {
            let (name, decl_span) = match item {
                Item::Param(p) => (&p.name, p.span),
                Item::Flag(f) => (f, f.span),
                _ => continue,
            };
            if let Some(first) = declared.get(&name.text) {
                let first = *first;
                self.err(
                    Diagnostic::error(
                        "flow::check::duplicate-param",
                        format!("parameter `{}` is declared twice", name.text),
                        name.span,
                    )
                    .with_label("declared again here")
                    .with_secondary(first, "first declared here"),
                );
                continue;
            }
            declared.insert(name.text.clone(), decl_span);
            let given = args.values.get(&name.text);
            let value = match item {
                Item::Flag(_) => match given {
                    None => Some(Const::Bool(false)),
                    Some(None) => Some(Const::Bool(true)),
                    Some(Some(v)) => match v.as_str() {
                        "true" => Some(Const::Bool(true)),
                        "false" => Some(Const::Bool(false)),
                        other => {
                            self.err(
                                Diagnostic::error(
                                    "flow::args::flag-value",
                                    format!("flag `--{}` takes no value, but was given `{other}`", name.text),
                                    name.span,
                                )
                                .with_label("declared as a flag here")
                                .with_help(format!("write `--{}` alone, or `--{}=false`", name.text, name.text)),
                            );
                            None
                        }
                    },
                },
                Item::Param(p) => match given {
                    Some(Some(v)) => self.parse_param(p, v),
                    Some(None) => {
                        self.err(
                            Diagnostic::error(
                                "flow::args::missing-value",
                                format!("`--{}` needs a value", name.text),
                                p.span,
                            )
                            .with_label(format!("declared as {} here", p.ty.keyword()))
                            .with_help(format!("write `--{} VALUE`", name.text)),
                        );
                        None
                    }
                    None => match &p.default {
                        Some(d) => match consts::eval(d, &self.params) {
                            Ok(v) => self.coerce_param(p, v, d.span),
                            Err(e) => {
                                self.err(e);
                                None
                            }
                        },
                        None => {
                            self.err(
                                Diagnostic::error(
                                    "flow::args::unbound",
                                    format!("parameter `{}` has no value", name.text),
                                    p.span,
                                )
                                .with_label("declared without a default")
                                .with_help(format!(
                                    "pass `--{} VALUE` after the job file, or give it a default: `= …`",
                                    name.text
                                )),
                            );
                            None
                        }
                    },
                },
                _ => None,
            };
            // A value given wrong (missing, or not of the declared type) was
            // reported above and fails the compile. Checking goes on with the
            // declared default, if any, so that the argument's error is the
            // only one, not followed by errors at every use of the parameter.
            let value = match (value, item, given) {
                (None, Item::Param(p), Some(_)) => {
                    p.default.as_ref().and_then(|d| consts::eval(d, &self.params).ok()).filter(|v| {
                        matches!(
                            (p.ty, v),
                            (ParamType::String, Const::Str(_))
                                | (ParamType::Int | ParamType::Long, Const::Int(_))
                                | (ParamType::Double, Const::Float(_) | Const::Int(_))
                                | (ParamType::Bool, Const::Bool(_))
                                | (ParamType::Duration, Const::Duration(_))
                        )
                    })
                }
                (v, _, _) => v,
            };
            if let Some(v) = value {
                self.params.insert(name.text.clone(), v);
            }
        }
        for given in args.values.keys() {
            if !declared.contains_key(given) {
                let mut d =
                    Diagnostic::unlocated("flow::args::unknown", format!("unknown program argument `--{given}`"));
                let all: Vec<String> = declared.keys().map(|k| format!("--{k}")).collect();
                d = match suggest(given, declared.keys().map(String::as_str)) {
                    Some(s) => d.with_help(format!("did you mean `--{s}`?")),
                    None if all.is_empty() => d.with_help("this job declares no parameters"),
                    None => d.with_help(format!("this job's parameters are: {}", all.join(", "))),
                };
                self.err(d);
            }
        }
    }

    pub(super) fn parse_param(&mut self, p: &ast::ParamDecl, raw: &str) -> Option<Const> {
        let v = match p.ty {
            ParamType::String => Some(Const::Str(raw.to_string())),
            ParamType::Int => raw.parse::<i32>().ok().map(|i| Const::Int(i.into())),
            ParamType::Long => raw.parse::<i64>().ok().map(Const::Int),
            ParamType::Double => raw.parse::<f64>().ok().filter(|x| x.is_finite()).map(Const::Float),
            ParamType::Bool => match raw {
                "true" => Some(Const::Bool(true)),
                "false" => Some(Const::Bool(false)),
                _ => None,
            },
            ParamType::Duration => parse_duration(raw).map(Const::Duration),
        };
        if v.is_none() {
            let example = match p.ty {
                ParamType::String => "text",
                ParamType::Int => "42",
                ParamType::Long => "42",
                ParamType::Double => "0.5",
                ParamType::Bool => "true",
                ParamType::Duration => "15s",
            };
            self.err(
                Diagnostic::error(
                    "flow::args::type",
                    format!("`--{} {raw}`: `{raw}` is not a valid {}", p.name.text, p.ty.keyword()),
                    p.ty_span,
                )
                .with_label(format!("declared as {} here", p.ty.keyword()))
                .with_help(format!("for example `--{} {example}`", p.name.text)),
            );
        }
        v
    }

    pub(super) fn coerce_param(&mut self, p: &ast::ParamDecl, v: Const, span: Span) -> Option<Const> {
        let ok = match (p.ty, &v) {
            (ParamType::String, Const::Str(_))
            | (ParamType::Int | ParamType::Long, Const::Int(_))
            | (ParamType::Bool, Const::Bool(_))
            | (ParamType::Duration, Const::Duration(_)) => Some(v.clone()),
            (ParamType::Double, Const::Float(_)) => Some(v.clone()),
            (ParamType::Double, Const::Int(i)) => Some(Const::Float(*i as f64)),
            _ => None,
        };
        if ok.is_none() {
            self.err(
                Diagnostic::error(
                    "flow::check::type",
                    format!("the default of `{}` must be {}, not {}", p.name.text, p.ty.keyword(), v.kind()),
                    span,
                )
                .with_label(format!("this is {}", v.kind())),
            );
        }
        if let (ParamType::Int, Some(Const::Int(i))) = (p.ty, &ok) {
            if i32::try_from(*i).is_err() {
                self.err(Diagnostic::error("flow::check::type", "the default does not fit in an int", span));
                return None;
            }
        }
        ok
    }
}

/// Parses `15s`, `200ms`, `1m`, `2h`, `1d` or a bare number of milliseconds.
pub fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..digits].parse().ok()?;
    let unit = match &s[digits..] {
        "" | "ms" => 1,
        "s" => 1000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit)
}
