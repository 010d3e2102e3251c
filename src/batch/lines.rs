//! Reading text input one bounded line at a time, with line numbers: the
//! common ground of `--images-from` and `apply`. A line longer than the bound
//! is skipped without being held in memory, and reported.

use std::fmt;
use std::io::BufRead;

/// A problem with one line of input, located by its line number (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub message: String,
    /// `hint:` lines that say what to do next.
    pub hints: Vec<String>,
}

impl LineError {
    pub fn new(line: usize, message: impl Into<String>) -> LineError {
        LineError {
            line,
            message: message.into(),
            hints: Vec::new(),
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> LineError {
        self.hints.push(hint.into());
        self
    }
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// One line as read: its number and its text without the line ending
/// (`\n` or `\r\n`), or why it could not be read.
pub type Line = Result<(usize, String), LineError>;

/// Reads `reader` line by line, holding at most `max_bytes` of one line.
/// A line that is not UTF-8 or is too long yields an error and reading goes
/// on with the next line; an I/O error yields an error and ends the reading.
/// A UTF-8 byte-order mark at the start is dropped.
pub struct BoundedLines<R> {
    reader: R,
    max_bytes: usize,
    line: usize,
    buf: Vec<u8>,
    done: bool,
}

impl<R: BufRead> BoundedLines<R> {
    pub fn new(reader: R, max_bytes: usize) -> BoundedLines<R> {
        BoundedLines {
            reader,
            max_bytes,
            line: 0,
            buf: Vec::new(),
            done: false,
        }
    }

    /// The number of the last line read.
    pub fn line_number(&self) -> usize {
        self.line
    }

    /// Appends up to `max_bytes + 1` bytes of the next line to `self.buf`.
    /// Returns whether a newline ended it, or `None` at the end of input.
    fn read_capped(&mut self) -> std::io::Result<Option<bool>> {
        self.buf.clear();
        let limit = self.max_bytes as u64 + 1;
        let n = std::io::Read::take(&mut self.reader, limit).read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        let ended = self.buf.last() == Some(&b'\n');
        if ended {
            self.buf.pop();
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
        }
        Ok(Some(ended))
    }

    /// Consumes the rest of an over-long line without keeping it.
    fn skip_rest_of_line(&mut self) -> std::io::Result<()> {
        loop {
            let available = self.reader.fill_buf()?;
            if available.is_empty() {
                return Ok(());
            }
            match available.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    self.reader.consume(i + 1);
                    return Ok(());
                }
                None => {
                    let n = available.len();
                    self.reader.consume(n);
                }
            }
        }
    }
}

impl<R: BufRead> Iterator for BoundedLines<R> {
    type Item = Line;

    fn next(&mut self) -> Option<Line> {
        if self.done {
            return None;
        }
        let io_error = |line: usize, e: std::io::Error| {
            LineError::new(line, format!("cannot read past this point: {e}"))
        };
        let ended = match self.read_capped() {
            Ok(None) => {
                self.done = true;
                return None;
            }
            Ok(Some(ended)) => ended,
            Err(e) => {
                self.done = true;
                return Some(Err(io_error(self.line + 1, e)));
            }
        };
        self.line += 1;
        let line = self.line;
        if !ended && self.buf.len() > self.max_bytes {
            if let Err(e) = self.skip_rest_of_line() {
                self.done = true;
                return Some(Err(io_error(line, e)));
            }
            return Some(Err(LineError::new(
                line,
                format!("the line is longer than {} bytes", self.max_bytes),
            )));
        }
        let mut bytes = std::mem::take(&mut self.buf);
        if line == 1 && bytes.starts_with(b"\xEF\xBB\xBF") {
            bytes.drain(..3);
        }
        match String::from_utf8(bytes) {
            Ok(text) => Some(Ok((line, text))),
            Err(e) => Some(Err(LineError::new(
                line,
                format!(
                    "the line is not valid UTF-8 (byte {} is wrong)",
                    e.utf8_error().valid_up_to() + 1
                ),
            )
            .hint("save the file as UTF-8"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &[u8], max: usize) -> Vec<Result<(usize, String), String>> {
        BoundedLines::new(input, max)
            .map(|l| l.map_err(|e| e.to_string()))
            .collect()
    }

    #[test]
    fn numbers_lines_and_strips_endings() {
        assert_eq!(
            read(b"\xEF\xBB\xBFa\r\nb\n\nc", 10),
            vec![
                Ok((1, "a".into())),
                Ok((2, "b".into())),
                Ok((3, "".into())),
                Ok((4, "c".into())),
            ]
        );
        assert!(read(b"", 10).is_empty());
    }

    #[test]
    fn long_and_non_utf8_lines_fail_alone() {
        let got = read(b"12345\n123456\n1234567890abc\nok\n\xff\xfe\nend", 6);
        assert_eq!(got[0], Ok((1, "12345".into())));
        assert_eq!(got[1], Ok((2, "123456".into())));
        assert_eq!(
            got[2],
            Err("line 3: the line is longer than 6 bytes".into())
        );
        assert_eq!(got[3], Ok((4, "ok".into())));
        assert!(got[4]
            .as_ref()
            .unwrap_err()
            .starts_with("line 5: the line is not valid UTF-8"));
        assert_eq!(got[5], Ok((6, "end".into())));
        assert_eq!(got.len(), 6);
    }

    #[test]
    fn a_long_line_is_not_held() {
        // 10 MB without a newline, read through a small buffer: the reader
        // keeps only the bound, then skips the rest.
        let big = vec![b'x'; 10_000_000];
        let mut input = big.clone();
        input.extend_from_slice(b"\nnext\n");
        let reader = std::io::BufReader::with_capacity(4096, &input[..]);
        let mut lines = BoundedLines::new(reader, 1000);
        assert!(lines.next().unwrap().is_err());
        assert!(lines.buf.capacity() < 10_000);
        assert_eq!(lines.next().unwrap().unwrap(), (2, "next".into()));
        assert!(lines.next().is_none());
    }
}
