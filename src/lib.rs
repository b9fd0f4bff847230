//! rekey audits and rotates AWS IAM access keys across many AWS accounts,
//! safely: every key of every user, judged against a rotation policy, in
//! the views people already know (CIS 1.14, AWS Config `access-keys-rotated`,
//! Trusted Advisor).
//!
//! # Layout
//!
//! | module | owns |
//! |---|---|
//! | [`model`] | plain data: users, keys, masking, account IDs |
//! | [`error`] | [`error::InputError`] (bad input) and [`error::CallError`] (a failed AWS call) |
//! | [`config`] | `rekey.toml` and the per-account policy it resolves to |
//! | [`awsfiles`] | `~/.aws/config` and `~/.aws/credentials`: parse, resolve, edit in place |
//! | [`aws`] | SDK configuration, assumed roles, the call counter |
//! | [`discovery`] | which accounts: profiles, an account list + role, Organizations |
//! | [`inventory`] | users and keys of one account: credential report or per-user calls |
//! | [`policy`] | pure: key × policy × now → verdict, and the compliance views |
//! | [`audit`] | runs discovery → inventory → policy over many accounts concurrently |
//! | [`report`] | table, JSON, CSV, Markdown and HTML renderings of an audit |

pub mod audit;
pub mod aws;
pub mod awsfiles;
pub mod config;
pub mod discovery;
pub mod error;
pub mod inventory;
pub mod model;
pub mod policy;
pub mod report;
