//! `rekey policy iam --mode MODE`: the least-privilege IAM policy of a way
//! rekey runs, as JSON (the library's `permissions`).

use std::process::ExitCode;

use rekey::permissions::{self, Format, Mode, Scope};

#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Print the IAM policy a mode needs, resources scoped by the options.
    Iam(IamArgs),
}

#[derive(Debug, clap::Args)]
pub struct IamArgs {
    /// audit, rotate-self, service, enforce, member, lambda, notify or journal.
    #[arg(long, value_name = "MODE")]
    mode: String,
    /// json (a policy document) or cloudformation (`${Name}` as Ref, `${A.B}` as Fn::GetAtt).
    #[arg(long, default_value = "json", value_name = "FORMAT")]
    format: String,
    /// The ARNs' partition (default aws; the stack's in cloudformation).
    #[arg(long)]
    partition: Option<String>,
    /// The account the resources are in (default *; the stack's in cloudformation).
    #[arg(long, value_name = "ID")]
    account: Option<String>,
    /// The region the resources are in (default *; the stack's in cloudformation).
    #[arg(long)]
    region: Option<String>,
    /// The journal's DynamoDB table.
    #[arg(long, value_name = "NAME", default_value = permissions::DEFAULT_TABLE)]
    table: String,
    /// What the names of the secrets rekey writes start with.
    #[arg(long, value_name = "PREFIX", default_value = permissions::DEFAULT_SECRETS_PREFIX)]
    secrets_prefix: String,
    /// What the paths of the parameters rekey writes start with.
    #[arg(long, value_name = "PREFIX", default_value = permissions::DEFAULT_PARAMETERS_PREFIX)]
    parameters_prefix: String,
    /// The notification topic, a name or an ARN.
    #[arg(long, value_name = "NAME|ARN", default_value = permissions::DEFAULT_TOPIC)]
    topic: String,
    /// The fan-out queue, a name or an ARN.
    #[arg(long, value_name = "NAME|ARN", default_value = permissions::DEFAULT_QUEUE)]
    queue: String,
    /// The role the Lambda assumes in each member account.
    #[arg(long, value_name = "NAME", default_value = permissions::DEFAULT_MEMBER_ROLE)]
    member_role: String,
}

pub fn run(command: PolicyCommand) -> anyhow::Result<ExitCode> {
    let PolicyCommand::Iam(args) = command;
    let mode: Mode = args.mode.parse()?;
    let format: Format = args.format.parse()?;
    let defaults = Scope::defaults(format);
    let scope = Scope {
        partition: args.partition.unwrap_or(defaults.partition),
        account: args.account.unwrap_or(defaults.account),
        region: args.region.unwrap_or(defaults.region),
        table: args.table,
        secrets_prefix: args.secrets_prefix,
        parameters_prefix: args.parameters_prefix,
        topic: args.topic,
        queue: args.queue,
        member_role: args.member_role,
    };
    let doc = permissions::render(mode, format, &scope)?;
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(ExitCode::SUCCESS)
}
