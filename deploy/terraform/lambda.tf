resource "aws_cloudwatch_log_group" "function" {
  #checkov:skip=CKV_AWS_338:Retention is the log_retention_days variable (90 days by default, as in the SAM template); the DynamoDB journal, not the logs, is rekey's lasting record of rotations.
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.rekey.arn
  tags              = var.tags
}

resource "aws_lambda_function" "rekey" {
  #checkov:skip=CKV_AWS_117:The function calls AWS APIs (Organizations, STS, IAM, SQS, DynamoDB, SNS, Secrets Manager) in every account of the organization and has no private resource to reach; a VPC would only add NAT or endpoints.
  #checkov:skip=CKV_AWS_272:The zip is built by scripts/build-lambda (cargo lambda), not by a signing pipeline; there is no AWS Signer profile to check it against.
  function_name    = local.function_name
  description      = "rekey: audits and rotates the organization's IAM access keys"
  role             = aws_iam_role.function.arn
  filename         = local.lambda_zip
  source_code_hash = filebase64sha256(local.lambda_zip)
  handler          = "bootstrap"
  runtime          = "provided.al2023"
  architectures    = ["arm64"]
  timeout          = 900
  memory_size      = 512
  kms_key_arn      = aws_kms_key.rekey.arn

  reserved_concurrent_executions = var.reserved_concurrency

  environment {
    variables = local.environment
  }

  tracing_config {
    mode = "Active"
  }

  # An asynchronous invocation (the schedule, AWS Config) that still fails
  # after Lambda's retries is published to the notification topic.
  dead_letter_config {
    target_arn = aws_sns_topic.notify.arn
  }

  tags = var.tags

  depends_on = [
    aws_cloudwatch_log_group.function,
    aws_iam_role_policy.function,
    aws_iam_role_policy.runtime,
  ]
}

# The fan-out.
resource "aws_cloudwatch_event_rule" "schedule" {
  name                = "${var.name_prefix}-schedule"
  description         = "rekey's fan-out: one work message per account"
  schedule_expression = var.schedule
  tags                = var.tags
}

resource "aws_cloudwatch_event_target" "schedule" {
  rule = aws_cloudwatch_event_rule.schedule.name
  arn  = aws_lambda_function.rekey.arn
}

resource "aws_lambda_permission" "schedule" {
  statement_id  = "AllowEventBridgeSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.rekey.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.schedule.arn
}

# The workers: one account per message; only the failed messages return.
resource "aws_lambda_event_source_mapping" "work" {
  event_source_arn        = aws_sqs_queue.work.arn
  function_name           = aws_lambda_function.rekey.arn
  batch_size              = 1
  function_response_types = ["ReportBatchItemFailures"]

  # Below the reserved concurrency, so that the schedule, AWS Config and
  # Secrets Manager always find room and throttling never sends a message
  # back (towards the dead-letter queue) for want of a slot.
  scaling_config {
    maximum_concurrency = max(2, var.reserved_concurrency - 2)
  }
}

# The Secrets Manager rotation function.
resource "aws_lambda_permission" "secrets_manager" {
  statement_id   = "AllowSecretsManagerRotation"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.rekey.function_name
  principal      = "secretsmanager.amazonaws.com"
  source_account = local.account_id
}
