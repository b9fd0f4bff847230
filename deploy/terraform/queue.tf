# The work queue: the schedule sends one message per account. Its
# visibility timeout is six times the function's timeout (900 s), as AWS
# advises for a Lambda event source; a message that fails three times goes
# to the dead-letter queue (an account whose role cannot be assumed ends
# there), and the alarm says so.

resource "aws_sqs_queue" "dead_letter" {
  name                      = "${var.name_prefix}-work-dlq"
  message_retention_seconds = 1209600 # 14 days
  kms_master_key_id         = aws_kms_key.rekey.arn
  tags                      = var.tags
}

resource "aws_sqs_queue" "work" {
  name                       = "${var.name_prefix}-work"
  visibility_timeout_seconds = 5400
  kms_master_key_id          = aws_kms_key.rekey.arn

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter.arn
    maxReceiveCount     = 3
  })

  tags = var.tags
}

resource "aws_sqs_queue_redrive_allow_policy" "dead_letter" {
  queue_url = aws_sqs_queue.dead_letter.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.work.arn]
  })
}

resource "aws_cloudwatch_metric_alarm" "dead_letter" {
  alarm_name          = "${var.name_prefix}-work-dlq-not-empty"
  alarm_description   = "rekey: a work message failed three times and is in ${aws_sqs_queue.dead_letter.name} (an account whose role cannot be assumed, say)"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dead_letter.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.notify.arn]
  ok_actions          = [aws_sns_topic.notify.arn]
  tags                = var.tags
}
