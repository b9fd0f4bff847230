//! Issue 19, notifications: every channel read back from where it lands
//! — SES's sent mail (the harness), an SQS queue subscribed to the SNS
//! topic, and a local server standing in for the chat webhook — and
//! compared with what the test expects, key by key and stage by stage.

use std::collections::{BTreeMap, BTreeSet};

use aws_config::SdkConfig;
use rekey::notify::Stage;

use crate::support::notify::{drain, ses_sent, topic_with_queue, verify_sender};
use std::process::Output;

use serde_json::json;

use crate::enforce::{date_key, day, iso, set_clock};
use crate::support::runner::Runner;
use crate::support::stores::{ServiceAccount, assert_no_secret_in};
use crate::support::webhook::Webhook;
use crate::support::{
    Creds, Org, ROLE, code, json_out, member_config, moto, said, sdk_config, signal, stdout,
};

/// The sender every test's rekey.toml names.
pub const FROM: &str = "rekey@example.com";
/// The environment variable the webhook's URL is given in.
pub const WEBHOOK_VAR: &str = "REKEY_TEST_WEBHOOK";

/// `(user, stage)`: one key's notice.
pub type Told = BTreeSet<(String, Stage)>;

/// What the channels delivered since the last look.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct News {
    /// By recipient address.
    pub email: BTreeMap<String, Told>,
    /// By (account, stage): the users.
    pub sns: BTreeMap<(String, Stage), BTreeSet<String>>,
    /// One entry per chat message.
    pub chat: Vec<Told>,
}

impl News {
    pub fn is_empty(&self) -> bool {
        self.email.is_empty() && self.sns.is_empty() && self.chat.is_empty()
    }
}

/// The three places notifications land, for one organization's
/// management account (where rekey's base credentials are).
pub struct Inbox {
    pub account_id: String,
    pub config: SdkConfig,
    pub topic: String,
    queue: String,
    pub webhook: Webhook,
    mails_seen: usize,
    chats_seen: usize,
    /// Every body delivered, for a look for secrets.
    pub everything: String,
}

fn stage_of_heading(heading: &str) -> Stage {
    *(Stage::ALL.iter())
        .find(|s| s.heading() == heading)
        .unwrap_or_else(|| panic!("no stage is headed `{heading}`"))
}

/// `(user, stage)` of each key an email's text lists.
pub fn told_in_mail(text: &str) -> Told {
    let mut stage = None;
    let mut told = Told::new();
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("== ") {
            let heading = h.rsplit_once(" (").map_or(h, |(a, _)| a);
            stage = Some(stage_of_heading(heading));
        } else if let Some(rest) = line.strip_prefix("* Key ") {
            let user = rest
                .split(" of user ")
                .nth(1)
                .unwrap()
                .split(" in account ")
                .next()
                .unwrap();
            told.insert((user.to_string(), stage.expect("a key under a heading")));
        }
    }
    told
}

/// `(user, stage)` of each key a chat message lists.
pub fn told_in_chat(body: &serde_json::Value) -> Told {
    let mut stage = None;
    let mut told = Told::new();
    for block in body["blocks"].as_array().expect("blocks") {
        assert_eq!(block["type"], "section");
        for line in block["text"]["text"].as_str().unwrap().lines() {
            if let Some(rest) = line.strip_prefix("• ") {
                let user = rest
                    .split(" of *")
                    .nth(1)
                    .unwrap()
                    .split("* in ")
                    .next()
                    .unwrap();
                told.insert((user.to_string(), stage.expect("a key under a heading")));
            } else if let Some(h) = line.strip_prefix('*')
                && !h.starts_with("rekey:")
            {
                stage = Some(stage_of_heading(h.split('*').next().unwrap()));
            }
        }
    }
    assert!(
        body["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("*rekey: ")),
        "{body}"
    );
    told
}

impl Inbox {
    /// A verified sender, a topic with a queue, and a webhook stand-in in
    /// `org`'s management account.
    pub async fn new(org: &Org, name: &str) -> Inbox {
        Inbox::in_account(sdk_config(&org.admin), &org.management_account_id, name).await
    }

    /// [`Inbox::new`] in the account `config` signs for.
    pub async fn in_account(config: SdkConfig, account_id: &str, name: &str) -> Inbox {
        verify_sender(&config, FROM).await;
        let (topic, queue) = topic_with_queue(&config, name).await;
        Inbox {
            account_id: account_id.to_string(),
            config,
            topic,
            queue,
            webhook: Webhook::start(),
            mails_seen: 0,
            chats_seen: 0,
            everything: String::new(),
        }
    }

    /// `[notify]` naming all three channels.
    pub fn settings(&self) -> String {
        format!(
            "[notify]\nsns_topic = \"{}\"\nemail_from = \"{FROM}\"\nwebhook = \"env:{WEBHOOK_VAR}\"\n",
            self.topic
        )
    }

    /// The environment rekey is run with.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![(WEBHOOK_VAR, self.webhook.url())]
    }

    /// What was delivered since the last call: one message per recipient
    /// (and per account and stage on SNS), or the test fails.
    pub async fn news(&mut self) -> News {
        self.read(false).await
    }

    /// [`Inbox::news`], where a recipient may have had a message twice
    /// (a run killed after sending, before journaling): their notices
    /// together.
    pub async fn news_with_repeats(&mut self) -> News {
        self.read(true).await
    }

    async fn read(&mut self, repeats: bool) -> News {
        let mut news = News::default();
        let mails = ses_sent(Some(&self.account_id));
        for m in &mails[self.mails_seen..] {
            assert_eq!(m.source, FROM);
            assert_eq!(m.destinations.len(), 1, "one owner per mail: {m:?}");
            let text = m.text.clone().expect("a text part");
            let html = m.html.clone().expect("an HTML part");
            let told = told_in_mail(&text);
            assert!(
                m.subject
                    .starts_with(&format!("rekey: {} of your access key", told.len())),
                "{}",
                m.subject
            );
            let old = news.email.entry(m.destinations[0].clone()).or_default();
            let once = repeats || old.is_empty();
            assert!(once, "two mails to {} in one run", m.destinations[0]);
            old.extend(told);
            self.everything
                .push_str(&format!("{}\n{text}\n{html}\n", m.subject));
        }
        self.mails_seen = mails.len();
        for d in drain(&self.config, &self.queue).await {
            let m = &d.message;
            assert_eq!(m["schema"], rekey::notify::SCHEMA);
            let account = m["account_id"].as_str().unwrap().to_string();
            let stage: Stage = m["stage"].as_str().unwrap().parse().unwrap();
            assert_eq!(d.attributes["account_id"], account);
            assert_eq!(d.attributes["stage"], stage.as_str());
            assert_eq!(d.attributes["severity"], stage.severity().as_str());
            assert_eq!(m["severity"], stage.severity().as_str());
            let users: BTreeSet<String> = (m["keys"].as_array().unwrap().iter())
                .map(|k| k["user_name"].as_str().unwrap().to_string())
                .collect();
            let old = news.sns.entry((account, stage)).or_default();
            let once = repeats || old.is_empty();
            assert!(once, "two SNS messages for one account and stage in a run");
            old.extend(users);
            self.everything.push_str(&format!("{m}\n"));
        }
        let chats = self.webhook.received();
        for c in &chats[self.chats_seen..] {
            match (repeats, news.chat.first_mut()) {
                (true, Some(all)) => all.extend(told_in_chat(c)),
                _ => news.chat.push(told_in_chat(c)),
            }
            self.everything.push_str(&format!("{c}\n"));
        }
        self.chats_seen = chats.len();
        news
    }
}

/// What the channels should have delivered for `told` (`(user, stage)`),
/// with `owner` and `account` of each user.
pub fn delivered_for(
    told: &[(&str, Stage)],
    owner: impl Fn(&str) -> String,
    account: impl Fn(&str) -> String,
) -> News {
    let mut news = News::default();
    for (user, stage) in told {
        let key = (user.to_string(), *stage);
        news.email
            .entry(owner(user))
            .or_default()
            .insert(key.clone());
        news.sns
            .entry((account(user), *stage))
            .or_default()
            .insert(user.to_string());
    }
    if !told.is_empty() {
        news.chat
            .push(told.iter().map(|(u, s)| (u.to_string(), *s)).collect());
    }
    news
}

/// One member account whose people (`(name, owner address)`) hold keys
/// created on day 0 and never used, with no destination: warned on day
/// 77, deactivated on day 105, deleted on day 112.
struct Scene {
    org: Org,
    member: String,
    inbox: Inbox,
    runner: Runner,
    config: std::path::PathBuf,
    keys: Vec<Creds>,
}

impl Scene {
    async fn new(people: &[(&str, &str)]) -> Scene {
        let org = moto().new_org(1);
        let inbox = Inbox::new(&org, "scene").await;
        Scene::with_inbox(org, inbox, people, "").await
    }

    async fn with_inbox(org: Org, inbox: Inbox, people: &[(&str, &str)], extra: &str) -> Scene {
        let acct = ServiceAccount::of(&org, 0).await;
        set_clock(&acct.account_id, 0);
        let mut keys = Vec::new();
        for (name, owner) in people {
            let key = (acct.seeder)
                .user_with_key(name, &["sts:GetCallerIdentity"], 0)
                .await;
            acct.seeder.tag_user(name, "owner", owner).await;
            date_key(&acct.account_id, name, &key.access_key_id, 0, None);
            keys.push(key);
        }
        let runner = Runner::new(&org.admin);
        let config = runner.file("rekey.toml", &format!("{}{extra}", inbox.settings()));
        Scene {
            member: acct.account_id.clone(),
            org,
            inbox,
            runner,
            config,
            keys,
        }
    }

    /// `rekey COMMAND` for the member account at day `n` (`--as-of`),
    /// with the webhook's URL in the environment and `env` besides.
    fn rekey(&self, command: &str, n: i64, args: &[&str], env: &[(&str, &str)]) -> Output {
        set_clock(&self.member, n);
        let as_of = iso(day(n));
        let url = self.inbox.webhook.url();
        let mut all = vec![(WEBHOOK_VAR, url.as_str())];
        all.extend_from_slice(env);
        let at = (
            self.org.management_account_id.as_str(),
            self.config.as_path(),
            as_of.as_str(),
        );
        self.runner.org_run(at, command, args, &all)
    }

    fn enforce(&self, n: i64, env: &[(&str, &str)]) -> Output {
        self.rekey("enforce", n, &["--apply", "-o", "json"], env)
    }

    /// What the channels owe when `told` happened to these people.
    fn expect(&self, told: &[(&str, Stage)], owner: impl Fn(&str) -> String) -> News {
        delivered_for(told, owner, |_| self.member.clone())
    }

    /// Fails the next `count` SES SendEmail calls of the sending account.
    fn throttle_ses(&self, count: usize) {
        moto().control(
            "fail",
            json!({
                "action": "ses:SendEmail", "account_id": self.inbox.account_id,
                "count": count, "status": 429, "code": "TooManyRequestsException",
            }),
        );
    }

    fn secrets(&self) -> Vec<&str> {
        self.keys
            .iter()
            .map(|k| k.secret_access_key.as_str())
            .collect()
    }
}

fn owner_of(user: &str) -> String {
    format!("{user}@example.com")
}

/// The notifications of one run's JSON: `(channel, delivered)` per message.
fn deliveries(out: &Output) -> Vec<(String, bool)> {
    let v = json_out(out);
    let mut d: Vec<(String, bool)> = (v["notifications"]["messages"].as_array())
        .map(|m| {
            m.iter()
                .map(|m| {
                    (
                        m["channel"].as_str().unwrap().to_string(),
                        m["delivered"].as_bool().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    d.sort();
    d
}

#[tokio::test]
async fn a_failing_channel_is_retried_then_owed_and_every_notice_arrives_once() {
    let people = [
        ("dev-1", "dev-1@example.com"),
        ("dev-2", "dev-2@example.com"),
    ];
    let mut s = Scene::new(&people).await;
    let mut said_all = String::new();
    // A webhook answering 500 once and SES throttling once: retried with
    // backoff within the run, delivered.
    s.inbox.webhook.fail_next(1, 500);
    s.throttle_ses(1);
    let out = s.enforce(77, &[]);
    said_all.push_str(&said(&out));
    assert_eq!(code(&out), 0, "{}", said(&out));
    let warned = [("dev-1", Stage::Warning), ("dev-2", Stage::Warning)];
    assert_eq!(s.inbox.news().await, s.expect(&warned, owner_of));
    assert_eq!(s.inbox.webhook.attempts(), 2, "one 500, then delivered");
    // Both failing for good on day 105: SNS goes, the others are said,
    // counted in the exit code (4) and owed.
    s.inbox.webhook.fail_next(1000, 500);
    s.throttle_ses(1000);
    let out = s.enforce(105, &[]);
    said_all.push_str(&said(&out));
    assert_eq!(code(&out), 4, "{}", said(&out));
    let off = [("dev-1", Stage::Deactivated), ("dev-2", Stage::Deactivated)];
    let all = s.expect(&off, owner_of);
    let news = s.inbox.news().await;
    assert_eq!(news.sns, all.sns);
    assert!(news.email.is_empty() && news.chat.is_empty(), "{news:?}");
    let d = deliveries(&out);
    let want = [
        ("email", false),
        ("email", false),
        ("sns", true),
        ("webhook", false),
    ];
    assert_eq!(d, want.map(|(c, ok)| (c.to_string(), ok)).to_vec());
    let table = s.rekey("notify", 105, &["--preview"], &[]);
    assert!(
        stdout(&table).contains("=== email to dev-1@example.com (1 key) ==="),
        "{}",
        said(&table)
    );
    // The next run — here `rekey notify` — delivers what is owed, once;
    // SNS has nothing more to say.
    moto().control("fail_clear", json!({}));
    s.inbox.webhook.fail_next(0, 500);
    let out = s.rekey("notify", 105, &[], &[]);
    said_all.push_str(&said(&out));
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert!(
        stdout(&out).contains("Notifications: 3 sent, 0 not delivered."),
        "{}",
        said(&out)
    );
    let news = s.inbox.news().await;
    assert_eq!((news.email, news.chat), (all.email, all.chat));
    assert!(news.sns.is_empty());
    let again = s.rekey("notify", 105, &[], &[]);
    assert!(
        stdout(&again).contains("nothing new to tell"),
        "{}",
        said(&again)
    );
    assert!(s.inbox.news().await.is_empty());
    // No secret anywhere: not the keys', not the webhook's URL — in
    // output, in what was sent, in the journal.
    let token = s.inbox.webhook.token().to_string();
    for secret in s.secrets().into_iter().chain([token.as_str()]) {
        assert!(!said_all.contains(secret), "a secret in rekey's output");
        assert!(
            !s.inbox.everything.contains(secret),
            "a secret in a notification"
        );
    }
    let mut secrets = s.secrets();
    secrets.push(&token);
    assert_no_secret_in(s.runner.state.path(), &secrets);
}

#[tokio::test]
async fn a_run_killed_between_sending_and_journaling_sends_again_and_loses_nothing() {
    let people = [
        ("dev-1", "dev-1@example.com"),
        ("dev-2", "dev-2@example.com"),
    ];
    let mut s = Scene::new(&people).await;
    let killed = s.enforce(77, &[("REKEY_CRASH_AT", "notify:sent")]);
    assert_eq!(
        signal(&killed),
        6,
        "aborted after its first message went out"
    );
    // Nothing was journaled as delivered: the next run sends it all
    // again — what the killed run sent, a second time (at least once,
    // never lost). The killed run's messages still in flight may land
    // late, so both runs are read together.
    let out = s.enforce(77, &[]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert_eq!(
        deliveries(&out).iter().filter(|(_, ok)| *ok).count(),
        4,
        "{}",
        said(&out)
    );
    let warned = [("dev-1", Stage::Warning), ("dev-2", Stage::Warning)];
    assert_eq!(
        s.inbox.news_with_repeats().await,
        s.expect(&warned, owner_of)
    );
    let again = s.enforce(77, &[]);
    assert_eq!(code(&again), 0, "{}", said(&again));
    assert!(s.inbox.news().await.is_empty());
}

#[tokio::test]
async fn markup_in_a_name_cannot_reach_the_html_mail_or_the_chat() {
    // IAM allows `+=,.@_-` in user names; moto allows anything, as tags
    // and account names do: the worst a member account could write.
    let evil = "<script>alert(1)</script>";
    let mut s = Scene::new(&[(evil, "dev@example.com")]).await;
    let out = s.enforce(77, &[]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let mails = ses_sent(Some(&s.inbox.account_id));
    assert_eq!(mails.len(), 1);
    let html = mails[0].html.as_deref().unwrap();
    assert!(!html.contains("<script"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "{html}"
    );
    let chat = s.inbox.webhook.received()[0].to_string();
    assert!(
        !chat.contains("<script") && !chat.contains("<\\/script"),
        "{chat}"
    );
    assert!(
        chat.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{chat}"
    );
    let news = s.inbox.news().await;
    let escaped = "&lt;script&gt;alert(1)&lt;/script&gt;".to_string();
    assert_eq!(news.chat, vec![[(escaped, Stage::Warning)].into()]);
}

#[tokio::test]
async fn bad_notification_settings_are_named_and_nothing_is_sent() {
    let s = Scene::new(&[("dev-1", "dev-1@example.com")]).await;
    let url = s.inbox.webhook.url();
    let topic = s.inbox.topic.clone();
    #[allow(clippy::type_complexity)]
    let cases: Vec<(String, Vec<&str>, Vec<(&str, &str)>, &str)> = vec![
        (
            format!("[notify]\nwebhook = \"{url}\"\n"),
            vec![],
            vec![],
            "is a secret",
        ),
        (
            "[notify]\nwebhook = \"env:REKEY_NO_SUCH_VAR\"\n".into(),
            vec![],
            vec![],
            "REKEY_NO_SUCH_VAR is not set",
        ),
        (
            "[notify]\nwebhook = \"env:BAD_HOOK\"\n".into(),
            vec![],
            vec![("BAD_HOOK", "ftp://example.com/x")],
            "does not hold a webhook URL",
        ),
        (
            "[notify]\nsns_topic = \"rekey\"\n".into(),
            vec![],
            vec![],
            "not an SNS topic ARN",
        ),
        (
            format!("[notify]\nsns_topic = \"{topic}\"\nemail_from = \"a@x.io, b@x.io\"\n"),
            vec![],
            vec![],
            "[notify] email_from: `a@x.io, b@x.io` is not one email address",
        ),
        (
            format!(
                "[notify]\nsns_topic = \"{topic}\"\n[[owner]]\nusers = \"svc-*\"\nemail = \"team\"\n"
            ),
            vec![],
            vec![],
            "[[owner]] entry 1: email `team` is not one email address",
        ),
        (
            format!("[notify]\nsns_topic = \"{topic}\"\ntemplates = \"nowhere\"\n"),
            vec![],
            vec![],
            "no such directory of templates",
        ),
        (
            format!("[notify]\nsns_topic = \"{topic}\"\nrenotify_after = \"soon\"\n"),
            vec![],
            vec![],
            "renotify_after",
        ),
        (
            format!("[notify]\nsns_topic = \"{topic}\"\nsns = 1\n"),
            vec![],
            vec![],
            "unknown field `sns`",
        ),
        (
            String::new(),
            vec!["--notify-webhook", &url],
            vec![],
            "--notify-webhook: a webhook's URL is a secret",
        ),
    ];
    for (toml, flags, env, want) in cases {
        std::fs::write(&s.config, &toml).unwrap();
        let mut args = vec!["--apply", "-o", "json"];
        args.extend(flags.iter().copied());
        let out = s.rekey("enforce", 77, &args, &env);
        assert_eq!(code(&out), 1, "{toml}: {}", said(&out));
        assert!(said(&out).contains(want), "{toml}: {}", said(&out));
        assert!(
            !said(&out).contains(s.inbox.webhook.token()),
            "the URL repeated: {}",
            said(&out)
        );
    }
    std::fs::write(&s.config, "").unwrap();
    let out = s.rekey("notify", 77, &[], &[]);
    assert_eq!(code(&out), 1);
    assert!(
        said(&out).contains("no notification channel is configured"),
        "{}",
        said(&out)
    );
    // Nothing ran: no key was warned, nothing was sent.
    assert!(ses_sent(Some(&s.inbox.account_id)).is_empty());
    assert_eq!(s.inbox.webhook.attempts(), 0);
    assert!(
        !s.runner.journal().exists(),
        "the journal was not even made"
    );
}

#[tokio::test]
async fn preview_shows_the_next_runs_messages_and_renotify_after_tells_a_warning_again() {
    // SNS and SES in the member account, reached through a role.
    let org = moto().new_org(1);
    let member = org.members[0].account_id.clone();
    let inbox = Inbox::in_account(member_config(&org, &member).await, &member, "reach").await;
    let role = format!("role = \"arn:aws:iam::{member}:role/{ROLE}\"\n");
    let mut s = Scene::with_inbox(org, inbox, &[("dev-1", "dev-1@example.com")], &role).await;
    // Before any run: the plan's warning, rendered, nothing sent, nothing
    // written.
    let preview = s.rekey("notify", 77, &["--preview"], &[]);
    assert_eq!(code(&preview), 0, "{}", said(&preview));
    let text = stdout(&preview);
    assert!(
        text.contains("=== email to dev-1@example.com (1 key) ==="),
        "{text}"
    );
    assert!(text.contains("== Due soon (1) =="), "{text}");
    assert!(text.contains("rekey rotate --profile PROFILE"), "{text}");
    assert!(
        text.contains("=== webhook to the team's chat (1 key) ==="),
        "{text}"
    );
    assert!(
        text.contains("\"schema\": \"rekey.notification/1\""),
        "{text}"
    );
    assert!(!text.contains(s.inbox.webhook.token()), "{text}");
    assert!(s.inbox.news().await.is_empty());
    assert!(!s.runner.journal().exists());
    let warned = [("dev-1", Stage::Warning)];
    let out = s.enforce(77, &[]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert_eq!(s.inbox.news().await, s.expect(&warned, owner_of));
    let preview = s.rekey("notify", 78, &["--preview"], &[]);
    assert!(
        stdout(&preview).contains("Nothing to send"),
        "{}",
        said(&preview)
    );
    // --renotify-after 7d: not within the week, again after it.
    let weekly = ["--renotify-after", "7d"];
    let out = s.rekey("notify", 83, &weekly, &[]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert!(s.inbox.news().await.is_empty());
    let out = s.rekey("notify", 84, &weekly, &[]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert_eq!(s.inbox.news().await, s.expect(&warned, owner_of));
    let out = s.rekey("notify", 84, &weekly, &[]);
    assert!(
        stdout(&out).contains("nothing new to tell"),
        "{}",
        said(&out)
    );
}
