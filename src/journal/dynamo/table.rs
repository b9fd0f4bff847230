//! The journal's table: created by `rekey journal init --dynamodb TABLE`
//! (on-demand billing, point-in-time recovery, TTL on `expires`), and
//! checked before use, so that rekey never writes into a table of another
//! shape. Init is idempotent: on a table that is already a journal it only
//! turns on what is off.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, PointInTimeRecoverySpecification,
    PointInTimeRecoveryStatus, ScalarAttributeType, TableDescription, TimeToLiveSpecification,
    TimeToLiveStatus,
};

use super::DynamoJournal;
use super::store::{EXPIRES, PK, SK, said};
use crate::journal::JournalError;

/// What `journal init` found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitReport {
    pub table: String,
    /// Created now (else it was there, and a journal).
    pub created: bool,
    /// TTL on `expires` was turned on now.
    pub ttl_turned_on: bool,
    /// Point-in-time recovery was turned on now.
    pub pitr_turned_on: bool,
    /// `PAY_PER_REQUEST`, or what an existing table uses (left as it is).
    pub billing: String,
}

impl std::fmt::Display for InitReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = |now: bool| if now { "turned on" } else { "already on" };
        let what = if self.created {
            "created"
        } else {
            "already a rekey journal"
        };
        writeln!(f, "table {}: {what}", self.table)?;
        writeln!(f, "  key: pk (string, partition) + sk (string, sort)")?;
        writeln!(f, "  billing: {}", self.billing)?;
        writeln!(
            f,
            "  time to live on `{EXPIRES}`: {}",
            state(self.ttl_turned_on)
        )?;
        write!(
            f,
            "  point-in-time recovery: {}",
            state(self.pitr_turned_on)
        )
    }
}

fn dynamo_error<'a, E, R>(
    table: &'a str,
    doing: &'static str,
) -> impl Fn(SdkError<E, R>) -> JournalError + 'a
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    move |e| JournalError::Dynamo {
        table: table.to_string(),
        doing,
        message: said(&e),
    }
}

/// Creates table `table` as a journal, or checks that an existing one is
/// shaped as one and turns on its TTL and point-in-time recovery.
pub async fn init(client: &Client, table: &str) -> Result<InitReport, JournalError> {
    let mut created = false;
    let described = match describe(client, table).await? {
        Some(t) => t,
        None => {
            create(client, table).await?;
            created = true;
            wait_active(client, table).await?
        }
    };
    shape(table, &described)?;
    let billing = described
        .billing_mode_summary()
        .and_then(|b| b.billing_mode())
        .map_or("PROVISIONED".to_string(), |b| b.as_str().to_string());
    let ttl_turned_on = ensure_ttl(client, table).await?;
    let pitr_turned_on = ensure_pitr(client, table).await?;
    Ok(InitReport {
        table: table.to_string(),
        created,
        ttl_turned_on,
        pitr_turned_on,
        billing,
    })
}

async fn describe(client: &Client, table: &str) -> Result<Option<TableDescription>, JournalError> {
    match client.describe_table().table_name(table).send().await {
        Ok(out) => Ok(out.table),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(dynamo_error(table, "describing the table")(e)),
    }
}

async fn create(client: &Client, table: &str) -> Result<(), JournalError> {
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("an attribute has a name and a type")
    };
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("a key element has a name and a type")
    };
    client
        .create_table()
        .table_name(table)
        .attribute_definitions(attr(PK))
        .attribute_definitions(attr(SK))
        .key_schema(key(PK, KeyType::Hash))
        .key_schema(key(SK, KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .map_err(dynamo_error(table, "creating the table"))?;
    Ok(())
}

/// Waits (up to two minutes) for a new table to become usable.
async fn wait_active(client: &Client, table: &str) -> Result<TableDescription, JournalError> {
    for _ in 0..120 {
        if let Some(t) = describe(client, table).await?
            && t.table_status().is_some_and(|s| s.as_str() == "ACTIVE")
        {
            return Ok(t);
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    Err(JournalError::Dynamo {
        table: table.to_string(),
        doing: "creating the table",
        message: "it was not ACTIVE after two minutes".into(),
    })
}

/// Checks that `t` has a journal's key: `pk` (string) as partition key and
/// `sk` (string) as sort key; says every difference.
pub(super) fn shape(table: &str, t: &TableDescription) -> Result<(), JournalError> {
    let type_of = |name: &str| {
        t.attribute_definitions()
            .iter()
            .find(|a| a.attribute_name() == name)
            .map(|a| a.attribute_type().as_str().to_string())
    };
    let described: Vec<String> = t
        .key_schema()
        .iter()
        .map(|k| {
            let kind = match k.key_type() {
                KeyType::Hash => "partition",
                KeyType::Range => "sort",
                _ => "unknown",
            };
            let ty = type_of(k.attribute_name()).unwrap_or_else(|| "?".into());
            format!("{} ({kind}, {ty})", k.attribute_name())
        })
        .collect();
    let wanted = [format!("{PK} (partition, S)"), format!("{SK} (sort, S)")];
    if described == wanted {
        return Ok(());
    }
    let mut differences = Vec::new();
    for w in &wanted {
        if !described.contains(w) {
            differences.push(format!("it has no key {w}"));
        }
    }
    for d in &described {
        if !wanted.contains(d) {
            differences.push(format!("its key has {d}"));
        }
    }
    Err(JournalError::TableShape {
        table: table.to_string(),
        differences: format!(
            "{} (a rekey journal's key is {} + {})",
            differences.join("; "),
            wanted[0],
            wanted[1]
        ),
    })
}

async fn ensure_ttl(client: &Client, table: &str) -> Result<bool, JournalError> {
    let out = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(dynamo_error(table, "reading the table's time to live"))?;
    let d = out.time_to_live_description();
    let status = d.and_then(|d| d.time_to_live_status());
    let attribute = d.and_then(|d| d.attribute_name());
    let on = matches!(
        status,
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
    );
    match (on, attribute) {
        (true, Some(EXPIRES)) => Ok(false),
        (true, other) => Err(JournalError::TableShape {
            table: table.to_string(),
            differences: format!(
                "its time to live is on attribute `{}`, not `{EXPIRES}`: rekey's records would never expire",
                other.unwrap_or("?")
            ),
        }),
        (false, _) => {
            let spec = TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(EXPIRES)
                .build()
                .expect("a TTL specification has both fields");
            client
                .update_time_to_live()
                .table_name(table)
                .time_to_live_specification(spec)
                .send()
                .await
                .map_err(dynamo_error(table, "turning on the table's time to live"))?;
            Ok(true)
        }
    }
}

async fn ensure_pitr(client: &Client, table: &str) -> Result<bool, JournalError> {
    let out = client
        .describe_continuous_backups()
        .table_name(table)
        .send()
        .await
        .map_err(dynamo_error(table, "reading the table's backups"))?;
    let on = out
        .continuous_backups_description()
        .and_then(|c| c.point_in_time_recovery_description())
        .and_then(|p| p.point_in_time_recovery_status())
        == Some(&PointInTimeRecoveryStatus::Enabled);
    if on {
        return Ok(false);
    }
    let spec = PointInTimeRecoverySpecification::builder()
        .point_in_time_recovery_enabled(true)
        .build()
        .expect("a PITR specification has its flag");
    client
        .update_continuous_backups()
        .table_name(table)
        .point_in_time_recovery_specification(spec)
        .send()
        .await
        .map_err(dynamo_error(table, "turning on point-in-time recovery"))?;
    Ok(true)
}

impl DynamoJournal {
    /// Checks, with one DescribeTable, that the table exists and has a
    /// journal's key; done once when a run opens the journal.
    pub async fn check(&self) -> Result<(), JournalError> {
        match describe(&self.client, &self.table).await? {
            None => Err(JournalError::NoTable {
                table: self.table.clone(),
            }),
            Some(t) => shape(&self.table, &t),
        }
    }
}
