//! Timestamp text formats: Java-style patterns such as
//! `yyyy-MM-dd'T'HH:mm:ss.SSSX`, checked at compile time and compiled into
//! a fast parser and printer used by the runtime's JSON codec.
//!
//! Supported letters: `yyyy` year, `MM` month, `dd` day, `HH` hour (0-23),
//! `hh` hour (1-12, needs `a`), `a` AM/PM, `mm` minute, `ss` second, `SSS`
//! millisecond, `X`/`XX`/`XXX` zone (`Z` or `+01`, `+0100`, `+01:00`), `Z`
//! zone (`+0100`). Text in single quotes and punctuation are literal. A
//! pattern without a zone reads and writes UTC.

/// Why a pattern was refused, for a diagnostic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternProblem {
    pub message: String,
    pub label: String,
    pub help: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Year,
    Month,
    Day,
    Hour24,
    Hour12,
    AmPm,
    Minute,
    Second,
    Millis,
    /// `X` (`Z` or `+hh`), `XX` (`Z` or `+hhmm`), `XXX` (`Z` or `+hh:mm`)
    ZoneX(u8),
    /// `Z`: `+hhmm`
    ZoneRfc,
    Lit(char),
}

/// A compiled timestamp pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeFormat {
    tokens: Vec<Token>,
    /// The pattern's layout when it reads by position (see [`Fixed`]).
    fixed: Option<Fixed>,
}

/// Where each field of a pattern sits when every field and literal before
/// an optional final zone has a fixed width (`yyyy-MM-dd'T'HH:mm:ss.SSSX`,
/// `yyyy-MM-dd HH:mm:ss.SSS`: the patterns sources read millions of times
/// a second): parsed by position, with no walk over the tokens. Parses
/// exactly what the walk does (a property test says so).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fixed {
    /// Literal bytes and their positions.
    lits: Vec<(usize, u8)>,
    /// The positions of year, month, day, hour, minute, second, millisecond.
    at: [Option<usize>; 7],
    /// The length of the part before the zone.
    len: usize,
    /// The final zone token, if any.
    zone: Option<Token>,
}

impl Fixed {
    fn of(tokens: &[Token]) -> Option<Fixed> {
        let (body, zone) = match tokens.split_last() {
            Some((z @ (Token::ZoneX(_) | Token::ZoneRfc), body)) => (body, Some(*z)),
            _ => (tokens, None),
        };
        let mut f = Fixed { lits: Vec::new(), at: [None; 7], len: 0, zone };
        for t in body {
            let (slot, width) = match *t {
                Token::Year => (0, 4),
                Token::Month => (1, 2),
                Token::Day => (2, 2),
                Token::Hour24 => (3, 2),
                Token::Minute => (4, 2),
                Token::Second => (5, 2),
                Token::Millis => (6, 3),
                Token::Lit(c) if c.is_ascii() => {
                    f.lits.push((f.len, c as u8));
                    f.len += 1;
                    continue;
                }
                // A 12-hour clock, a zone before the end, a non-ASCII literal: the walk.
                _ => return None,
            };
            if f.at[slot].replace(f.len).is_some() {
                return None;
            }
            f.len += width;
        }
        Some(f)
    }

    fn parse(&self, b: &[u8]) -> Option<i64> {
        if b.len() < self.len || self.lits.iter().any(|&(i, c)| b[i] != c) {
            return None;
        }
        let digits = |at: Option<usize>, n: usize, default: i64| -> Option<i64> {
            let Some(i) = at else { return Some(default) };
            let mut v = 0i64;
            for &c in &b[i..i + n] {
                let d = c.wrapping_sub(b'0');
                if d > 9 {
                    return None;
                }
                v = v * 10 + i64::from(d);
            }
            Some(v)
        };
        let y = digits(self.at[0], 4, 1970)?;
        let mo = digits(self.at[1], 2, 1)?;
        let d = digits(self.at[2], 2, 1)?;
        let h = digits(self.at[3], 2, 0)?;
        let mi = digits(self.at[4], 2, 0)?;
        let s = digits(self.at[5], 2, 0)?;
        let ms = digits(self.at[6], 3, 0)?;
        let mut p = self.len;
        let offset_min = match self.zone {
            Some(Token::ZoneX(_)) if b.get(p) == Some(&b'Z') => {
                p += 1;
                0
            }
            Some(Token::ZoneX(n)) => zone(b, &mut p, n == 3, n >= 2)?,
            Some(_) => zone(b, &mut p, false, true)?,
            None => 0,
        };
        if p != b.len() {
            return None;
        }
        to_millis(y, mo, d, h, mi, s, ms, offset_min)
    }
}

/// Epoch milliseconds of a checked date and time at a zone offset.
#[allow(clippy::too_many_arguments)]
fn to_millis(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64, ms: i64, offset_min: i64) -> Option<i64> {
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some(((days * 24 + h) * 60 + mi - offset_min) * 60_000 + s * 1000 + ms)
}

fn tokenize(pattern: &str) -> Result<Vec<Token>, PatternProblem> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            i += 1;
            if chars.get(i) == Some(&'\'') {
                out.push(Token::Lit('\''));
                i += 1;
                continue;
            }
            while i < chars.len() && chars[i] != '\'' {
                out.push(Token::Lit(chars[i]));
                i += 1;
            }
            if i == chars.len() {
                return Err(PatternProblem {
                    message: "unterminated quoted text".into(),
                    label: "a `'` is not closed".into(),
                    help: "quote literal text like `'T'`".into(),
                });
            }
            i += 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            out.push(Token::Lit(c));
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&x| x == c).count();
        let tok = match (c, run) {
            ('y', 4) => Token::Year,
            ('M', 2) => Token::Month,
            ('d', 2) => Token::Day,
            ('H', 2) => Token::Hour24,
            ('h', 2) => Token::Hour12,
            ('a', 1) => Token::AmPm,
            ('m', 2) => Token::Minute,
            ('s', 2) => Token::Second,
            ('S', 3) => Token::Millis,
            ('X', n @ 1..=3) => Token::ZoneX(n as u8),
            ('Z', 1) => Token::ZoneRfc,
            _ => {
                let letters: String = std::iter::repeat_n(c, run).collect();
                return Err(PatternProblem {
                    message: format!("`{letters}` is not a supported pattern field"),
                    label: format!("`{letters}` here"),
                    help: "use yyyy, MM, dd, HH (or hh with a), mm, ss, SSS, X/XX/XXX or Z; quote literal text: 'T'"
                        .into(),
                });
            }
        };
        out.push(tok);
        i += run;
    }
    Ok(out)
}

/// Checks a pattern: known fields only, a full date, and no ambiguous clock.
pub fn check_pattern(pattern: &str) -> Result<TimeFormat, PatternProblem> {
    let format = check_output_pattern(pattern)?;
    let has = |t: Token| format.tokens.contains(&t);
    if !(has(Token::Year) && has(Token::Month) && has(Token::Day)) {
        return Err(PatternProblem {
            message: "the pattern does not give a full date".into(),
            label: "needs yyyy, MM and dd".into(),
            help: "for example `yyyy-MM-dd'T'HH:mm:ss.SSSX`".into(),
        });
    }
    Ok(format)
}

/// Checks a pattern that only prints (`date_format`): known fields only and
/// no ambiguous clock, but any part of a date will do (`HH:mm`, `yyyy-MM`),
/// as Flink SQL's `DATE_FORMAT`.
pub fn check_output_pattern(pattern: &str) -> Result<TimeFormat, PatternProblem> {
    let tokens = tokenize(pattern)?;
    let has = |t: Token| tokens.contains(&t);
    if has(Token::Hour12) && !has(Token::AmPm) {
        return Err(PatternProblem {
            message: "`hh` is a 12-hour clock and the pattern has no AM/PM marker `a`".into(),
            label: "01:00 and 13:00 would read the same".into(),
            help: "use `HH` for a 24-hour clock, or add ` a`".into(),
        });
    }
    if has(Token::Hour12) && has(Token::Hour24) {
        return Err(PatternProblem {
            message: "the pattern has both `HH` and `hh`".into(),
            label: "two hour fields".into(),
            help: "keep one".into(),
        });
    }
    let fixed = Fixed::of(&tokens);
    Ok(TimeFormat { tokens, fixed })
}

impl TimeFormat {
    /// Compiles a pattern; see [`check_pattern`].
    pub fn new(pattern: &str) -> Result<TimeFormat, PatternProblem> {
        check_pattern(pattern)
    }

    /// Compiles a pattern that only prints; see [`check_output_pattern`].
    pub fn for_output(pattern: &str) -> Result<TimeFormat, PatternProblem> {
        check_output_pattern(pattern)
    }

    /// Parses text into epoch milliseconds, UTC; `None` if it does not match.
    pub fn parse(&self, text: &str) -> Option<i64> {
        match &self.fixed {
            Some(f) => f.parse(text.as_bytes()),
            None => self.parse_tokens(text),
        }
    }

    /// [`TimeFormat::parse`] by a walk over the pattern's tokens.
    fn parse_tokens(&self, text: &str) -> Option<i64> {
        let b = text.as_bytes();
        let mut p = 0usize;
        let (mut y, mut mo, mut d, mut h, mut mi, mut s, mut ms) = (1970i64, 1i64, 1i64, 0i64, 0i64, 0i64, 0i64);
        let mut pm: Option<bool> = None;
        let mut offset_min = 0i64;
        let num = |p: &mut usize, n: usize| -> Option<i64> {
            let slice = b.get(*p..*p + n)?;
            let mut v = 0i64;
            for &c in slice {
                if !c.is_ascii_digit() {
                    return None;
                }
                v = v * 10 + i64::from(c - b'0');
            }
            *p += n;
            Some(v)
        };
        for t in &self.tokens {
            match *t {
                Token::Year => y = num(&mut p, 4)?,
                Token::Month => mo = num(&mut p, 2)?,
                Token::Day => d = num(&mut p, 2)?,
                Token::Hour24 | Token::Hour12 => h = num(&mut p, 2)?,
                Token::Minute => mi = num(&mut p, 2)?,
                Token::Second => s = num(&mut p, 2)?,
                Token::Millis => ms = num(&mut p, 3)?,
                Token::AmPm => {
                    let w = b.get(p..p + 2)?;
                    pm = Some(match w {
                        b"AM" | b"am" => false,
                        b"PM" | b"pm" => true,
                        _ => return None,
                    });
                    p += 2;
                }
                Token::ZoneX(n) => {
                    if b.get(p) == Some(&b'Z') {
                        p += 1;
                    } else {
                        offset_min = zone(b, &mut p, n == 3, n >= 2)?;
                    }
                }
                Token::ZoneRfc => offset_min = zone(b, &mut p, false, true)?,
                Token::Lit(c) => {
                    let mut buf = [0u8; 4];
                    let lit = c.encode_utf8(&mut buf).as_bytes();
                    if b.get(p..p + lit.len())? != lit {
                        return None;
                    }
                    p += lit.len();
                }
            }
        }
        if p != b.len() {
            return None;
        }
        if let Some(pm) = pm {
            if !(1..=12).contains(&h) {
                return None;
            }
            h = (h % 12) + if pm { 12 } else { 0 };
        }
        to_millis(y, mo, d, h, mi, s, ms, offset_min)
    }

    /// Appends the timestamp `millis` (UTC) in this format.
    pub fn format_into(&self, millis: i64, out: &mut String) {
        let days = millis.div_euclid(86_400_000);
        let rem = millis.rem_euclid(86_400_000);
        let (y, mo, d) = civil_from_days(days);
        let (h, mi, s, ms) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
        let two = |out: &mut String, v: i64| {
            out.push(char::from(b'0' + (v / 10) as u8));
            out.push(char::from(b'0' + (v % 10) as u8));
        };
        for t in &self.tokens {
            match *t {
                Token::Year => {
                    if (0..=9999).contains(&y) {
                        two(out, y / 100);
                        two(out, y % 100);
                    } else {
                        out.push_str(&format!("{y:04}"));
                    }
                }
                Token::Month => two(out, mo),
                Token::Day => two(out, d),
                Token::Hour24 => two(out, h),
                Token::Hour12 => two(out, if h % 12 == 0 { 12 } else { h % 12 }),
                Token::AmPm => out.push_str(if h < 12 { "AM" } else { "PM" }),
                Token::Minute => two(out, mi),
                Token::Second => two(out, s),
                Token::Millis => {
                    out.push(char::from(b'0' + (ms / 100) as u8));
                    two(out, ms % 100);
                }
                Token::ZoneX(_) => out.push('Z'),
                Token::ZoneRfc => out.push_str("+0000"),
                Token::Lit(c) => out.push(c),
            }
        }
    }

    pub fn format(&self, millis: i64) -> String {
        let mut s = String::with_capacity(24);
        self.format_into(millis, &mut s);
        s
    }
}

fn zone(b: &[u8], p: &mut usize, colon: bool, minutes: bool) -> Option<i64> {
    let sign = match b.get(*p)? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    *p += 1;
    let digits = |p: &mut usize| -> Option<i64> {
        let s = b.get(*p..*p + 2)?;
        if !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        *p += 2;
        Some(i64::from(s[0] - b'0') * 10 + i64::from(s[1] - b'0'))
    };
    let h = digits(p)?;
    let mut m = 0;
    if minutes {
        if colon {
            if b.get(*p) != Some(&b':') {
                return None;
            }
            *p += 1;
        }
        m = digits(p)?;
    }
    Some(sign * (h * 60 + m))
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a number of days since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ISO: &str = "yyyy-MM-dd'T'HH:mm:ss.SSSX";

    #[test]
    fn iso_round_trip() {
        let f = TimeFormat::new(ISO).expect("valid");
        assert_eq!(f.parse("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(f.parse("2026-11-24T22:15:00.015Z"), Some(1_795_558_500_015));
        assert_eq!(f.format(1_795_558_500_015), "2026-11-24T22:15:00.015Z");
        assert_eq!(f.parse("2026-11-24T23:15:00.015+01"), Some(1_795_558_500_015));
        assert_eq!(f.parse("2026-02-30T00:00:00.000Z"), None);
        assert_eq!(f.parse("2026-11-24T22:15:00.015"), None);
    }

    #[test]
    fn refuses_the_ambiguous_twelve_hour_clock() {
        let e = check_pattern("dd-MM-yyyy hh:mm:ss:SSS").expect_err("ambiguous");
        assert!(e.message.contains("AM/PM"));
        let f = check_pattern("dd-MM-yyyy hh:mm:ss:SSS a").expect("with a marker");
        assert_eq!(f.parse("01-01-1970 01:00:00:000 PM"), Some(13 * 3_600_000));
        assert_eq!(f.format(13 * 3_600_000), "01-01-1970 01:00:00:000 PM");
    }

    #[test]
    fn printing_takes_part_of_a_date_and_reading_does_not() {
        let e = check_pattern("HH:mm").expect_err("cannot read a time of day into a timestamp");
        assert!(e.message.contains("full date"), "{e:?}");
        let hm = TimeFormat::for_output("HH:mm").expect("prints");
        assert_eq!(hm.format(1_795_558_500_015), "22:15");
        assert_eq!(TimeFormat::for_output("yyyy-MM").expect("prints").format(1_795_558_500_015), "2026-11");
        assert!(check_output_pattern("hh:mm").is_err(), "the 12-hour clock still needs `a`");
    }

    /// Patterns read by position, and texts near theirs.
    const BY_POSITION: &[&str] =
        &[ISO, "yyyy-MM-dd HH:mm:ss.SSS", "yyyy-MM-dd", "dd/MM/yyyy HH:mm XXX", "yyyyMMddHHmmssZ"];

    #[test]
    fn the_patterns_sources_read_go_by_position() {
        for p in BY_POSITION {
            assert!(TimeFormat::new(p).expect("valid").fixed.is_some(), "{p}");
        }
        for p in ["dd-MM-yyyy hh:mm:ss a", "yyyy-MM-dd'Tä'HH", "XXX yyyy-MM-dd"] {
            assert!(TimeFormat::new(p).expect("valid").fixed.is_none(), "{p}");
        }
    }

    proptest! {
        #[test]
        fn by_position_parses_exactly_what_the_walk_parses(
            which in 0..BY_POSITION.len(),
            ms in -62_000_000_000_000i64..253_000_000_000_000i64,
            edits in proptest::collection::vec((0usize..40, prop::sample::select(b"0123456789+-:Z T./9".to_vec())), 0..3),
            cut in 0usize..40,
            zone in prop::sample::select(vec!["", "Z", "+01", "+0130", "-01:30", "+01:3"]),
        ) {
            let f = TimeFormat::new(BY_POSITION[which]).expect("valid");
            let mut text = f.format(ms).into_bytes();
            if !zone.is_empty() && text.last() == Some(&b'Z') {
                text.pop();
                text.extend_from_slice(zone.as_bytes());
            }
            for (i, c) in edits {
                if i < text.len() {
                    text[i] = c;
                }
            }
            if cut < text.len() && cut % 3 == 0 {
                text.truncate(cut);
            }
            let text = String::from_utf8(text).expect("ascii");
            prop_assert_eq!(f.parse(&text), f.parse_tokens(&text), "{:?} {}", BY_POSITION[which], text);
        }

        #[test]
        fn format_then_parse_is_identity(ms in -62_000_000_000_000i64..253_000_000_000_000i64) {
            let f = TimeFormat::new(ISO).expect("valid");
            prop_assert_eq!(f.parse(&f.format(ms)), Some(ms));
        }
    }
}
