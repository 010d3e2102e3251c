//! Editing many images in one run, the pure parts: reading a selection or a
//! JSON Lines file of edits, the retry policy, the undo journal and the
//! per-image results. The runner that sends the requests builds on these.

pub mod apply;
pub mod lines;
pub mod report;
pub mod retry;
pub mod select;
pub mod undo;
