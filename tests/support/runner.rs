//! `rekey rotate` as one caller runs it: a scratch home whose default
//! credentials are the caller's, and a journal in a directory of its own,
//! so that a scan of that directory (for a leaked secret) sees the
//! journal's files and nothing else.

use std::path::PathBuf;
use std::process::{Command, Output};

use super::{Creds, Home, ROLE};

/// What a test waits for IAM to accept a new key, unless it says.
const PROPAGATION_TIMEOUT: &str = "20s";

pub struct Runner {
    pub home: Home,
    pub state: tempfile::TempDir,
}

impl Runner {
    /// Runs with `base` as the default credentials.
    pub fn new(base: &Creds) -> Runner {
        Runner {
            home: Home::new().with_base(base),
            state: tempfile::tempdir().unwrap(),
        }
    }

    pub fn journal(&self) -> PathBuf {
        self.state.path().join("journal.sqlite3")
    }

    /// `rotate --journal J ARGS`, waiting [`PROPAGATION_TIMEOUT`] for a
    /// new key unless `args` says how long.
    fn args<'a>(journal: &'a str, args: &[&'a str]) -> Vec<&'a str> {
        let mut full = vec!["rotate", "--journal", journal];
        if !args.contains(&"--propagation-timeout") {
            full.extend_from_slice(&["--propagation-timeout", PROPAGATION_TIMEOUT]);
        }
        full.extend_from_slice(args);
        full
    }

    /// `rekey rotate ARGS` with this journal.
    pub fn rotate(&self, args: &[&str]) -> Output {
        self.rotate_with(&[], args)
    }

    /// [`Runner::rotate`] with extra environment (fault injection).
    pub fn rotate_with(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        let journal = self.journal();
        let journal = journal.to_str().unwrap();
        self.home.rekey_with(env, &Runner::args(journal, args))
    }

    /// The command [`Runner::rotate`] runs, for a test that starts it in
    /// the background.
    pub fn rotate_command(&self, args: &[&str]) -> Command {
        let journal = self.journal();
        let journal = journal.to_str().unwrap();
        self.home.rekey_command(&[], &Runner::args(journal, args))
    }

    /// `rekey history --journal J --output json`: every rotation the
    /// journal holds.
    pub fn history(&self) -> Output {
        let journal = self.journal();
        self.home.rekey(&[
            "history",
            "--journal",
            journal.to_str().unwrap(),
            "--output",
            "json",
        ])
    }

    /// `rekey COMMAND --org --exclude-account MANAGEMENT --config CONFIG
    /// --journal J --as-of AS_OF ARGS` with `env`: an organization's
    /// members, as the lifecycle and notification tests run them.
    pub fn org_run(
        &self,
        (management, config, as_of): (&str, &std::path::Path, &str),
        command: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Output {
        let journal = self.journal();
        let mut full = vec![
            command,
            "--org",
            "--exclude-account",
            management,
            "--config",
            config.to_str().unwrap(),
            "--journal",
            journal.to_str().unwrap(),
            "--as-of",
            as_of,
        ];
        full.extend_from_slice(args);
        self.home.rekey_with(env, &full)
    }

    /// A file in the home (a rekey.toml, an accounts list).
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.home.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// `--account ACCOUNT --user svc --role ROLE ARGS`: the service user `svc`
/// of a member account, reached through the role every member has.
pub fn svc_in<'a>(account_id: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut full = vec!["--account", account_id, "--user", "svc", "--role", ROLE];
    full.extend_from_slice(args);
    full
}
