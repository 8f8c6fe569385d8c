//! Program arguments (`--bootstrap.servers localhost:9092 --checkpointing`)
//! bound to the parameters a job declares.
//!
//! The syntax is that of Flink's `ParameterTool`: `--name value`,
//! `--name=value`, and `--name` alone for a flag. Values are checked against
//! the declared types by the checker; here they are only split up.

use std::collections::BTreeMap;

/// Program arguments as given, name to value (`None` for a bare `--name`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProgramArgs {
    pub values: BTreeMap<String, Option<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    #[error("program argument `{0}` does not start with `--`: job parameters are given as `--name value`")]
    NotAnOption(String),
    #[error("program argument `--{0}` is given twice")]
    Repeated(String),
    #[error("`--` must be followed by a parameter name")]
    EmptyName,
    #[error("program argument `{0}` has an unterminated quote: close it with `\"`")]
    UnterminatedQuote(String),
}

impl ProgramArgs {
    /// Splits `--name value` pairs. A value may not itself start with `--`;
    /// a negative number (`--offset -5`) is a value.
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<ProgramArgs, ArgsError> {
        let mut values = BTreeMap::new();
        let mut i = 0;
        while i < args.len() {
            let arg = args[i].as_ref();
            let Some(body) = arg.strip_prefix("--") else {
                return Err(ArgsError::NotAnOption(arg.to_string()));
            };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => match args.get(i + 1).map(|a| a.as_ref()) {
                    Some(next) if !next.starts_with("--") => {
                        i += 1;
                        (body.to_string(), Some(next.to_string()))
                    }
                    _ => (body.to_string(), None),
                },
            };
            if name.is_empty() {
                return Err(ArgsError::EmptyName);
            }
            if values.insert(name.clone(), value).is_some() {
                return Err(ArgsError::Repeated(name));
            }
            i += 1;
        }
        Ok(ProgramArgs { values })
    }

    /// Splits a single string the way a shell would on spaces, as Flink's
    /// REST `programArgs` field is given. Double quotes group words; a quote
    /// left open is refused, naming the argument it began in.
    pub fn parse_line(line: &str) -> Result<ProgramArgs, ArgsError> {
        let mut words = Vec::new();
        let mut cur = String::new();
        let mut quoted = false;
        let mut any = false;
        // Where the current word began in `line`, for the error.
        let mut word_start = 0;
        for (i, c) in line.char_indices() {
            if !any && (quoted || !c.is_whitespace()) {
                word_start = i;
            }
            match c {
                '"' => {
                    quoted = !quoted;
                    any = true;
                }
                c if c.is_whitespace() && !quoted => {
                    if any {
                        words.push(std::mem::take(&mut cur));
                        any = false;
                    }
                }
                c => {
                    cur.push(c);
                    any = true;
                }
            }
        }
        if quoted {
            return Err(ArgsError::UnterminatedQuote(line[word_start..].trim_end().to_string()));
        }
        if any {
            words.push(cur);
        }
        ProgramArgs::parse(&words)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flink_style_arguments() {
        let a = ProgramArgs::parse(&["--bootstrap.servers", "kafka:9092", "--checkpointing", "--event-time", "--n=-3"])
            .expect("valid");
        assert_eq!(a.values["bootstrap.servers"].as_deref(), Some("kafka:9092"));
        assert_eq!(a.values["checkpointing"], None);
        assert_eq!(a.values["event-time"], None);
        assert_eq!(a.values["n"].as_deref(), Some("-3"));
        assert_eq!(ProgramArgs::parse(&["x"]), Err(ArgsError::NotAnOption("x".into())));
        assert_eq!(ProgramArgs::parse(&["--a", "--a"]), Err(ArgsError::Repeated("a".into())));
        let l = ProgramArgs::parse_line("--bootstrap.servers kafka:9092 --checkpointing  --event-time").expect("valid");
        assert_eq!(l.values.len(), 3);
        let q = ProgramArgs::parse_line(r#"--name "two words" --n 1"#).expect("valid");
        assert_eq!(q.values["name"].as_deref(), Some("two words"));
    }

    #[test]
    fn an_unterminated_quote_is_refused_naming_the_argument() {
        assert_eq!(
            ProgramArgs::parse_line(r#"--bootstrap.servers "kafka:9092 --checkpointing"#),
            Err(ArgsError::UnterminatedQuote(r#""kafka:9092 --checkpointing"#.into()))
        );
        assert_eq!(
            ProgramArgs::parse_line(r#"--checkpointing --name=a"b "#),
            Err(ArgsError::UnterminatedQuote(r#"--name=a"b"#.into()))
        );
        let e = ProgramArgs::parse_line(r#"--x ""#).expect_err("open quote");
        assert!(e.to_string().contains("unterminated quote"), "{e}");
    }
}
