//! `rekey enforce` (issue 17): an organization's access-key lifecycle.
//! Built so far: the pure per-key decision ([`lifecycle::due`]); the
//! planner over an audit's keys, the executor's new actions (warn, retire,
//! deactivate, delete, reactivate), `[enforce]` in rekey.toml and the
//! command are still to come.

pub mod exempt;
pub mod lifecycle;
pub mod record;
