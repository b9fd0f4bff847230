//! The whole `enforce` command (issue 17): gather every account, plan
//! every key, then — when asked — carry the plan out in waves, each action
//! re-checked and journaled, and say what became of each.
//!
//! Waves: canary accounts first (the rest wait until every canary action
//! succeeded); `max_actions` caps the actions of a run, oldest keys first;
//! `max_failure_rate` stops the run once more than that share of the
//! actions carried out so far failed (after at least 5). Whatever is left
//! is due on the next run.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::{StreamExt, stream};
use serde::Serialize;
use time::OffsetDateTime;

use super::act::{ActError, Acted, Actor};
use super::gather::{self, Context, Gathered, Unreached};
use super::plan::{GatheredAccount, Rules, plan_account};
use crate::aws::{Deps, load_config};
use crate::clock::Clock;
use crate::discovery::discover_with;
use crate::enforce::exempt::Exempt;
use crate::error::error_chain;
use crate::journal::{Holder, Journal, KeyOp, NewKeyEvent, Phase};
use crate::notify::run::{Cx, Directory, Mode, NotifyOutcome};
use crate::notify::settings::NotifyRequest;
use crate::request::enforce::{EnforceError, EnforceMode, EnforceRequest};
use crate::request::journal::{Use, open as open_journal};
use crate::rotation::engine::{Engine, NoPrompt, Status};
use crate::rotation::plan::{Action, Plan, SkipReason, execute};
use crate::rotation::{Job, Mode as RunMode, OldKeyAction, RunOptions};

/// What became of one action of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Result_ {
    Done,
    /// Another run did it since the plan was made.
    AlreadyDone,
    Failed,
    /// Not carried out: its facts changed, or another run held the user.
    Refused,
    /// Left for the next run: a wave limit, a failed canary, the failure
    /// rate.
    NotRun,
}

/// One action's result.
#[derive(Debug, Clone, Serialize)]
pub struct ActionResult {
    pub action: &'static str,
    pub target: String,
    pub account_id: Option<String>,
    pub key_id: Option<String>,
    pub result: Result_,
    /// What failed or why it was refused or not run (no secret).
    pub error: Option<String>,
}

/// Why a run stopped before its plan's end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "stopped", rename_all = "snake_case")]
pub enum Stop {
    /// More than `max_failure_rate` % of the actions carried out failed.
    FailureRate { failed: usize, carried_out: usize },
    /// A canary account's action did not succeed: the rest waited.
    Canary { failed: usize },
    /// The request's deadline (the Lambda's) came: what had not started
    /// was left for the next run.
    Deadline,
}

/// The run: its plan, and (applied) what became of each action.
#[derive(Debug, Clone, Serialize)]
pub struct EnforceOutcome {
    pub plan: Plan,
    pub applied: bool,
    pub results: Vec<ActionResult>,
    pub stopped: Option<Stop>,
    /// What the notifications did after the actions (issue 19).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notifications: Option<NotifyOutcome>,
}

/// What the gathering saw of each account and user, for the
/// notifications: filled by each plan made.
type Seen = std::sync::Mutex<Directory>;

impl EnforceOutcome {
    /// 0: applied, or nothing due; 2: some action failed or was refused
    /// (or a key could not be planned); 3: stopped at the failure rate;
    /// 4: every action went well, but a notification was not delivered
    /// (it is owed to the next run). (1, an error before anything ran, is
    /// the front end's.)
    pub fn exit_code(&self) -> u8 {
        if matches!(self.stopped, Some(Stop::FailureRate { .. })) {
            return 3;
        }
        let bad_result = self.results.iter().any(|r| {
            matches!(r.result, Result_::Failed | Result_::Refused)
                || (r.result == Result_::NotRun && self.stopped.is_some())
        });
        let unplannable = self.plan.actions.iter().any(|a| {
            matches!(
                a,
                Action::Skip {
                    reason: SkipReason::Failed { .. } | SkipReason::Refused { .. },
                    ..
                }
            )
        });
        if bad_result || unplannable {
            2
        } else if self
            .notifications
            .as_ref()
            .is_some_and(|n| n.undelivered() > 0)
        {
            4
        } else {
            0
        }
    }
}

/// Carries `req` out.
pub async fn run(
    req: &EnforceRequest,
    clock: Arc<dyn Clock>,
) -> Result<EnforceOutcome, EnforceError> {
    let aws = &req.audit.options.aws;
    let deps = Deps::new(load_config(None, aws).await, aws.clone(), None);
    run_with(req, &deps, clock).await
}

/// [`run`] with the live things of a caller that keeps them (the Lambda:
/// once per container, its role sessions reused by every invocation).
pub async fn run_with(
    req: &EnforceRequest,
    deps: &Deps,
    clock: Arc<dyn Clock>,
) -> Result<EnforceOutcome, EnforceError> {
    let applying = !matches!(req.mode, EnforceMode::Plan);
    // Planning writes nothing anywhere: an existing journal is read.
    let how = if applying { Use::Write } else { Use::Read };
    let journal = open_journal(&req.journal, how, deps.base(), clock.clone()).await?;
    let journal = journal.as_ref();
    let holder = Holder::current(req.rotate.run_id.clone());
    let seen = Seen::default();
    let plan = match &req.mode {
        EnforceMode::ApplyPlan(plan) => (**plan).clone(),
        EnforceMode::Reactivate(key) => {
            return reactivate(req, key, (journal, deps, &holder), req.audit.options.as_of).await;
        }
        _ => make_plan(req, (journal, deps), clock.as_ref(), &seen).await?,
    };
    if let Some(path) = &req.plan_out {
        let text = serde_json::to_string_pretty(&plan).expect("a plan serializes");
        crate::atomic::write(path, text.as_bytes(), 0o600, None).map_err(|source| {
            EnforceError::WritePlan {
                path: path.clone(),
                source,
            }
        })?;
    }
    if !applying {
        return Ok(EnforceOutcome {
            plan,
            applied: false,
            results: Vec::new(),
            stopped: None,
            notifications: None,
        });
    }
    let ways = (journal, deps, &holder);
    let mut outcome = apply_plan(req, plan, ways, clock.as_ref(), &seen).await?;
    // Enforcement never waits for a notification: they go once every
    // action is done, and a channel that fails only says so.
    if let Some(notify) = &req.notify {
        let dir = seen.into_inner().expect("directory lock");
        outcome.notifications = Some(deliver(req, notify, &dir, (journal, deps), Mode::Send).await);
    }
    Ok(outcome)
}

/// The notifications owed for `dir`'s accounts, delivered or previewed.
async fn deliver(
    req: &EnforceRequest,
    notify: &NotifyRequest,
    dir: &Directory,
    (journal, deps): (&dyn Journal, &Deps),
    mode: Mode,
) -> NotifyOutcome {
    let cx = Cx {
        journal,
        deps,
        lifecycles: &req.lifecycles,
        as_of: req.audit.options.as_of,
        run_id: &req.rotate.run_id,
    };
    crate::notify::run::deliver(notify, dir, &cx, mode).await
}

/// `rekey notify`: what the channels owe for the selected accounts, sent
/// (`preview` false) or rendered with what the plan made now would add.
pub async fn notify(
    req: &EnforceRequest,
    preview: bool,
    clock: Arc<dyn Clock>,
) -> Result<NotifyOutcome, EnforceError> {
    let Some(notify) = &req.notify else {
        return Err(EnforceError::NoChannel);
    };
    let aws = &req.audit.options.aws;
    let deps = Deps::new(load_config(None, aws).await, aws.clone(), None);
    let how = if preview { Use::Read } else { Use::Write };
    let journal = open_journal(&req.journal, how, deps.base(), clock.clone()).await?;
    let journal = journal.as_ref();
    let seen = Seen::default();
    let plan = make_plan(req, (journal, &deps), clock.as_ref(), &seen).await?;
    let dir = seen.into_inner().expect("directory lock");
    let mode = match preview {
        true => Mode::Preview {
            planned: crate::notify::stage::planned(&plan, req.audit.options.as_of),
        },
        false => Mode::Send,
    };
    Ok(deliver(req, notify, &dir, (journal, &deps), mode).await)
}

/// Carries `plan` out. With `--apply` (not a reviewed file), unfinished
/// rotations go first, as the rotation engine does; then the plan is made
/// again, so an undone rotation's key is rotated in this same run rather
/// than left past its stage until the next.
async fn apply_plan(
    req: &EnforceRequest,
    plan: Plan,
    ways: (&dyn Journal, &Deps, &Holder),
    clock: &dyn Clock,
    seen: &Seen,
) -> Result<EnforceOutcome, EnforceError> {
    let (journal, deps, _) = ways;
    let cap = req.max_actions.unwrap_or(usize::MAX);
    let is_unfinished = |a: &Action| matches!(a, Action::Resume { .. } | Action::Undo { .. });
    let outcome = |plan, (results, stopped)| EnforceOutcome {
        plan,
        applied: true,
        results,
        stopped,
        notifications: None,
    };
    if matches!(req.mode, EnforceMode::ApplyPlan(_)) {
        let (checked, mut refused) = recheck_file(req, &plan, (journal, deps), clock, seen).await?;
        let (results, stopped) = apply(req, (&checked, cap), ways, clock).await;
        refused.extend(results);
        return Ok(outcome(plan, (refused, stopped)));
    }
    if !plan.actions.iter().any(is_unfinished) {
        let done = apply(req, (&plan, cap), ways, clock).await;
        return Ok(outcome(plan, done));
    }
    let first = Plan {
        actions: plan
            .actions
            .iter()
            .filter(|a| is_unfinished(a))
            .cloned()
            .collect(),
        ..plan.clone()
    };
    let (mut results, stopped) = apply(req, (&first, cap), ways, clock).await;
    if stopped.is_some() {
        return Ok(outcome(plan, (results, stopped)));
    }
    // Planning again failing after the unfinished rotations ran is said
    // as a result, not as an error before anything ran.
    let again = match make_plan(req, (journal, deps), clock, seen).await {
        Ok(again) => again,
        Err(e) => {
            results.push(ActionResult {
                action: "plan",
                target: "the plan made again after the unfinished rotations".into(),
                account_id: None,
                key_id: None,
                result: Result_::Failed,
                error: Some(error_chain(&e)),
            });
            return Ok(outcome(plan, (results, stopped)));
        }
    };
    let left = cap.saturating_sub(first.actions.len());
    let (more, stopped) = apply(req, (&again, left), ways, clock).await;
    results.extend(more);
    let mut actions = first.actions;
    actions.extend(again.actions.clone());
    Ok(outcome(Plan { actions, ..again }, (results, stopped)))
}

/// The moment exemptions are judged at: the plan's (`--as-of`), as every
/// other fact — a drill for a later moment acts as that moment will, an
/// exemption ending before it included (README, "The plan").
fn exempt_at(req: &EnforceRequest) -> OffsetDateTime {
    req.audit.options.as_of
}

/// A reviewed plan file's key actions checked against the plan made now
/// for the file's moment, from the current rekey.toml and IAM: each is
/// carried out as the fresh plan has it (its facts, rules, exemptions and
/// binding read now, not taken from the file) only if the fresh plan makes
/// the same act for the same key; otherwise it is refused, saying so.
/// Rotations and unfinished rotations stay as the file has them: the
/// rotation engine checks those itself under the user's lease.
async fn recheck_file(
    req: &EnforceRequest,
    file: &Plan,
    (journal, deps): (&dyn Journal, &Deps),
    clock: &dyn Clock,
    seen: &Seen,
) -> Result<(Plan, Vec<ActionResult>), EnforceError> {
    let moment = (file.actions.iter())
        .find_map(|a| a.key_action().map(|k| k.as_of))
        .or(file.as_of)
        .or(file.made_at);
    let mut fresh_req = req.clone();
    if let Some(at) = moment {
        fresh_req.audit.options.as_of = at;
    }
    let fresh = make_plan(&fresh_req, (journal, deps), clock, seen).await?;
    let mut keep = Vec::new();
    let mut refused = Vec::new();
    for a in &file.actions {
        let Some(k) = a.key_action() else {
            keep.push(a.clone());
            continue;
        };
        let now = (fresh.actions.iter()).find(|f| {
            f.name() == a.name()
                && f.key_action().is_some_and(|n| {
                    n.key_id == k.key_id
                        && n.account_id == k.account_id
                        && super::act::same_due(&n.due, &k.due)
                })
        });
        match now {
            Some(f) => keep.push(f.clone()),
            None => {
                let said = (fresh.actions.iter())
                    .find_map(|f| match f {
                        Action::Skip {
                            old_key_id: Some(id),
                            reason,
                            ..
                        } if *id == k.key_id => Some(skip_words(reason)),
                        other => other
                            .key_action()
                            .filter(|n| n.key_id == k.key_id)
                            .map(|_| format!("`{}` now", other.name())),
                    })
                    .unwrap_or_else(|| "nothing now".into());
                let why = format!(
                    "{}: the plan made now does not `{}` it ({said}); nothing was done",
                    k.label,
                    a.name()
                );
                refused.push(result_of(a, Result_::Refused, Some(why)));
            }
        }
    }
    Ok((
        Plan {
            actions: keep,
            ..file.clone()
        },
        refused,
    ))
}

/// A skip's reason in a few words.
fn skip_words(reason: &SkipReason) -> String {
    match reason {
        SkipReason::Exempt { why } => format!("exempt: {why}"),
        SkipReason::Refused { why } | SkipReason::Failed { why } => why.clone(),
        SkipReason::Waiting { .. } => "nothing due".into(),
        SkipReason::Warned { .. } => "warned already".into(),
        SkipReason::InUseReported { .. } => "its use reported already".into(),
        other => format!("{other:?}"),
    }
}

/// Whether `a` belongs to `stage` (`--only`); skips stay, to say why.
fn in_stage(a: &Action, stage: &str) -> bool {
    match a {
        Action::Skip { .. } | Action::Settle(_) => true,
        Action::Rotate { .. }
        | Action::FreeSlot { .. }
        | Action::Resume { .. }
        | Action::Undo { .. } => stage == "rotate",
        other => other.name() == stage,
    }
}

/// Discovers the selected accounts and gathers each, `--concurrency` at a
/// time.
async fn gather_all(
    req: &EnforceRequest,
    journal: &dyn Journal,
    deps: &Deps,
) -> Result<Vec<Result<Gathered, Unreached>>, EnforceError> {
    let opts = &req.audit.options;
    let discovery = discover_with(&req.audit.selection, &opts.aws, Some(deps.base()))
        .await
        .map_err(|e| e.named(req.audit.names))?;
    let cx = Context {
        deps,
        journal,
        entries: &req.entries,
        policies: &opts.policies,
        exemptions: &req.exemptions,
        source: opts.source,
        external_id: req.external_id.as_deref(),
        secret_role: req.secret_role.as_ref(),
        now: exempt_at(req),
    };
    Ok(stream::iter(discovery.targets)
        .map(|t| gather::account(t, &cx))
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await)
}

/// Gathers every account and plans every key (pure once gathered),
/// limited to `--only`'s stage.
async fn make_plan(
    req: &EnforceRequest,
    (journal, deps): (&dyn Journal, &Deps),
    clock: &dyn Clock,
    seen: &Seen,
) -> Result<Plan, EnforceError> {
    let opts = &req.audit.options;
    let now = opts.as_of;
    let results = gather_all(req, journal, deps).await?;
    let mut gathered = Vec::new();
    let mut skips = Vec::new();
    for r in results {
        match r {
            Ok(g) => gathered.push(g),
            Err(u) => skips.push(Action::Skip {
                target: u.label,
                job: None,
                account_id: u.account_id,
                user_name: None,
                old_key_id: None,
                reason: SkipReason::Failed { why: u.why },
            }),
        }
    }
    gathered.sort_by(|a, b| a.account.account_id.cmp(&b.account.account_id));
    let (rotation_actions, unfinished) =
        rotations(req, &mut gathered, (journal, deps), clock).await;
    see(seen, &gathered);
    let mut actions = unfinished;
    let mut findings = Vec::new();
    for g in &mut gathered {
        let lifecycle = req.lifecycles.for_account(&g.account.account_id).clone();
        assign(&mut g.account, &rotation_actions);
        for (key_id, why) in gather::refresh_use(g, deps, &lifecycle, now).await {
            drop_key(
                &mut g.account,
                &key_id,
                &mut skips,
                format!("cannot read its last use: {why}"),
            );
        }
        for (user, why) in std::mem::take(&mut g.refused) {
            drop_user(&mut g.account, &user, &mut skips, why);
        }
        let rules = Rules {
            lifecycle: &lifecycle,
            policy: opts.policies.for_account(Some(&g.account.account_id)),
            exemptions: &req.exemptions,
            exempt_at: exempt_at(req),
        };
        let (a, f) = plan_account(&g.account, &rules, now);
        actions.extend(a);
        findings.extend(f);
    }
    actions.extend(skips);
    if let Some(stage) = &req.only {
        actions.retain(|a| in_stage(a, stage));
    }
    Ok(Plan {
        made_at: Some(clock.now()),
        as_of: (now != opts.now).then_some(now),
        findings,
        ..Plan::new(actions)
    })
}

/// Adds what `gathered` shows of each account and user to `seen`.
fn see(seen: &Seen, gathered: &[Gathered]) {
    use crate::notify::run::UserEntry;
    let mut dir = seen.lock().expect("directory lock");
    for g in gathered {
        let entry = (dir.accounts)
            .entry(g.account.account_id.clone())
            .or_default();
        entry.name = g.name.clone().or(entry.name.take());
        for u in &g.account.users {
            entry.users.insert(
                u.user.user_name.clone(),
                UserEntry {
                    arn: u.user.user_arn.clone(),
                    path: u.user.path.clone(),
                    tags: u.user.tags.clone(),
                    bound: u.bound.is_some(),
                },
            );
        }
    }
}

/// The rotation engine's dry run over the bound users who are not exempt:
/// its actions by (account, user), with which key each destination holds
/// marked on the gathered keys; and the journal's unfinished rotations of
/// these accounts, first.
async fn rotations(
    req: &EnforceRequest,
    gathered: &mut [Gathered],
    (journal, deps): (&dyn Journal, &Deps),
    clock: &dyn Clock,
) -> (BTreeMap<(String, String), Vec<Action>>, Vec<Action>) {
    let opts = &req.audit.options;
    let jobs = open_jobs(req, gathered, deps).await;
    let options = RunOptions {
        rotate: &req.rotate,
        mode: RunMode::Plan,
        concurrency: opts.concurrency.clamp(1, 8),
        clock,
        prompt: &NoPrompt,
        holder: Holder::current(req.rotate.run_id.clone()),
        deps,
    };
    let run = crate::rotation::run(&jobs, journal, &options).await;
    // Which key each bound user's destination holds.
    let mut held: BTreeMap<(String, String), String> = BTreeMap::new();
    for r in run
        .reports
        .iter()
        .chain(run.failures.iter().map(|f| &f.report))
    {
        if let (Some(a), Some(u), Some(k)) = (&r.account_id, &r.user_name, &r.old_key_id) {
            held.insert((a.clone(), u.clone()), k.clone());
        }
    }
    for g in gathered.iter_mut() {
        for u in &mut g.account.users {
            let holds = held.get(&(g.account.account_id.clone(), u.user.user_name.clone()));
            for k in &mut u.keys {
                k.facts.has_destination = holds == Some(&k.key_id);
            }
        }
    }
    let plan = Plan::of_run(
        &run,
        Vec::<(&crate::rotation::engine::Report, String)>::new(),
    );
    group_by_user(plan, gathered)
}

/// The jobs of the bound users who are neither exempt nor refused, each
/// with its account's max age; a destination that cannot be opened
/// refuses its user.
async fn open_jobs(req: &EnforceRequest, gathered: &mut [Gathered], deps: &Deps) -> Vec<Job> {
    let opts = &req.audit.options;
    let mut jobs = Vec::new();
    for g in gathered.iter_mut() {
        let account = g.account.account_id.clone();
        let lifecycle = req.lifecycles.for_account(&account);
        let policy = opts.policies.for_account(Some(&account));
        for spec in std::mem::take(&mut g.specs) {
            let Some(user_name) = spec.subject.user_name().map(str::to_string) else {
                continue;
            };
            if let Some(u) = (g.account.users.iter_mut()).find(|u| u.user.user_name == user_name) {
                u.bound = Some(spec.clone());
            }
            let Some(user) = g
                .account
                .users
                .iter()
                .find(|u| u.user.user_name == user_name)
            else {
                continue;
            };
            let exempt = req.exemptions.of(
                policy,
                (&account, &g.account.ous),
                &user.user,
                exempt_at(req),
            );
            if !matches!(exempt, Ok(Exempt::No | Exempt::Expired(_)))
                || g.refused.contains_key(&user_name)
            {
                continue;
            }
            // The lifecycle decides exemptions; the engine rotates.
            let spec = crate::rotation::JobSpec {
                exempt: None,
                ..spec
            };
            match Job::open(spec, deps).await {
                Ok(job) => jobs.push(job.with_max_age(Some(lifecycle.max_age_days))),
                Err(e) => {
                    g.refused.insert(
                        user_name,
                        format!("cannot open a destination: {}", error_chain(&e)),
                    );
                }
            }
        }
    }
    jobs
}

/// The rotation plan's actions by (account, user), and its unfinished
/// rotations of the gathered accounts. Pure.
fn group_by_user(plan: Plan, gathered: &[Gathered]) -> (ByUser, Vec<Action>) {
    let accounts: Vec<&str> = gathered
        .iter()
        .map(|g| g.account.account_id.as_str())
        .collect();
    let mut by_user: BTreeMap<(String, String), Vec<Action>> = BTreeMap::new();
    let mut unfinished = Vec::new();
    for a in plan.actions {
        match &a {
            Action::Resume { unfinished: u, .. } | Action::Undo { unfinished: u, .. }
                if accounts.contains(&u.account_id.as_str()) =>
            {
                unfinished.push(a);
            }
            // A rotation that failed before it read the user's key (its
            // destination unreadable) still belongs to its user.
            Action::Skip {
                account_id: Some(account),
                user_name: Some(user),
                old_key_id: None,
                ..
            } => {
                let key = (account.clone(), user.clone());
                by_user.entry(key).or_default().push(a);
            }
            Action::Rotate { .. } | Action::FreeSlot { .. } | Action::Skip { .. } => {
                if let Some((account, user, _)) = a.subject() {
                    let key = (account.to_string(), user.to_string());
                    by_user.entry(key).or_default().push(a);
                }
            }
            _ => {}
        }
    }
    (by_user, unfinished)
}

/// Actions by (account, user).
type ByUser = BTreeMap<(String, String), Vec<Action>>;

fn assign(account: &mut GatheredAccount, by_user: &BTreeMap<(String, String), Vec<Action>>) {
    for u in &mut account.users {
        let key = (account.account_id.clone(), u.user.user_name.clone());
        u.rotation = by_user.get(&key).cloned().unwrap_or_default();
    }
}

fn failed_skip(
    account: &GatheredAccount,
    user: &str,
    key: Option<&str>,
    why: String,
    refused: bool,
) -> Action {
    let target = match key {
        Some(k) => super::KeyAction::label_of(&account.account_id, user, k),
        None => format!("user {user} in account {}", account.account_id),
    };
    Action::Skip {
        target,
        job: None,
        account_id: Some(account.account_id.clone()),
        user_name: Some(user.to_string()),
        old_key_id: key.map(str::to_string),
        reason: match refused {
            true => SkipReason::Refused { why },
            false => SkipReason::Failed { why },
        },
    }
}

/// Takes key `key_id` out of the planning: it is skipped as failed.
fn drop_key(account: &mut GatheredAccount, key_id: &str, skips: &mut Vec<Action>, why: String) {
    let mut user = None;
    for u in &mut account.users {
        if u.keys.iter().any(|k| k.key_id == key_id) {
            u.keys.retain(|k| k.key_id != key_id);
            user = Some(u.user.user_name.clone());
        }
    }
    if let Some(user) = user {
        skips.push(failed_skip(account, &user, Some(key_id), why, false));
    }
}

/// Takes user `name` out of the planning: each key is skipped as refused.
fn drop_user(account: &mut GatheredAccount, name: &str, skips: &mut Vec<Action>, why: String) {
    let Some(i) = account.users.iter().position(|u| u.user.user_name == name) else {
        return;
    };
    let u = account.users.remove(i);
    for k in &u.keys {
        skips.push(failed_skip(
            account,
            name,
            Some(&k.key_id),
            why.clone(),
            true,
        ));
    }
}

/// The plan's actions to carry out, in order: unfinished rotations first,
/// then the others, oldest key first; a rotation's slot frees are its own.
fn units(plan: &Plan) -> Vec<&Action> {
    let mut first: Vec<&Action> = Vec::new();
    let mut rest: Vec<&Action> = Vec::new();
    for a in &plan.actions {
        match a {
            Action::Resume { .. } | Action::Undo { .. } => first.push(a),
            Action::Skip { .. } | Action::FreeSlot { .. } => {}
            _ => rest.push(a),
        }
    }
    rest.sort_by_key(|a| created_of(a));
    first.extend(rest);
    first
}

/// When the key an action concerns was created (None sorts first).
fn created_of(a: &Action) -> Option<OffsetDateTime> {
    match a {
        Action::Rotate { plan, seen, .. } => (seen.keys.iter())
            .find(|k| k.key_id.as_deref() == Some(&plan.old_key_id))
            .and_then(|k| k.created),
        other => other.key_action().and_then(|k| k.facts.created),
    }
}

fn account_of(a: &Action) -> Option<&str> {
    a.subject().map(|(account, _, _)| account)
}

fn result_of(a: &Action, result: Result_, error: Option<String>) -> ActionResult {
    let target = match a {
        Action::Rotate { job, .. } => job.label.clone(),
        Action::Resume { rotation_id, .. } | Action::Undo { rotation_id, .. } => {
            format!("rotation #{rotation_id}")
        }
        other => other
            .key_action()
            .map(|k| k.label.clone())
            .unwrap_or_default(),
    };
    let key_id = a.subject().map(|(_, _, key)| key.to_string());
    ActionResult {
        action: a.name(),
        target,
        account_id: account_of(a).map(str::to_string),
        key_id,
        result,
        error,
    }
}

/// Carries the plan out in waves; returns each unit's result, in plan
/// order, and why the run stopped early, if it did.
async fn apply(
    req: &EnforceRequest,
    (plan, cap): (&Plan, usize),
    (journal, deps, holder): (&dyn Journal, &Deps, &Holder),
    clock: &dyn Clock,
) -> (Vec<ActionResult>, Option<Stop>) {
    let all = units(plan);
    let is_canary =
        |a: &Action| account_of(a).is_some_and(|acc| req.canary.iter().any(|c| c == acc));
    // Canaries first, then the cap: a cap never takes the canaries' turn.
    let mut ordered: Vec<(usize, &Action)> = all.iter().copied().enumerate().collect();
    ordered.sort_by_key(|(i, a)| (!is_canary(a), *i));
    let mut now = Vec::new();
    let mut results = Vec::new();
    for (n, unit) in ordered.into_iter().enumerate() {
        if n < cap {
            now.push(unit);
        } else {
            let why = "over --max-actions: due on the next run".to_string();
            results.push(result_of(unit.1, Result_::NotRun, Some(why)));
        }
    }
    let exec = Exec {
        req,
        journal,
        deps,
        holder,
        clock,
    };
    let (canaries, rest): (Vec<_>, Vec<_>) = now.into_iter().partition(|(_, a)| is_canary(a));
    let wave = Wave {
        exec: &exec,
        rate: req.max_failure_rate,
        state: std::sync::Mutex::new(WaveState::default()),
    };
    // A canary that is not among the planned accounts (a typo, an account
    // left out of the selection) holds everything back.
    let planned: Vec<&str> = (plan.actions.iter())
        .filter_map(|a| match a {
            Action::Skip { account_id, .. } => account_id.as_deref(),
            other => account_of(other),
        })
        .collect();
    if let Some(missing) = req.canary.iter().find(|c| !planned.contains(&c.as_str())) {
        let why = format!("canary account {missing} is not among the planned accounts");
        results.extend(
            (canaries.iter().chain(&rest))
                .map(|(_, a)| result_of(a, Result_::NotRun, Some(why.clone()))),
        );
        wave.state.lock().expect("wave lock").stopped = Some(Stop::Canary { failed: 0 });
        return (results, wave.state.into_inner().expect("wave lock").stopped);
    }
    results.extend(wave.run(canaries).await);
    let canary_failed = wave.state.lock().expect("wave lock").unsuccessful;
    if canary_failed > 0 && wave.state.lock().expect("wave lock").stopped.is_none() {
        wave.state.lock().expect("wave lock").stopped = Some(Stop::Canary {
            failed: canary_failed,
        });
    }
    results.extend(wave.run(rest).await);
    let stopped = wave.state.into_inner().expect("wave lock").stopped;
    let order = |r: &ActionResult| {
        all.iter()
            .position(|a| {
                result_of(a, Result_::NotRun, None).target == r.target && a.name() == r.action
            })
            .unwrap_or(usize::MAX)
    };
    results.sort_by_key(order);
    (results, stopped)
}

/// Actions carried out at once: a user's actions always one after the
/// other (they share its lease), different users' side by side.
pub const APPLY_CONCURRENCY: usize = 4;

#[derive(Default)]
struct WaveState {
    carried: usize,
    failed: usize,
    /// Failed or refused: what a canary must not have.
    unsuccessful: usize,
    stopped: Option<Stop>,
}

/// Carries out units, each user's in order, [`APPLY_CONCURRENCY`] users
/// at a time; once stopped (the failure rate, a failed canary), what has
/// not started is not run.
struct Wave<'a> {
    exec: &'a Exec<'a>,
    rate: Option<f64>,
    state: std::sync::Mutex<WaveState>,
}

impl Wave<'_> {
    async fn run(&self, units: Vec<(usize, &Action)>) -> Vec<ActionResult> {
        let mut groups: Vec<Vec<&Action>> = Vec::new();
        let mut of_user: BTreeMap<(String, String), usize> = BTreeMap::new();
        for (_, a) in units {
            let i = *of_user.entry(user_of(a)).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[i].push(a);
        }
        let done: Vec<Vec<ActionResult>> = stream::iter(groups)
            .map(|group| async move {
                let mut out = Vec::new();
                for a in group {
                    out.push(self.one(a).await);
                }
                out
            })
            .buffer_unordered(APPLY_CONCURRENCY)
            .collect()
            .await;
        done.into_iter().flatten().collect()
    }

    async fn one(&self, a: &Action) -> ActionResult {
        if let Some(stop) = &self.state.lock().expect("wave lock").stopped {
            let why = match stop {
                Stop::Canary { .. } => "waiting: a canary action did not succeed",
                Stop::FailureRate { .. } => "the run stopped at --max-failure-rate",
                Stop::Deadline => "the invocation's deadline is near: due on the next run",
            };
            return result_of(a, Result_::NotRun, Some(why.into()));
        }
        if let Some(deadline) = self.exec.req.deadline
            && self.exec.clock.now() >= deadline
        {
            let mut state = self.state.lock().expect("wave lock");
            state.stopped.get_or_insert(Stop::Deadline);
            drop(state);
            let why = "the invocation's deadline is near: due on the next run";
            return result_of(a, Result_::NotRun, Some(why.into()));
        }
        let r = self.exec.one(a).await;
        let mut state = self.state.lock().expect("wave lock");
        // The failure rate counts what was applied: a refusal (changed
        // facts, another run's lease) is not; it does hold a canary's wave.
        match r.result {
            Result_::Refused => state.unsuccessful += 1,
            Result_::Failed => {
                state.carried += 1;
                state.failed += 1;
                state.unsuccessful += 1;
            }
            _ => state.carried += 1,
        }
        if let Some(rate) = self.rate
            && state.stopped.is_none()
            && state.carried >= 5
            && (state.failed as f64) * 100.0 > rate * state.carried as f64
        {
            state.stopped = Some(Stop::FailureRate {
                failed: state.failed,
                carried_out: state.carried,
            });
        }
        r
    }
}

/// The (account, user) an action concerns.
fn user_of(a: &Action) -> (String, String) {
    a.subject()
        .map(|(account, user, _)| (account.to_string(), user.to_string()))
        .unwrap_or_default()
}

struct Exec<'a> {
    req: &'a EnforceRequest,
    journal: &'a dyn Journal,
    deps: &'a Deps,
    holder: &'a Holder,
    clock: &'a dyn Clock,
}

impl Exec<'_> {
    async fn one(&self, a: &Action) -> ActionResult {
        if let Some(k) = a.key_action() {
            let actor = Actor {
                journal: self.journal,
                deps: self.deps,
                holder: self.holder,
                lease_ttl: self.req.rotate.lease_ttl,
            };
            return match actor.act(k).await {
                Ok(Acted::Done) => result_of(a, Result_::Done, None),
                Ok(Acted::AlreadyDone) => result_of(a, Result_::AlreadyDone, None),
                Err(e) => result_of(a, refused_or_failed(&e), Some(error_chain(&e))),
            };
        }
        let engine = Engine {
            journal: self.journal,
            clock: self.clock,
            opts: &self.req.rotate,
            prompt: &NoPrompt,
            holder: self.holder.clone(),
        };
        match execute(&engine, a, self.deps).await {
            Ok(report) => {
                if let (Action::Rotate { plan, .. }, Status::Rotated) = (a, report.status)
                    && plan.old_key_action == OldKeyAction::Keep
                    && let Err(e) = self.replaced(plan).await
                {
                    return result_of(
                        a,
                        Result_::Failed,
                        Some(format!(
                            "rotated, but the journal could not note the old key's replacement: {}",
                            error_chain(&e)
                        )),
                    );
                }
                let result = match report.status {
                    Status::Refused => Result_::Refused,
                    Status::Failed | Status::Undone => Result_::Failed,
                    _ => Result_::Done,
                };
                result_of(a, result, None)
            }
            Err(f) => {
                let result = match f.report.status {
                    Status::Refused => Result_::Refused,
                    _ => Result_::Failed,
                };
                result_of(a, result, Some(error_chain(&f.error)))
            }
        }
    }

    /// Notes in the journal that the rotation replaced its old key, at the
    /// run's moment: its grace counts from there.
    async fn replaced(
        &self,
        plan: &crate::rotation::KeyPlan,
    ) -> Result<(), crate::journal::JournalError> {
        let lease = (self.journal)
            .acquire_lease(
                &plan.account_id,
                &plan.user_name,
                self.holder,
                self.req.rotate.lease_ttl,
            )
            .await?;
        let event = NewKeyEvent {
            account_id: plan.account_id.clone(),
            user_name: plan.user_name.clone(),
            key_id: plan.old_key_id.clone(),
            op: KeyOp::Replaced,
            phase: Phase::Done,
            run_id: self.holder.run_id.clone(),
            as_of: self.req.rotate.as_of.unwrap_or_else(|| self.clock.now()),
            detail: None,
        };
        let result = self.journal.record_key(&event).await.map(|_| ());
        let _ = self.journal.release_lease(&lease).await;
        result
    }
}

fn refused_or_failed(e: &ActError) -> Result_ {
    match e.is_refusal() {
        true => Result_::Refused,
        false => Result_::Failed,
    }
}

/// `--reactivate KEY`: finds the key among the selected accounts' users
/// and makes it active again, as [`super::act::reactivate`] checks.
async fn reactivate(
    req: &EnforceRequest,
    key_id: &str,
    (journal, deps, holder): (&dyn Journal, &Deps, &Holder),
    now: OffsetDateTime,
) -> Result<EnforceOutcome, EnforceError> {
    let gathered = gather_all(req, journal, deps).await?;
    let found = gathered.iter().flatten().find_map(|g| {
        g.account.users.iter().find_map(|u| {
            let k = u.keys.iter().find(|k| k.key_id == key_id && !k.gone)?;
            Some(super::KeyAction {
                label: super::KeyAction::label_of(&g.account.account_id, &u.user.user_name, key_id),
                account_id: g.account.account_id.clone(),
                user_name: u.user.user_name.clone(),
                user_arn: u.user.user_arn.clone(),
                key_id: key_id.to_string(),
                access: g.account.access.clone(),
                facts: super::plan::facts_with_records(&k.facts, &k.recorded),
                recorded: k.recorded.clone(),
                rules: req.lifecycles.for_account(&g.account.account_id).clone(),
                due: super::lifecycle::Due::Nothing { next: None },
                as_of: now,
                lapsed: None,
                bound: None,
            })
        })
    });
    let outcome = |result: ActionResult| EnforceOutcome {
        plan: Plan::new(vec![]),
        applied: true,
        results: vec![result],
        stopped: None,
        notifications: None,
    };
    let Some(action) = found else {
        return Ok(outcome(ActionResult {
            action: "reactivate",
            target: format!("key {}", crate::model::mask_key_id(key_id)),
            account_id: None,
            key_id: Some(key_id.to_string()),
            result: Result_::Refused,
            error: Some("no user of the selected accounts has this key".into()),
        }));
    };
    let actor = Actor {
        journal,
        deps,
        holder,
        lease_ttl: req.rotate.lease_ttl,
    };
    let (result, error) = match super::act::reactivate(&actor, &action, now).await {
        Ok(_) => (Result_::Done, None),
        Err(e) => (refused_or_failed(&e), Some(error_chain(&e))),
    };
    Ok(outcome(ActionResult {
        action: "reactivate",
        target: action.label,
        account_id: Some(action.account_id),
        key_id: Some(key_id.to_string()),
        result,
        error,
    }))
}
