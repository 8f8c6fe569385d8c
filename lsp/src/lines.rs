//! Byte offsets and LSP positions (line, UTF-16 code unit), both ways.
//!
//! The checker speaks byte offsets; LSP clients speak UTF-16 columns unless
//! they negotiate otherwise. A position past the end of a line lands at its
//! end, one past the last line at the end of the text: clients send such
//! positions while the user types.

use flowc_dsl::Span;
use lsp_types::{Position, Range};

/// Line starts of one text.
#[derive(Debug, Clone)]
pub struct Lines {
    starts: Vec<usize>,
    len: usize,
}

impl Lines {
    pub fn new(text: &str) -> Lines {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines { starts, len: text.len() }
    }

    /// The position of byte `offset` (clamped to the text, and back to a
    /// character boundary).
    pub fn position(&self, text: &str, offset: usize) -> Position {
        let mut offset = offset.min(self.len);
        while offset > 0 && !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let character = text[self.starts[line]..offset].encode_utf16().count();
        Position { line: line as u32, character: character as u32 }
    }

    /// The byte offset of `pos`.
    pub fn offset(&self, text: &str, pos: Position) -> usize {
        let Some(&start) = self.starts.get(pos.line as usize) else { return self.len };
        let end = self.starts.get(pos.line as usize + 1).map_or(self.len, |&e| e - 1);
        let mut units = 0u32;
        for (i, c) in text[start..end].char_indices() {
            if units >= pos.character {
                return start + i;
            }
            units += c.len_utf16() as u32;
        }
        end
    }

    pub fn range(&self, text: &str, span: Span) -> Range {
        Range { start: self.position(text, span.start), end: self.position(text, span.end) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_positions_round_trip() {
        let text = "ab\nc\u{e9}\u{1F600}d\n";
        let lines = Lines::new(text);
        let pos = |l, c| Position { line: l, character: c };
        assert_eq!(lines.position(text, 4), pos(1, 1));
        // é is 2 bytes and 1 unit; the emoji 4 bytes and 2 units.
        assert_eq!(lines.position(text, 10), pos(1, 4));
        assert_eq!(lines.offset(text, pos(1, 4)), 10);
        assert_eq!(lines.offset(text, pos(1, 99)), 11);
        assert_eq!(lines.offset(text, pos(9, 0)), text.len());
        assert_eq!(lines.position(text, 999), pos(2, 0));
    }
}
