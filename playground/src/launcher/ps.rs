//! The `ps` table, laid out like `docker-compose ps`:
//!
//! ```text
//! Name         Command                            State    Ports
//! ---------------------------------------------------------------------------------------
//! client       flowc run -d -p 2 -m 127.0.0 ...   Exit 0
//! jobmanager   flowc jobmanager                   Up       127.0.0.1:6123, 127.0.0.1:8081
//! ```

use std::fmt;

/// How an instance is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Up,
    /// Ended with this code; `None` if it was not recorded.
    Exit(Option<i32>),
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            State::Up => f.write_str("Up"),
            State::Exit(Some(c)) => write!(f, "Exit {c}"),
            State::Exit(None) => f.write_str("Exit ?"),
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub name: String,
    pub command: String,
    pub state: State,
    pub ports: Vec<String>,
}

/// Widest command shown before it is cut with ` ...`, as docker-compose
/// does.
const COMMAND_WIDTH: usize = 28;

fn short_command(c: &str) -> String {
    if c.chars().count() <= COMMAND_WIDTH + 4 {
        c.to_owned()
    } else {
        let cut: String = c.chars().take(COMMAND_WIDTH).collect();
        format!("{cut} ...")
    }
}

/// Renders the table.
pub fn render(rows: &[Row]) -> String {
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                short_command(&r.command),
                r.state.to_string(),
                if r.state == State::Up { r.ports.join(", ") } else { String::new() },
            ]
        })
        .collect();
    let header = ["Name", "Command", "State", "Ports"].map(str::to_owned);
    let mut widths = header.clone().map(|h| h.len());
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String; 4]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i == 3 {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}   "));
            }
        }
        s.trim_end().to_owned()
    };
    let mut out = line(&header);
    out.push('\n');
    out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 9));
    out.push('\n');
    for row in &cells {
        out.push_str(&line(row));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_docker_compose() {
        let rows = [
            Row {
                name: "client".into(),
                command: "flowc run -d -p 2 -m 127.0.0.1:8081 jobs/click_count.flow".into(),
                state: State::Exit(Some(0)),
                ports: vec![],
            },
            Row {
                name: "jobmanager".into(),
                command: "flowc jobmanager".into(),
                state: State::Up,
                ports: vec!["127.0.0.1:6123".into(), "127.0.0.1:8081".into()],
            },
            Row {
                name: "kafka".into(),
                command: "kafka.sh start".into(),
                state: State::Exit(None),
                ports: vec!["127.0.0.1:9092".into()],
            },
        ];
        let expect = "\
Name         Command                            State    Ports
---------------------------------------------------------------------------------------
client       flowc run -d -p 2 -m 127.0.0 ...   Exit 0
jobmanager   flowc jobmanager                   Up       127.0.0.1:6123, 127.0.0.1:8081
kafka        kafka.sh start                     Exit ?
";
        assert_eq!(render(&rows), expect);
    }
}
