# rekey for an AWS organization: the function and its resources in the
# management account (or a delegated administrator of AWS Organizations),
# and the member role in a member account.
#
#   cd deploy/terraform/examples/organization
#   terraform init
#   terraform apply -var member_account_id=222222222222
#
# Build the function's zip first (scripts/build-lambda).
#
# The member role goes to every member account the function works on. For
# a few accounts, repeat the provider alias and the module "member_role"
# block once per account (the role OrganizationAccountAccessRole is there
# in accounts that AWS Organizations created). For many accounts, or for
# accounts still to come, deploy the role with a service-managed
# aws_cloudformation_stack_set (permission_model = "SERVICE_MANAGED",
# auto_deployment { enabled = true }) and an
# aws_cloudformation_stack_set_instance targeting the organization's root
# or OUs, with a template holding the same role (the SAM template in
# deploy/sam deploys it that way).

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

variable "region" {
  description = "The region of rekey's function, queue, table and topic."
  type        = string
  default     = "us-east-1"
}

variable "member_account_id" {
  description = "A member account to deploy the member role in (through its OrganizationAccountAccessRole)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.member_account_id))
    error_message = "member_account_id must be a 12-digit account ID."
  }
}

variable "partition" {
  description = "The AWS partition (aws, aws-us-gov, aws-cn) of the member role's ARN."
  type        = string
  default     = "aws"
}

variable "organization_root_or_ous" {
  description = "The root or OUs whose accounts rekey works on; empty: the whole organization."
  type        = list(string)
  default     = []
}

# The management account (or the delegated administrator).
provider "aws" {
  region = var.region
}

# A member account, through the role AWS Organizations made there.
provider "aws" {
  alias  = "member"
  region = var.region

  assume_role {
    role_arn     = "arn:${var.partition}:iam::${var.member_account_id}:role/OrganizationAccountAccessRole"
    session_name = "rekey-deploy"
  }
}

data "aws_organizations_organization" "current" {}

locals {
  member_role_name = "rekey-member"
}

module "rekey" {
  source = "../.."

  organization_root_or_ous = var.organization_root_or_ous
  member_role_name         = local.member_role_name
  tags                     = { "app" = "rekey" }
}

module "member_role" {
  source = "../../modules/member-role"

  providers = {
    aws = aws.member
  }

  rekey_function_role_arn = module.rekey.function_role_arn
  organization_id         = data.aws_organizations_organization.current.id
  member_role_name        = local.member_role_name
  tags                    = { "app" = "rekey" }
}

output "function_arn" {
  description = "rekey's function."
  value       = module.rekey.function_arn
}

output "notify_topic_arn" {
  description = "Subscribe to this topic for rekey's notifications."
  value       = module.rekey.notify_topic_arn
}

output "member_role_arn" {
  description = "The member role in var.member_account_id."
  value       = module.member_role.member_role_arn
}
