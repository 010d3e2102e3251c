//! `--images-from FILE|-`: the images to edit, read as a stream, one image
//! ID or exact name a line; blank lines and `#` comments are skipped and a
//! repeated image is yielded once.

use std::collections::hash_map::{Entry, HashMap};
use std::io::BufRead;

use super::lines::{BoundedLines, LineError};
use crate::commands::is_image_id;

/// The longest line accepted: a name is at most 255 characters (765 bytes
/// of UTF-8), an ID 36; anything much longer is not an image.
pub const MAX_LINE_BYTES: usize = 4096;

/// One image to edit, with the line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    pub line: usize,
    /// An image ID or an exact name, as written (trimmed).
    pub image: String,
}

/// The images of an `--images-from` input, in input order. Only what is
/// needed to drop repeats is kept (see [`SeenImages`]: about 4 MB for
/// 100,000 IDs with the map's overhead).
pub struct ImageList<R> {
    lines: BoundedLines<R>,
    seen: SeenImages,
    repeats: usize,
}

/// The images met so far and the line each was first on: about 20 bytes
/// per distinct ID, each distinct name. IDs are compared without regard to
/// case (a UUID's hex digits), names exactly.
#[derive(Debug, Default)]
pub struct SeenImages {
    ids: HashMap<u128, usize>,
    names: HashMap<String, usize>,
}

impl SeenImages {
    /// Remembers `image` as met on `line`; if it was met before, the line
    /// it was first met on.
    pub fn first_time(&mut self, image: &str, line: usize) -> Result<(), usize> {
        if is_image_id(image) {
            let hex: String = image.chars().filter(|c| *c != '-').collect();
            let n = u128::from_str_radix(&hex, 16).expect("is_image_id checked the digits");
            match self.ids.entry(n) {
                Entry::Occupied(first) => Err(*first.get()),
                Entry::Vacant(v) => {
                    v.insert(line);
                    Ok(())
                }
            }
        } else if let Some(first) = self.names.get(image) {
            Err(*first)
        } else {
            self.names.insert(image.to_string(), line);
            Ok(())
        }
    }
}

impl<R: BufRead> ImageList<R> {
    pub fn new(reader: R) -> ImageList<R> {
        ImageList {
            lines: BoundedLines::new(reader, MAX_LINE_BYTES),
            seen: SeenImages::default(),
            repeats: 0,
        }
    }

    /// How many lines named an image already yielded (skipped).
    pub fn repeats(&self) -> usize {
        self.repeats
    }
}

impl<R: BufRead> Iterator for ImageList<R> {
    type Item = Result<Selected, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (line, text) = match self.lines.next()? {
                Ok(l) => l,
                Err(e) => {
                    return Some(Err(e.hint(
                        "each line holds one image ID or exact name; '#' starts a comment line",
                    )))
                }
            };
            let image = text.trim();
            if image.is_empty() || image.starts_with('#') {
                continue;
            }
            if self.seen.first_time(image, line).is_ok() {
                return Some(Ok(Selected {
                    line,
                    image: image.to_string(),
                }));
            }
            self.repeats += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "33ad552d-1149-471c-8190-ff6776174a00";
    const B: &str = "56be34f4-4746-4304-8355-a15962e429ef";

    fn select(input: &str) -> (Vec<(usize, String)>, usize) {
        let mut list = ImageList::new(input.as_bytes());
        let got = list
            .by_ref()
            .map(|s| s.map(|s| (s.line, s.image)).unwrap())
            .collect();
        (got, list.repeats())
    }

    #[test]
    fn ids_names_comments_and_repeats() {
        let input = format!(
            "# images to fix\n{A}\n\n  {B}  \r\n{A}\n  # indented comment\nubuntu 14.04\n{}\nubuntu 14.04\nUbuntu 14.04\n",
            A.to_uppercase()
        );
        let (got, repeats) = select(&input);
        assert_eq!(
            got,
            vec![
                (2, A.to_string()),
                (4, B.to_string()),
                (7, "ubuntu 14.04".to_string()),
                (10, "Ubuntu 14.04".to_string()),
            ]
        );
        assert_eq!(repeats, 3);
        assert_eq!(select("").0, vec![]);
        assert_eq!(select("\n# only\n   \n").0, vec![]);
    }

    #[test]
    fn bad_lines_are_reported_with_their_number_and_reading_goes_on() {
        let mut input = format!("{A}\n").into_bytes();
        input.extend_from_slice(b"bad \xff name\n");
        input.extend_from_slice(&vec![b'n'; MAX_LINE_BYTES + 1]);
        input.extend_from_slice(format!("\n{B}").as_bytes());
        let got: Vec<_> = ImageList::new(&input[..]).collect();
        assert_eq!(got.len(), 4);
        assert_eq!(got[0].as_ref().unwrap().image, A);
        let e = got[1].as_ref().unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("UTF-8"), "{e}");
        assert!(!e.hints.is_empty());
        assert_eq!(got[2].as_ref().unwrap_err().line, 3);
        assert_eq!(got[3].as_ref().unwrap().line, 4);
    }

    #[test]
    fn a_hundred_thousand_ids_stream_through() {
        struct Ids(u128, u128);
        impl std::io::Read for Ids {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0 == self.1 || buf.len() < 37 {
                    return Ok(0);
                }
                let id = format!("{:032x}", self.0);
                let line = format!(
                    "{}-{}-{}-{}-{}\n",
                    &id[..8],
                    &id[8..12],
                    &id[12..16],
                    &id[16..20],
                    &id[20..]
                );
                buf[..37].copy_from_slice(line.as_bytes());
                self.0 += 1;
                Ok(37)
            }
        }
        let mut list = ImageList::new(std::io::BufReader::new(Ids(0, 100_000)));
        assert_eq!(list.by_ref().filter(|s| s.is_ok()).count(), 100_000);
        assert_eq!(list.repeats(), 0);
        assert!(list.seen.names.is_empty());
        let again = ImageList::new(std::io::BufReader::new(std::io::Read::chain(
            Ids(0, 10),
            Ids(5, 15),
        )));
        assert_eq!(again.count(), 15);
    }
}
