//! Per-image results of a batch: the JSON record printed as each image
//! finishes, the one-line summary, and the exit status of the whole run.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

/// The exit status of a run stopped by Ctrl-C.
pub const EXIT_INTERRUPTED: i32 = 130;

/// What happened to one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The PATCH was sent and the image changed.
    Changed,
    /// The image already had the values; nothing changed.
    Unchanged,
    /// Nothing was sent for this image (e.g. every remove was of an
    /// attribute not set, with `--ignore-missing`; or `--dry-run`).
    Skipped,
    Failed,
    /// The run stopped (Ctrl-C, `--fail-fast`) before this image.
    NotStarted,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::Changed,
        Outcome::Unchanged,
        Outcome::Skipped,
        Outcome::Failed,
        Outcome::NotStarted,
    ];

    /// The word used in the JSON record and the table.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Changed => "changed",
            Outcome::Unchanged => "unchanged",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "failed",
            Outcome::NotStarted => "not_started",
        }
    }

    fn summary_word(self) -> &'static str {
        match self {
            Outcome::NotStarted => "not started",
            other => other.as_str(),
        }
    }
}

/// One image's result, printed with `-o json` as one line as soon as the
/// image is done. Every member is always present (`null` when it does not
/// apply), so a script can rely on the shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageResult {
    /// The image ID, or the ID or name as given when it was never resolved.
    pub image: String,
    pub name: Option<String>,
    pub result: Outcome,
    /// The status of the last response, if one came.
    pub http_status: Option<u16>,
    /// Requests sent for the edit, retries included (0 when none was sent).
    pub attempts: u32,
    /// The final error with its notes (e.g. "gave up after 4 attempts").
    pub error: Option<String>,
    /// The exit code this image alone would give: 0 when it succeeded, the
    /// documented code of its error when it failed, null when not started.
    pub exit_code: Option<i32>,
}

impl ImageResult {
    /// The record as one JSON line (without the newline).
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("a result always serializes")
    }

    /// The cells of its table row, in [`ImageResult::COLUMNS`] order.
    pub fn cells(&self) -> [String; 6] {
        let opt = |v: Option<String>| v.unwrap_or_default();
        [
            self.image.clone(),
            opt(self.name.clone()),
            self.result.as_str().to_string(),
            opt(self.http_status.map(|s| s.to_string())),
            self.attempts.to_string(),
            opt(self.error.clone()),
        ]
    }

    pub const COLUMNS: [&'static str; 6] = ["IMAGE", "NAME", "RESULT", "HTTP", "ATTEMPTS", "ERROR"];
}

/// The counts of a run and the exit codes of its failures, added to as
/// results come in; small whatever the number of images.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    counts: [usize; 5],
    failure_codes: BTreeSet<i32>,
}

impl Tally {
    pub fn add(&mut self, result: &ImageResult) {
        self.add_outcome(result.result, result.exit_code);
    }

    pub fn add_outcome(&mut self, outcome: Outcome, exit_code: Option<i32>) {
        let i = Outcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .expect("listed");
        self.counts[i] += 1;
        if outcome == Outcome::Failed {
            // A failure always has a code; 1 (runtime) if none was given.
            self.failure_codes
                .insert(exit_code.filter(|c| *c != 0).unwrap_or(1));
        }
    }

    pub fn count(&self, outcome: Outcome) -> usize {
        self.counts[Outcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .expect("listed")]
    }

    pub fn total(&self) -> usize {
        self.counts.iter().sum()
    }

    /// The exit status of the run: 130 when interrupted; 0 when every image
    /// succeeded; the failures' exit code when they all share one, else 1.
    /// Images not started without an interruption (a `--fail-fast` stop)
    /// come with a failure, whose code decides.
    pub fn exit_status(&self, interrupted: bool) -> i32 {
        if interrupted {
            return EXIT_INTERRUPTED;
        }
        let mut codes = self.failure_codes.iter();
        match (codes.next(), codes.next()) {
            (None, _) if self.count(Outcome::NotStarted) == 0 => 0,
            (None, _) => 1,
            (Some(code), None) => *code,
            (Some(_), Some(_)) => 1,
        }
    }
}

/// The one-line summary: `118 changed, 2 unchanged, 3 failed`.
impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = Outcome::ALL
            .iter()
            .zip(self.counts)
            .filter(|(_, n)| *n > 0)
            .map(|(o, n)| format!("{n} {}", o.summary_word()))
            .collect();
        if parts.is_empty() {
            f.write_str("no images")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn result(outcome: Outcome, code: Option<i32>) -> ImageResult {
        ImageResult {
            image: "33ad552d-1149-471c-8190-ff6776174a00".into(),
            name: Some("ubuntu".into()),
            result: outcome,
            http_status: Some(503),
            attempts: 4,
            error: Some("the server answered 503; gave up after 4 attempts".into()),
            exit_code: code,
        }
    }

    #[test]
    fn json_record_has_every_member_in_order() {
        let line = result(Outcome::Failed, Some(8)).to_json_line();
        assert_eq!(
            line,
            r#"{"image":"33ad552d-1149-471c-8190-ff6776174a00","name":"ubuntu","result":"failed","http_status":503,"attempts":4,"error":"the server answered 503; gave up after 4 attempts","exit_code":8}"#
        );
        let not_started = ImageResult {
            image: "web".into(),
            name: None,
            result: Outcome::NotStarted,
            http_status: None,
            attempts: 0,
            error: None,
            exit_code: None,
        };
        assert_eq!(
            not_started.to_json_line(),
            r#"{"image":"web","name":null,"result":"not_started","http_status":null,"attempts":0,"error":null,"exit_code":null}"#
        );
        assert_eq!(not_started.cells()[2], "not_started");
        for o in Outcome::ALL {
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
    }

    fn tally(outcomes: &[(Outcome, Option<i32>)]) -> Tally {
        let mut t = Tally::default();
        for (o, c) in outcomes {
            t.add(&result(*o, *c));
        }
        t
    }

    #[test]
    fn summary_line() {
        let mut outcomes = vec![(Outcome::Changed, Some(0)); 118];
        outcomes.extend([(Outcome::Unchanged, Some(0)); 2]);
        outcomes.extend([(Outcome::Failed, Some(8)); 3]);
        let t = tally(&outcomes);
        assert_eq!(t.to_string(), "118 changed, 2 unchanged, 3 failed");
        assert_eq!(t.total(), 123);
        assert_eq!(
            tally(&[(Outcome::NotStarted, None), (Outcome::Skipped, Some(0))]).to_string(),
            "1 skipped, 1 not started"
        );
        assert_eq!(Tally::default().to_string(), "no images");
    }

    #[test]
    fn exit_status_rule() {
        let ok = (Outcome::Changed, Some(0));
        assert_eq!(
            tally(&[ok, (Outcome::Unchanged, Some(0))]).exit_status(false),
            0
        );
        assert_eq!(Tally::default().exit_status(false), 0);
        let nf = (Outcome::Failed, Some(5));
        let conflict = (Outcome::Failed, Some(6));
        assert_eq!(tally(&[ok, nf, nf]).exit_status(false), 5);
        assert_eq!(tally(&[ok, nf, conflict]).exit_status(false), 1);
        assert_eq!(
            tally(&[nf, (Outcome::NotStarted, None)]).exit_status(false),
            5
        );
        assert_eq!(tally(&[ok, (Outcome::Failed, None)]).exit_status(false), 1);
        assert_eq!(tally(&[ok]).exit_status(true), 130);
        assert_eq!(tally(&[nf, conflict]).exit_status(true), 130);
        assert_eq!(
            tally(&[ok, (Outcome::NotStarted, None)]).exit_status(false),
            1
        );
    }

    proptest! {
        #[test]
        fn zero_exactly_when_every_image_succeeded(
            outcomes in proptest::collection::vec((0usize..5, 1i32..9), 0..30),
        ) {
            let outcomes: Vec<(Outcome, Option<i32>)> =
                outcomes.iter().map(|(o, c)| (Outcome::ALL[*o], Some(*c))).collect();
            let t = tally(&outcomes);
            let all_ok = outcomes.iter().all(|(o, _)| matches!(o, Outcome::Changed | Outcome::Unchanged | Outcome::Skipped));
            prop_assert_eq!(t.exit_status(false) == 0, all_ok);
            prop_assert_eq!(t.total(), outcomes.len());
            let failed: BTreeSet<i32> = outcomes.iter().filter(|(o, _)| *o == Outcome::Failed).map(|(_, c)| c.unwrap()).collect();
            if failed.len() == 1 {
                prop_assert_eq!(t.exit_status(false), *failed.iter().next().unwrap());
            }
        }
    }
}
