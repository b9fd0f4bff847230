output "function_arn" {
  description = "The function's ARN (the Config rule's source; a Secrets Manager secret's rotation function)."
  value       = aws_lambda_function.rekey.arn
}

output "function_role_arn" {
  description = "The function's role: the only principal the member role (modules/member-role) trusts."
  value       = aws_iam_role.function.arn
}

output "queue_url" {
  description = "The work queue's URL (REKEY_QUEUE_URL)."
  value       = aws_sqs_queue.work.url
}

output "dead_letter_queue_url" {
  description = "The dead-letter queue's URL: work messages that failed three times."
  value       = aws_sqs_queue.dead_letter.url
}

output "journal_table_name" {
  description = "The DynamoDB journal's table name (REKEY_JOURNAL=dynamodb:NAME)."
  value       = aws_dynamodb_table.journal.name
}

output "notify_topic_arn" {
  description = "The notification topic's ARN (REKEY_NOTIFY_SNS): subscribe to it."
  value       = aws_sns_topic.notify.arn
}

output "config_rule_name" {
  description = "The AWS Config rule's name."
  value       = aws_config_config_rule.access_keys_rotated.name
}
