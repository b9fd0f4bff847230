# The notification topic (REKEY_NOTIFY_SNS), which also hears the
# dead-letter queue's alarm and the asynchronous invocations that failed.
#
# It is encrypted with this module's customer managed key, not aws/sns:
# CloudWatch alarms cannot publish to a topic encrypted with the AWS managed
# key, whose key policy cannot grant cloudwatch.amazonaws.com. The same key
# encrypts the journal table, the queues, the log group and the function's
# environment.
# The key policy leaves the function to IAM: the role's runtime policy
# (iam.tf) grants it the key through DynamoDB, SNS, SQS and Lambda.

resource "aws_kms_key" "rekey" {
  description         = "rekey: the journal table, the queues, the notification topic, the log group and the function's environment"
  enable_key_rotation = true

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministersTheKeyThroughIam"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsEncryptsTheLogGroup"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnEquals = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.log_group_name}"
          }
        }
      },
      {
        Sid       = "CloudWatchAlarmsPublishToTheTopic"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
        Condition = {
          StringEquals = { "aws:SourceAccount" = local.account_id }
        }
      },
    ]
  })

  tags = var.tags
}

resource "aws_kms_alias" "rekey" {
  name          = "alias/${var.name_prefix}"
  target_key_id = aws_kms_key.rekey.key_id
}

resource "aws_sns_topic" "notify" {
  name              = "${var.name_prefix}-notify"
  kms_master_key_id = aws_kms_key.rekey.arn
  tags              = var.tags
}
