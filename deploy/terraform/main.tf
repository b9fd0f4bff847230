# rekey in AWS Lambda (README, "rekey in AWS Lambda"): one function, fed by
# an EventBridge schedule (the fan-out) and an SQS work queue (the
# workers), also serving as a Secrets Manager rotation function and as an
# AWS Config custom rule. Deploy it in the organization's management
# account (or a delegated administrator of AWS Organizations), and the
# member role (modules/member-role) in every member account.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id

  # Variables cannot refer to path.module in their defaults.
  lambda_zip = coalesce(var.lambda_zip, "${path.module}/../../target/lambda/rekey-lambda/bootstrap.zip")

  function_name  = var.name_prefix
  log_group_name = "/aws/lambda/${var.name_prefix}"
  table_name     = "${var.name_prefix}-journal"

  # The function's environment (src/lambda/settings.rs); optional settings
  # are left out when unset, so rekey.toml's apply.
  environment = merge(
    {
      REKEY_JOURNAL    = "dynamodb:${aws_dynamodb_table.journal.name}"
      REKEY_QUEUE_URL  = aws_sqs_queue.work.url
      REKEY_ROLE       = var.member_role_name
      REKEY_NOTIFY_SNS = aws_sns_topic.notify.arn
    },
    var.config_location == null ? {} : { REKEY_CONFIG = var.config_location },
    var.notify_email_from == null ? {} : { REKEY_NOTIFY_EMAIL_FROM = var.notify_email_from },
    var.notify_webhook == null ? {} : { REKEY_NOTIFY_WEBHOOK = var.notify_webhook },
    length(var.organization_root_or_ous) == 0 ? {} : { REKEY_OUS = join(",", var.organization_root_or_ous) },
  )
}
