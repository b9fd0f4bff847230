variable "organization_root_or_ous" {
  description = "The organization's root (r-...) or OUs (ou-...) whose accounts the schedule fans out to, passed as REKEY_OUS (comma-separated). Empty: the whole organization."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.organization_root_or_ous : can(regex("^(r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})$", id))])
    error_message = "Each entry must be a root ID (r-...) or an OU ID (ou-...-...)."
  }
}

variable "schedule" {
  description = "The EventBridge schedule expression of the fan-out (rate(...) or cron(...))."
  type        = string
  default     = "rate(1 day)"

  validation {
    condition     = can(regex("^(rate|cron)\\(.+\\)$", var.schedule))
    error_message = "The schedule must be rate(...) or cron(...)."
  }
}

variable "member_role_name" {
  description = "The role the function assumes in each member account (REKEY_ROLE); deploy it there with modules/member-role."
  type        = string
  default     = "rekey-member"
}

variable "notify_email_from" {
  description = "The SES-verified sender of email notifications (REKEY_NOTIFY_EMAIL_FROM). null: rekey.toml's."
  type        = string
  default     = null
}

variable "notify_webhook" {
  description = "The webhook for notifications, as env:VAR or secretsmanager:NAME, never the URL itself (REKEY_NOTIFY_WEBHOOK). null: rekey.toml's."
  type        = string
  default     = null

  validation {
    condition     = var.notify_webhook == null || can(regex("^(secretsmanager:.+|env:[A-Za-z_][A-Za-z0-9_]*)$", var.notify_webhook))
    error_message = "notify_webhook must be secretsmanager:NAME or env:VAR."
  }
}

variable "config_location" {
  description = "Where the function reads rekey.toml (REKEY_CONFIG): a path in the package, s3://BUCKET/KEY or ssm:/PATH. null: rekey's defaults."
  type        = string
  default     = null

  validation {
    condition     = var.config_location == null || can(regex("^(s3://[^/]+/.+|ssm:/.+|[^:]+)$", var.config_location))
    error_message = "config_location must be a path, s3://BUCKET/KEY or ssm:/PATH."
  }
}

variable "secrets_prefix" {
  description = "The prefix of the Secrets Manager secrets (names) the function may rotate."
  type        = string
  default     = "rekey/"
}

variable "log_retention_days" {
  description = "How many days the function's log group keeps its logs (a value CloudWatch Logs accepts)."
  type        = number
  default     = 90

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of CloudWatch Logs' retention values (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)."
  }
}

variable "lambda_zip" {
  description = "The path of the function's zip (scripts/build-lambda's output). null: target/lambda/rekey-lambda/bootstrap.zip in this repository."
  type        = string
  default     = null
}

variable "name_prefix" {
  description = "The name of the function and the prefix of every other resource's name."
  type        = string
  default     = "rekey"
}

variable "reserved_concurrency" {
  description = "The function's reserved concurrency: how many accounts (queue messages) are worked on at once, at most."
  type        = number
  default     = 10

  validation {
    condition     = var.reserved_concurrency >= 3
    error_message = "reserved_concurrency must be at least 3: the queue's workers get two less, and at least 2."
  }
}

variable "max_access_key_age" {
  description = "The AWS Config rule's maxAccessKeyAge, in days: an active key older than this is NON_COMPLIANT."
  type        = number
  default     = 90
}

variable "tags" {
  description = "Tags for every resource that takes them."
  type        = map(string)
  default     = {}
}
