variable "rekey_function_role_arn" {
  description = "The rekey function's role (the root module's function_role_arn): the only principal this role trusts."
  type        = string

  validation {
    condition     = can(regex("^arn:[a-z-]+:iam::[0-9]{12}:role/.+$", var.rekey_function_role_arn))
    error_message = "rekey_function_role_arn must be an IAM role's ARN."
  }
}

variable "organization_id" {
  description = "The organization's ID (o-...): the trust holds only for a caller in it (aws:PrincipalOrgID)."
  type        = string

  validation {
    condition     = can(regex("^o-[a-z0-9]{10,32}$", var.organization_id))
    error_message = "organization_id must be an organization ID (o-...)."
  }
}

variable "member_role_name" {
  description = "The role's name: the root module's member_role_name (REKEY_ROLE)."
  type        = string
  default     = "rekey-member"
}

variable "tags" {
  description = "Tags for the role."
  type        = map(string)
  default     = {}
}
