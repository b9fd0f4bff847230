//! `rekey rotate`: flags → [`rekey::request::RotateInput`] → the library's
//! request, which `rekey::request::rotate::run` carries out (finishing
//! what earlier runs left, then the jobs); this file asks the person at the
//! keyboard, renders the outcome and picks the exit code.
//!
//! Three ways to say what to rotate: profiles of the shared credentials
//! file (`--profile`, `--all-profiles`), one service user (`--account
//! --user --to`), or every bound service user (`--service`).

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::bail;
use rekey::clock::SystemClock;
use rekey::request::RotateRequest;
use rekey::request::rotate::RotateOutcome;
use rekey::rotation::Mode;
use rekey::rotation::engine::{Prompt, Question};

pub use self::flags::RotateArgs;
use crate::{GlobalArgs, context, env};

mod flags;
mod render;
mod words;

pub async fn run(args: RotateArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let output = args.output;
    let input = args.input(global);
    let request =
        RotateRequest::from_input(&input, &context(&env)).map_err(render::request_error)?;
    if request.interactive && !std::io::stdin().is_terminal() {
        bail!("--interactive needs a terminal to ask on");
    }
    let terminal = Terminal {
        asks: request.interactive,
        shows: std::io::stderr().is_terminal(),
    };
    let outcome = rekey::request::rotate::run(&request, &terminal, Arc::new(SystemClock)).await;
    match outcome {
        Err(e) => Err(render::request_error(e)),
        Ok(RotateOutcome::Abandoned { result: Err(f), .. }) => {
            if output == OutputFormat::Json {
                render::print_json(&[render::failed_row(&f)]);
            }
            bail!(render::with_hint(&f.error))
        }
        Ok(outcome) => {
            render::print(&outcome, output, request.mode == Mode::Plan);
            Ok(ExitCode::from(outcome.exit_code()))
        }
    }
}

use self::flags::OutputFormat;

/// The person at the keyboard: asked on stderr before each step (with
/// -i), answering on stdin; shown what a rotation waits for when stderr is
/// a terminal (a log or a pipe gets none of it); asked for an MFA code
/// when stdin is a terminal.
struct Terminal {
    asks: bool,
    shows: bool,
}

impl Terminal {
    /// One line typed on stdin after `question` on stderr.
    fn ask(question: &str) -> Option<String> {
        eprint!("{question}");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer).ok()?;
        Some(answer.trim().to_string())
    }
}

impl Prompt for Terminal {
    fn confirm(&self, question: &Question) -> bool {
        if !self.asks {
            return true;
        }
        let answer = Terminal::ask(&format!("{} [y/N] ", words::question(question)));
        matches!(answer.as_deref(), Some("y" | "Y" | "yes" | "Yes"))
    }

    fn waiting(&self, line: &str) {
        if self.shows {
            eprintln!("{line}");
        }
    }

    fn mfa_code(&self, serial: &str, label: &str) -> Option<String> {
        if !std::io::stdin().is_terminal() {
            return None;
        }
        Terminal::ask(&format!("MFA code for {serial} ({label}): "))
    }
}
