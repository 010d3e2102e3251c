//! Editing many images in one run: reading a selection or a JSON Lines file
//! of edits, the undo journal and the per-image results (pure), the runner
//! that edits many images with one client (`run`), and the commands that
//! feed it (`command`). Retries: the policy is a setting
//! (`settings::retry`), applied by the client (`client::retry`).

pub mod apply;
pub mod command;
pub mod lines;
pub mod report;
pub mod run;
pub mod select;
pub mod undo;
