//! Editing many images in one run, the pure parts: reading a selection or a
//! JSON Lines file of edits, the undo journal and the per-image results
//! (pure), and the runner that edits many images with one client (`run`).
//! The retry policy lives with the client (`client::retry`).

pub mod apply;
pub mod lines;
pub mod report;
pub mod run;
pub mod select;
pub mod undo;
