//! Sources and sinks: their kinds, their settings, and the datagen
//! source's generators.

use super::stream::StreamEnd;
use super::Checker;
use crate::catalog::{self, Role};
use crate::consts::{self, Const};
use crate::ir::*;
use crate::logical::{JobSettings, Partitioning};
use flowc_dsl::ast::{self, Connector};
use flowc_dsl::diagnostic::suggest;
use flowc_dsl::{Diagnostic, Span};
use std::collections::HashMap;

impl Checker {
    /// A pipeline's source. When it fails, what is known goes on: the
    /// records' schema if the source names one, else nothing.
    pub(super) fn source(&mut self, c: &Connector, settings: &JobSettings) -> StreamEnd {
        let whole = c.props.as_ref().map_or(c.span, |p| p.span);
        let (kind, schema, name) = match c.kind.text.as_str() {
            "kafka" => {
                let props = self.props(c.props.as_ref(), &catalog::keys(Role::Source, "kafka"), "a kafka source");
                let servers = self.string_prop(&props, "servers", None, whole);
                let topics = self.kafka_topics(&props, whole);
                let topic = topics.as_ref().map(|t| t.topic.clone()).filter(|t| !t.is_empty());
                let group = self.string_prop(&props, "group", Some("flowc"), whole);
                let values = |key| catalog::values(Role::Source, "kafka", key);
                let offsets = self.symbol_prop(&props, "offsets", values("offsets"), "committed");
                let bounded = self.symbol_prop(&props, "bounded", values("bounded"), "none");
                let schema = self.schema_prop(&props, whole);
                // The format reads the value: the fields not from metadata.
                let payload = schema.as_ref().map(Schema::payload);
                let format = self.format_prop(&props, values("format"), payload.as_ref(), false);
                let on_error = self.source_error_policy(&props, servers.as_deref(), topic.as_deref(), whole);
                let name = format!("Source: Kafka({})", topics.as_ref().map(|t| t.shown()).unwrap_or_default());
                let spec = || -> Option<KafkaSource> {
                    let topics = topics?;
                    Some(KafkaSource {
                        format: format?,
                        servers: servers?,
                        topic: topics.topic,
                        topics: topics.set,
                        discovery_ms: topics.discovery_ms,
                        group: group?,
                        offsets: match offsets?.as_str() {
                            "earliest" => StartingOffsets::Earliest,
                            "latest" => StartingOffsets::Latest,
                            _ => StartingOffsets::Committed,
                        },
                        bounded: bounded?.as_str() == "latest",
                        schema: schema.clone()?,
                        on_error: on_error?,
                        // Set by a `versioned by` that follows (`joins`).
                        tombstones: None,
                    })
                };
                (spec().map(OperatorKind::KafkaSource), schema, name)
            }
            "file" => {
                let props = self.props(c.props.as_ref(), &catalog::keys(Role::Source, "file"), "a file source");
                let path = self.string_prop(&props, "path", None, whole);
                let schema = self.schema_prop(&props, whole);
                let values = |key| catalog::values(Role::Source, "file", key);
                let format = self.format_prop(&props, values("format"), schema.as_ref(), true);
                let on_error = if props.contains_key("dead_letter_path") {
                    self.dead_letter_path(&props, whole)
                } else {
                    self.source_error_policy(&props, None, None, whole)
                };
                let watch_ms = match props.get("watch") {
                    None | Some((Const::None, _)) => Some(None),
                    Some((Const::Duration(ms), _)) if *ms > 0 => Some(Some(*ms)),
                    Some((v, s)) => {
                        self.bad_prop("watch", "a positive duration or `none`", v, *s);
                        None
                    }
                };
                let spec = || -> Option<FileSource> {
                    Some(FileSource {
                        path: path?,
                        format: format?,
                        schema: schema.clone()?,
                        watch_ms: watch_ms?,
                        on_error: on_error?,
                    })
                };
                (spec().map(OperatorKind::FileSource), schema, "Source: File".to_string())
            }
            "datagen" => {
                let (kind, schema) = self.datagen(c, whole);
                (kind, schema, "Source: Datagen".to_string())
            }
            "nexmark" => {
                let (kind, schema) = self.nexmark(c, whole);
                let name = schema.as_ref().and_then(|s| s.name.clone()).unwrap_or_default();
                (kind, schema, format!("Source: Nexmark({name})"))
            }
            other => {
                let mut d =
                    Diagnostic::error("flow::check::source-kind", format!("unknown source `{other}`"), c.kind.span)
                        .with_label("not a source");
                d = match suggest(other, catalog::kinds(Role::Source).map(|k| k.name)) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help("sources are `kafka { … }`, `file { … }`, `datagen { … }` and `nexmark { … }`"),
                };
                self.err(d);
                // Its records are still those of the schema it names.
                let named = c.props.as_ref().and_then(|p| p.entries.iter().find(|e| e.key.text == "schema"));
                let schema = named.and_then(|e| {
                    let value = consts::eval(&e.value, &self.params).ok()?;
                    self.schema_prop(&HashMap::from([("schema".to_string(), (value, e.value.span))]), whole)
                });
                (None, schema, String::new())
            }
        };
        let Some(schema) = schema else {
            self.check_attrs(&c.attrs);
            return StreamEnd::unknown(c.span);
        };
        if c.kind.text != "kafka" && !name.is_empty() {
            self.metadata_outside_kafka(&schema, &c.kind.text, c.kind.span);
        }
        // Downstream, a metadata field is a field like any other.
        let schema = schema.without_metadata();
        let op = self.add_op(kind, name, &c.attrs, None, Partitioning::Forward, schema.clone(), c.span, settings);
        StreamEnd::new(op, schema, false, c.span)
    }

    /// A datagen source: the operator if everything checked, and the schema
    /// it names if that resolved.
    pub(super) fn datagen(&mut self, c: &Connector, whole: Span) -> (Option<OperatorKind>, Option<Schema>) {
        // Settings first, to find the schema; every other key names a field.
        let entries = c.props.as_ref().map_or(&[][..], |p| &p.entries[..]);
        let settings = catalog::keys(Role::Source, "datagen");
        let mut fixed = HashMap::new();
        for p in entries {
            if settings.contains(&p.key.text.as_str()) {
                match consts::eval(&p.value, &self.params) {
                    Ok(v) => {
                        fixed.insert(p.key.text.clone(), (v, p.value.span));
                    }
                    Err(d) => self.err(d),
                }
            }
        }
        let Some(schema) = self.schema_prop(&fixed, whole) else { return (None, None) };
        let mut ok = true;
        let count = match fixed.get("count") {
            None | Some((Const::None, _)) => None,
            Some((Const::Int(n), _)) if *n >= 0 => Some(*n as u64),
            Some((v, s)) => {
                self.bad_prop("count", "a non-negative integer or `none`", v, *s);
                ok = false;
                None
            }
        };
        let rate = match fixed.get("rate") {
            None | Some((Const::None, _)) | Some((Const::Int(0), _)) => None,
            Some((Const::Int(n), _)) if *n > 0 => Some(*n as u64),
            Some((v, s)) => {
                self.bad_prop("rate", "records per second, or `none` for as fast as possible", v, *s);
                ok = false;
                None
            }
        };
        let json = match fixed.get("format") {
            None => false,
            Some((Const::Symbol(s), _)) if s == "json" => true,
            Some((v, s)) => {
                self.bad_prop("format", "`json`", v, *s);
                ok = false;
                false
            }
        };
        let mut generators: Vec<Option<Generator>> = vec![None; schema.fields.len()];
        for p in entries {
            if settings.contains(&p.key.text.as_str()) {
                continue;
            }
            let Some(i) = schema.index_of(&p.key.text) else {
                let mut d = Diagnostic::error(
                    "flow::check::unknown-setting",
                    format!("`{}` is neither a datagen setting nor a field", p.key.text),
                    p.key.span,
                )
                .with_label("unknown");
                let mut names: Vec<&str> = settings.clone();
                names.extend(schema.fields.iter().map(|f| f.name.as_str()));
                if let Some(s) = suggest(&p.key.text, names.iter().copied()) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                self.err(d);
                continue;
            };
            match self.generator(&p.value, schema.fields[i].ty) {
                Some(g) => generators[i] = Some(g),
                None => ok = false,
            }
        }
        let generators: Vec<Generator> = generators
            .into_iter()
            .zip(&schema.fields)
            .map(|(g, f)| {
                g.unwrap_or(match f.ty {
                    DataType::String => {
                        Generator::Cycle(vec![Value::Str(format!("{}-a", f.name)), Value::Str(format!("{}-b", f.name))])
                    }
                    DataType::Bool => Generator::Cycle(vec![Value::Bool(true), Value::Bool(false)]),
                    DataType::Array(_) => Generator::Constant(Value::Array(Vec::new())),
                    _ => Generator::Sequence { start: 0, step: 1 },
                })
            })
            .collect();
        let spec = DatagenSource { schema: schema.clone(), generators, count, rate, json };
        (ok.then_some(OperatorKind::DatagenSource(spec)), Some(schema))
    }

    /// A nexmark source: the operator if everything checked, and its kind's
    /// fixed schema (`Person`, `Auction` or `Bid`) if the kind is known.
    pub(super) fn nexmark(&mut self, c: &Connector, whole: Span) -> (Option<OperatorKind>, Option<Schema>) {
        let props = self.props(c.props.as_ref(), &catalog::keys(Role::Source, "nexmark"), "a nexmark source");
        let kind = match props.get("kind") {
            Some((Const::Symbol(s), _)) if NexmarkKind::by_word(s).is_some() => NexmarkKind::by_word(s),
            Some((v, sp)) => {
                self.bad_prop("kind", "`person`, `auction` or `bid`", v, *sp);
                None
            }
            None => {
                self.err(
                    Diagnostic::error("flow::check::missing-setting", "`kind` is missing", whole)
                        .with_label("needs `kind: person`, `kind: auction` or `kind: bid`"),
                );
                None
            }
        };
        let mut ok = kind.is_some();
        let mut int = |this: &mut Self, key: &str, default: i64, min: i64, takes: &str| -> Option<i64> {
            match props.get(key) {
                None => Some(default),
                Some((Const::Int(n), _)) if *n >= min => Some(*n),
                Some((v, sp)) => {
                    this.bad_prop(key, takes, v, *sp);
                    ok = false;
                    None
                }
            }
        };
        let events = match props.get("events") {
            None | Some((Const::None, _)) => None,
            Some(_) => int(self, "events", 0, 0, "a non-negative integer or `none`"),
        };
        let rate = int(self, "rate", NEXMARK_RATE as i64, 1, "a positive integer: events per second of event time");
        let seed = int(self, "seed", 0, 0, "a non-negative integer");
        let base_time = int(self, "base_time", NEXMARK_BASE_TIME, 0, "epoch milliseconds, a non-negative integer");
        let paced = match props.get("paced") {
            None => false,
            Some((Const::Bool(b), _)) => *b,
            Some((v, sp)) => {
                self.bad_prop("paced", "`true` or `false`", v, *sp);
                ok = false;
                false
            }
        };
        let schema = kind.map(NexmarkKind::schema);
        let spec = match (kind, rate, seed, base_time) {
            (Some(kind), Some(rate), Some(seed), Some(base_time)) if ok => Some(NexmarkSource {
                kind,
                events: events.map(|n| n as u64),
                rate: rate as u64,
                seed: seed as u64,
                base_time,
                paced,
            }),
            _ => None,
        };
        (spec.map(OperatorKind::NexmarkSource), schema)
    }

    /// `sequence(start, step)`, `cycle(v, …)`, `ticks(start, step, per_tick)`,
    /// `random(min, max)` or a constant.
    pub(super) fn generator(&mut self, e: &ast::Expr, ty: DataType) -> Option<Generator> {
        let ints = |this: &mut Self, args: &[ast::Expr]| -> Option<Vec<i64>> {
            let mut out = Vec::new();
            for a in args {
                match consts::eval(a, &this.params) {
                    Ok(Const::Int(i)) => out.push(i),
                    Ok(Const::Duration(ms)) => out.push(ms as i64),
                    Ok(v) => {
                        this.err(
                            Diagnostic::error(
                                "flow::check::generator",
                                format!("expected an integer or a duration, not {}", v.kind()),
                                a.span,
                            )
                            .with_label("here"),
                        );
                        return None;
                    }
                    Err(d) => {
                        this.err(d);
                        return None;
                    }
                }
            }
            Some(out)
        };
        let value_of = |this: &mut Self, a: &ast::Expr| -> Option<Value> {
            let v = match consts::eval(a, &this.params) {
                Ok(v) => v,
                Err(d) => {
                    this.err(d);
                    return None;
                }
            };
            let value = match (ty, v) {
                (DataType::Array(e), Const::List(items)) => {
                    let n = items.len();
                    let values: Vec<Value> = items.into_iter().filter_map(|c| scalar_const(e.ty(), c)).collect();
                    if values.len() != n {
                        this.err(
                            Diagnostic::error(
                                "flow::check::generator",
                                format!("a {ty} field takes a list of {} values", e.ty()),
                                a.span,
                            )
                            .with_label("an element of another type"),
                        );
                        return None;
                    }
                    Value::Array(values)
                }
                (ty, v) if scalar_const(ty, v.clone()).is_some() => scalar_const(ty, v)?,
                (_, v) => {
                    this.err(
                        Diagnostic::error(
                            "flow::check::generator",
                            format!("a {ty} field cannot take {}", v.kind()),
                            a.span,
                        )
                        .with_label("wrong type"),
                    );
                    return None;
                }
            };
            Some(value)
        };
        match &e.kind {
            ast::ExprKind::Call(f, args) => match (f.text.as_str(), args.len()) {
                ("sequence", 2) if ty.is_integral() || ty == DataType::Timestamp => {
                    let v = ints(self, args)?;
                    Some(Generator::Sequence { start: v[0], step: v[1] })
                }
                ("ticks", 3) if ty == DataType::Timestamp || ty.is_integral() => {
                    let v = ints(self, args)?;
                    if v[2] <= 0 {
                        self.err(
                            Diagnostic::error("flow::check::generator", "`per_tick` must be positive", args[2].span)
                                .with_label("here"),
                        );
                        return None;
                    }
                    Some(Generator::Ticks { start: v[0], step: v[1], per_tick: v[2] })
                }
                ("random", 2) if ty.is_numeric() => {
                    let v = ints(self, args)?;
                    if v[0] > v[1] {
                        self.err(
                            Diagnostic::error("flow::check::generator", "`random(min, max)` needs min ≤ max", e.span)
                                .with_label("here"),
                        );
                        return None;
                    }
                    Some(Generator::Random { min: v[0], max: v[1] })
                }
                ("cycle", n) if n > 0 => {
                    let mut vals = Vec::new();
                    for a in args {
                        vals.push(value_of(self, a)?);
                    }
                    Some(Generator::Cycle(vals))
                }
                (name, n) => {
                    self.err(
                        Diagnostic::error("flow::check::generator", format!("`{name}` with {n} arguments is not a generator for a {ty} field"), e.span)
                            .with_label("not a generator")
                            .with_help("generators: `sequence(start, step)`, `ticks(start, step, per_tick)`, `random(min, max)`, `cycle(v, …)`, or a constant"),
                    );
                    None
                }
            },
            _ => Some(Generator::Constant(value_of(self, e)?)),
        }
    }

    /// A pipeline's sink; its settings are checked whatever came before.
    pub(super) fn sink(&mut self, c: &Connector, input: &StreamEnd, settings: &JobSettings) {
        let whole = c.props.as_ref().map_or(c.span, |p| p.span);
        // A raw format needs to know the records; after an error upstream they may be unknown.
        let known = matches!(input.unknown, super::stream::Unknown::None).then_some(&input.schema);
        let (kind, name) = match c.kind.text.as_str() {
            "kafka" => {
                let props = self.props(c.props.as_ref(), &catalog::keys(Role::Sink, "kafka"), "a kafka sink");
                let servers = self.string_prop(&props, "servers", None, whole);
                let topic = self.string_prop(&props, "topic", None, whole);
                let values = |key| catalog::values(Role::Sink, "kafka", key);
                let format = self.format_prop(&props, values("format"), known, false);
                let delivery = self.symbol_prop(&props, "delivery", values("delivery"), "at_least_once");
                let delivery = delivery.map(|d| match d.as_str() {
                    "exactly_once" => Delivery::ExactlyOnce,
                    _ => Delivery::AtLeastOnce,
                });
                if delivery == Some(Delivery::ExactlyOnce) && settings.checkpoint_interval_ms.is_none() {
                    self.err(
                        Diagnostic::warning(
                            "flow::check::exactly-once-without-checkpoints",
                            "exactly-once delivery commits on checkpoints, and checkpointing is off",
                            c.span,
                        )
                        .with_label("records are committed only when the job ends")
                        .with_help("set `execution.checkpointing.interval`"),
                    );
                }
                let key = self.sink_key(&props, input);
                let timestamp = self.sink_timestamp(&props, input);
                let (headers, header_names) = self.sink_headers(&props, input).unzip();
                let on_error = self.sink_error_policy(&props, servers.as_deref(), topic.as_deref(), whole);
                let shown = topic.clone().unwrap_or_default();
                let prefix =
                    self.string_prop(&props, "transactional_id_prefix", Some(&format!("flowc-{shown}")), whole);
                let spec = || -> Option<KafkaSink> {
                    Some(KafkaSink {
                        format: format?,
                        servers: servers?,
                        topic: topic?,
                        delivery: delivery?,
                        transactional_id_prefix: prefix?,
                        key: key?,
                        timestamp: timestamp?,
                        headers: headers?,
                        on_error: on_error?,
                        header_names: header_names?,
                    })
                };
                (spec().map(OperatorKind::KafkaSink), format!("Sink: Kafka({shown})"))
            }
            "print" => {
                let props = self.sink_without_policy(c, "print");
                self.props(props.as_ref(), &catalog::keys(Role::Sink, "print"), "a print sink");
                (Some(OperatorKind::PrintSink), "Sink: Print".to_string())
            }
            "discard" => {
                let props = self.sink_without_policy(c, "discard");
                self.props(props.as_ref(), &catalog::keys(Role::Sink, "discard"), "a discard sink");
                (Some(OperatorKind::DiscardSink), "Sink: Discard".to_string())
            }
            "file" => {
                let props = self.sink_without_policy(c, "file");
                let props = self.props(props.as_ref(), &catalog::keys(Role::Sink, "file"), "a file sink");
                let path = self.string_prop(&props, "path", None, whole);
                let values = catalog::values(Role::Sink, "file", "format");
                let format = self.format_prop(&props, values, known, true);
                let spec = || Some(OperatorKind::FileSink(FileSink { path: path?, format: format? }));
                (spec(), "Sink: File".to_string())
            }
            other => {
                let mut d = Diagnostic::error("flow::check::sink-kind", format!("unknown sink `{other}`"), c.kind.span)
                    .with_label("not a sink");
                d = match suggest(other, catalog::kinds(Role::Sink).map(|k| k.name)) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help("sinks are `kafka { … }`, `print`, `file { path: … }` and `discard`"),
                };
                self.err(d);
                (None, String::new())
            }
        };
        let schema = input.schema.clone();
        let kind = self.upsert_sink(kind, input, c.span);
        let partitioning = self.forward_from(input);
        self.add_op(kind, name, &c.attrs, Some(input), partitioning, schema, c.span, settings);
    }
}

/// A constant as a value of scalar type `ty`, if it is one.
fn scalar_const(ty: DataType, c: Const) -> Option<Value> {
    Some(match (ty, c) {
        (DataType::String, Const::Str(s)) => Value::Str(s),
        (DataType::Int | DataType::Long, Const::Int(i)) => Value::Int(i),
        (DataType::Double, Const::Float(x)) => Value::Double(x),
        (DataType::Double, Const::Int(i)) => Value::Double(i as f64),
        (DataType::Bool, Const::Bool(b)) => Value::Bool(b),
        (DataType::Timestamp, Const::Int(i)) => Value::Timestamp(i),
        _ => return None,
    })
}
