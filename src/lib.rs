//! rekey audits and rotates AWS IAM access keys across many AWS accounts,
//! safely: every key of every user, judged against a rotation policy, in
//! the views people already know (CIS 1.14, AWS Config `access-keys-rotated`,
//! Trusted Advisor).
//!
//! # Layout
//!
//! | module | owns |
//! |---|---|
//! | [`atomic`] | crash-safe file writes: temp file, fsync, rename, backup |
//! | [`names`] | enums with one stable name per variant (JSON, journal, messages) |
//! | [`model`] | plain data: users, keys, masking, account IDs |
//! | [`error`] | [`error::InputError`] (bad input) and [`error::CallError`] (a failed AWS call) |
//! | [`config`] | `rekey.toml` and the per-account policy it resolves to |
//! | [`awsfiles`] | `~/.aws/config` and `~/.aws/credentials`: parse, resolve, edit in place |
//! | [`aws`] | SDK configuration, assumed roles, the call counter; the one client factory (`ClientFactory`) and `Deps`, the live things jobs are opened with |
//! | [`discovery`] | which accounts: profiles, an account list + role, Organizations |
//! | [`inventory`] | users and keys of one account: credential report (`report`) or per-user calls (`api`) |
//! | [`policy`] | pure: key × policy × now → verdict, and the compliance views |
//! | [`permissions`] | pure: the least-privilege IAM policy of each mode (`rekey policy iam`), as JSON or for a CloudFormation template |
//! | [`request`] | what a person asked for (`AuditRequest`, `RotateRequest`, `EnforceRequest`), every default decided and every value checked in one place; carried out by `request::audit::run` and `request::rotate::run` |
//! | [`audit`] | runs discovery → inventory → policy over many accounts concurrently |
//! | [`report`] | table, JSON, CSV, Markdown, HTML and OCSF renderings of an audit |
//! | [`securityhub`] | an audit's findings imported into each account's AWS Security Hub (ASFF) |
//! | [`clock`] | the time source, passed in so tests can set "now" |
//! | [`rotation`] | the library run (`rotation::run`): jobs as data (`JobSpec`: subject, access, destinations) opened by one constructor (`Job::open`), plan, the step order as a pure function, resume; profile → key targets |
//! | [`destination`] | where a new secret is delivered: profiles of the shared credentials and config files; their journaled form (`DestinationSpec`) |
//! | [`journal`] | every rotation step, and every act on a key outside a rotation, recorded before and after its side effect; leases |
//! | [`enforce`] | the access-key lifecycle (`rekey enforce`): what is due for one key and the exemptions (pure), the gathered facts, the per-account planner (pure), the key acts journaled under the user's lease, the run in waves |
//! | [`notify`] | notifications (SNS, SES email to each key's owner, a chat webhook): each key's stage from the journal, told once per stage in one digest per recipient, journaled |
//! | `lambda` | (feature `lambda`) the Lambda's handlers: the scheduled fan-out, the SQS worker, the Secrets Manager rotation function, the Config rule; settings from the environment, EMF metrics |
//! | [`schedule`] | daily `rekey rotate` jobs for cron, systemd and launchd |
//! | [`faults`] | test-only fault injection (feature `fault-injection`) |

pub mod atomic;
pub mod audit;
pub mod aws;
pub mod awsfiles;
pub mod calls;
pub mod clock;
pub mod config;
pub mod destination;
pub mod discovery;
pub mod enforce;
pub mod error;
pub mod faults;
pub mod inventory;
pub mod journal;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod model;
pub mod names;
pub mod notify;
pub mod permissions;
pub mod policy;
pub mod report;
pub mod request;
pub mod rotation;
pub mod schedule;
pub mod securityhub;
