# The function's role. Its policy is `rekey policy iam`'s, generated into
# policies/lambda.json.tftpl; the runtime policy beside it is what running
# as a Lambda function needs (logs, X-Ray, the dead-letter topic, the
# module's KMS key through DynamoDB, SNS, SQS and Lambda).

resource "aws_iam_role" "function" {
  name        = "${var.name_prefix}-function"
  description = "rekey's Lambda function"

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = {
        StringEquals = { "aws:SourceAccount" = local.account_id }
      }
    }]
  })

  tags = var.tags
}

resource "aws_iam_role_policy" "function" {
  name = "rekey"
  role = aws_iam_role.function.id

  policy = templatefile("${path.module}/policies/lambda.json.tftpl", {
    partition      = local.partition
    account_id     = local.account_id
    region         = local.region
    table          = local.table_name
    queue_arn      = aws_sqs_queue.work.arn
    topic_arn      = aws_sns_topic.notify.arn
    member_role    = var.member_role_name
    secrets_prefix = var.secrets_prefix
  })
}

resource "aws_iam_role_policy" "runtime" {
  name = "lambda-runtime"
  role = aws_iam_role.function.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "Logs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.log_group_name}:*"
      },
      {
        Sid      = "Tracing"
        Effect   = "Allow"
        Action   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
        Resource = "*"
      },
      {
        Sid      = "DeadLetterTopic"
        Effect   = "Allow"
        Action   = "sns:Publish"
        Resource = aws_sns_topic.notify.arn
      },
      {
        Sid      = "ModuleKeyThroughItsServices"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*", "kms:DescribeKey"]
        Resource = aws_kms_key.rekey.arn
        Condition = {
          StringEquals = {
            "kms:ViaService" = [
              "dynamodb.${local.region}.amazonaws.com",
              "sns.${local.region}.amazonaws.com",
              "sqs.${local.region}.amazonaws.com",
              "lambda.${local.region}.amazonaws.com",
            ]
          }
        }
      },
    ]
  })
}
