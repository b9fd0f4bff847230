# The role rekey's function assumes in a member account. Apply it in every
# member account (a provider per account, or see examples/organization for
# a stack set). Its policy is `rekey policy iam`'s for a member, generated
# into policies/member.json.tftpl.

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

resource "aws_iam_role" "member" {
  name        = var.member_role_name
  description = "Assumed by rekey's Lambda function to audit and rotate this account's IAM access keys"

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { AWS = var.rekey_function_role_arn }
      Action    = "sts:AssumeRole"
      Condition = {
        StringEquals = { "aws:PrincipalOrgID" = var.organization_id }
      }
    }]
  })

  tags = var.tags
}

resource "aws_iam_role_policy" "member" {
  name = "rekey"
  role = aws_iam_role.member.id

  policy = templatefile("${path.module}/policies/member.json.tftpl", {
    partition  = data.aws_partition.current.partition
    account_id = data.aws_caller_identity.current.account_id
    region     = data.aws_region.current.name
  })
}
