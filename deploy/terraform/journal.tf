# The journal (REKEY_JOURNAL=dynamodb:TABLE): leases and the record of every
# rotation. Deletion protection keeps it through a destroy: delete it by
# hand, on purpose.

resource "aws_dynamodb_table" "journal" {
  name                        = local.table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = true

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  ttl {
    attribute_name = "expires"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.rekey.arn
  }

  tags = var.tags
}
