# The AWS Config custom rule: the function judges each IAM user as
# `rekey audit --view config` does. The account needs an AWS Config
# configuration recorder that records AWS::IAM::User.

resource "aws_lambda_permission" "config" {
  statement_id   = "AllowConfigRule"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.rekey.function_name
  principal      = "config.amazonaws.com"
  source_account = local.account_id
}

resource "aws_config_config_rule" "access_keys_rotated" {
  name        = "${var.name_prefix}-access-keys-rotated"
  description = "rekey: an IAM user's active access key is no older than maxAccessKeyAge days"

  source {
    owner             = "CUSTOM_LAMBDA"
    source_identifier = aws_lambda_function.rekey.arn

    source_detail {
      message_type = "ConfigurationItemChangeNotification"
    }

    source_detail {
      message_type = "OversizedConfigurationItemChangeNotification"
    }

    source_detail {
      message_type                = "ScheduledNotification"
      maximum_execution_frequency = "TwentyFour_Hours"
    }
  }

  scope {
    compliance_resource_types = ["AWS::IAM::User"]
  }

  input_parameters = jsonencode({ maxAccessKeyAge = tostring(var.max_access_key_age) })

  tags = var.tags

  depends_on = [aws_lambda_permission.config]
}
