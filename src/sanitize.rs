//! Keeping server-controlled text off the terminal raw: control characters,
//! escape sequences and invisible formatting characters are turned into
//! visible escapes before a table cell or a message reaches the terminal.
//!
//! Escapes look like JSON string escapes (`\n`, `\r`, `\t`, `\u001b`,
//! `\u202e`), so a value reads the same in a table as in `-o json`. A
//! backslash itself is kept as is: the escaping is for the terminal's
//! safety, not a reversible encoding (`-o json` is the exact form).

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` must not reach a terminal raw:
/// - every control character (Unicode `Cc`): C0 (`U+0000`–`U+001F`, with
///   ESC starting ANSI/OSC sequences and CR rewriting the line), DEL and C1
///   (`U+0080`–`U+009F`, where `U+009B` and `U+009D` are CSI and OSC for
///   terminals that read 8-bit controls). Escaping the introducer leaves
///   the rest of a sequence as harmless visible text;
/// - the bidirectional formatting characters, which reorder what is shown
///   ("Trojan Source", CVE-2021-42574): the embeddings and overrides
///   `U+202A`–`U+202E`, the isolates `U+2066`–`U+2069`, and the marks
///   `U+200E`, `U+200F`, `U+061C`;
/// - `U+2028` and `U+2029` (line and paragraph separator): some terminals
///   and every JavaScript-based viewer break the line there;
/// - invisible characters that hide or fake text without any use in image
///   metadata: `U+200B` (zero width space), `U+2060` (word joiner), `U+FEFF`
///   (byte order mark), and `U+FFF9`–`U+FFFB` (interlinear annotation,
///   which tells a renderer to hide the annotated text).
///
/// The zero width joiner and non-joiner (`U+200D`, `U+200C`) are kept: emoji
/// sequences and Persian or Indic text need them and they reorder nothing.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{2060}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// `text` with every unsafe character (see [`is_unsafe`]) escaped; for a
/// table cell or a one-line message. Borrows when nothing needs escaping.
pub fn escape(text: &str) -> Cow<'_, str> {
    escape_with(text, false)
}

/// Like [`escape`] but keeps `\n` (nothing else): for a multi-line message
/// such as a server's error text, whose lines the caller prints as lines.
pub fn escape_keep_newlines(text: &str) -> Cow<'_, str> {
    escape_with(text, true)
}

fn escape_with(text: &str, keep_newlines: bool) -> Cow<'_, str> {
    let needs = |c: char| is_unsafe(c) && !(keep_newlines && c == '\n');
    let Some(first) = text.find(needs) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 16);
    out.push_str(&text[..first]);
    for c in text[first..].chars() {
        if !needs(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Every unsafe character is in the Basic Multilingual Plane.
            _ => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ansi_osc_cr_and_bidi_become_visible() {
        assert_eq!(
            escape("\u{1b}[2J\u{1b}]0;pwned\u{7}ok"),
            "\\u001b[2J\\u001b]0;pwned\\u0007ok"
        );
        assert_eq!(escape("safe\rEVIL"), "safe\\rEVIL");
        assert_eq!(escape("abc\u{202e}fed"), "abc\\u202efed");
        assert_eq!(escape("\u{2066}x\u{2069}"), "\\u2066x\\u2069");
        assert_eq!(escape("\u{9b}31m"), "\\u009b31m");
        assert_eq!(escape("a\tb\nc\u{7f}"), "a\\tb\\nc\\u007f");
        assert_eq!(escape("\u{0}"), "\\u0000");
    }

    #[test]
    fn newlines_are_kept_only_when_asked() {
        assert_eq!(
            escape_keep_newlines("one\ntwo\r\n\u{1b}"),
            "one\ntwo\\r\n\\u001b"
        );
        assert_eq!(escape("one\ntwo"), "one\\ntwo");
    }

    #[test]
    fn ordinary_text_is_borrowed_unchanged() {
        for text in [
            "ubuntu-22.04 (x86_64) \\ C:\\path",
            "Привет, 世界, مرحبا",
            "👩\u{200d}💻 family",
            "",
        ] {
            assert!(
                matches!(escape(text), Cow::Borrowed(t) if t == text),
                "{text}"
            );
        }
    }

    #[test]
    fn escapes_read_like_json() {
        // The same control character looks the same in a table as in -o json.
        let json = serde_json::to_string("\u{1b}\u{1f}").unwrap();
        assert_eq!(json, format!("\"{}\"", escape("\u{1b}\u{1f}")));
    }

    proptest! {
        #[test]
        fn output_never_holds_an_unsafe_character(text in any::<String>()) {
            prop_assert!(!escape(&text).chars().any(is_unsafe));
            let kept = escape_keep_newlines(&text);
            prop_assert!(!kept.chars().any(|c| is_unsafe(c) && c != '\n'));
            prop_assert_eq!(kept.matches('\n').count(), text.matches('\n').count());
        }

        #[test]
        fn safe_text_is_unchanged(text in any::<String>()) {
            let safe: String = text.chars().filter(|&c| !is_unsafe(c)).collect();
            prop_assert_eq!(escape(&safe), safe.as_str());
        }

        #[test]
        fn unsafe_text_is_never_shortened(text in any::<String>()) {
            // Every unsafe character becomes a visible, non-empty escape.
            let escaped = escape(&text);
            let unsafe_count = text.chars().filter(|&c| is_unsafe(c)).count();
            prop_assert_eq!(escaped.matches('\\').count(), text.matches('\\').count() + unsafe_count);
        }
    }
}
