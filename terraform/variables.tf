# Alphabetical. Every variable has a description and a type; constrained values are validated.

variable "attachment_retention_days" {
  description = "Days an email attachment is kept in the attachments bucket before Cloud Storage deletes it."
  type        = number
  default     = 365

  validation {
    condition     = var.attachment_retention_days >= 1 && var.attachment_retention_days == floor(var.attachment_retention_days)
    error_message = "attachment_retention_days must be a whole number of days, at least 1."
  }
}

variable "create_firestore_database" {
  description = "Create the Firestore (default) database in Native mode. Set to false when the project already has one (it must be in Native mode)."
  type        = bool
  default     = true
}

variable "enable_push" {
  description = "Provision Gmail push (Pub/Sub topic, push subscription to the push function, dead-letter topic). Polling keeps running as a safety net either way."
  type        = bool
  default     = true
}

variable "firestore_location" {
  description = "Firestore location id (for example eur3, nam5 or a region). Empty means the same as region."
  type        = string
  default     = ""

  validation {
    condition     = var.firestore_location == "" || can(regex("^[a-z][a-z0-9-]+[0-9]$", var.firestore_location))
    error_message = "firestore_location must be empty or a location id such as eur3, nam5 or europe-west1."
  }
}

variable "function_max_instances" {
  description = "Maximum number of instances of each function except poll."
  type        = number
  default     = 10

  validation {
    condition     = var.function_max_instances >= 1 && var.function_max_instances <= 1000 && var.function_max_instances == floor(var.function_max_instances)
    error_message = "function_max_instances must be a whole number from 1 to 1000."
  }
}

variable "function_memory" {
  description = "Memory of each function except poll and push, in Cloud Functions notation (for example 256M or 1Gi)."
  type        = string
  default     = "256M"

  validation {
    condition     = can(regex("^[0-9]+(M|Mi|G|Gi)$", var.function_memory))
    error_message = "function_memory must look like 256M, 512Mi, 1G or 1Gi."
  }
}

variable "function_timeout_seconds" {
  description = "Request timeout of each function except poll, in seconds. Also the acknowledgement deadline of the Pub/Sub push subscription."
  type        = number
  default     = 60

  validation {
    condition     = var.function_timeout_seconds >= 10 && var.function_timeout_seconds <= 600 && var.function_timeout_seconds == floor(var.function_timeout_seconds)
    error_message = "function_timeout_seconds must be a whole number from 10 to 600 (600 is the Pub/Sub acknowledgement limit)."
  }
}

variable "instance" {
  description = "Which credential set this deployment uses: production, uat, dev, or a custom name. A deployment only touches mailboxes that have a credential set for its instance."
  type        = string
  default     = "production"

  validation {
    condition     = contains(["production", "uat", "dev"], var.instance) || can(regex("^[a-z][a-z0-9_-]{0,29}$", var.instance))
    error_message = "instance must be production, uat, dev, or a custom name of lower-case letters, digits, '-' or '_' (1-30 characters, starting with a letter)."
  }
}

variable "poll_max_instances" {
  description = "Maximum number of poll instances. Overlapping polls are safe (each mailbox is leased), so this only caps concurrency."
  type        = number
  default     = 10

  validation {
    condition     = var.poll_max_instances >= 1 && var.poll_max_instances <= 1000 && var.poll_max_instances == floor(var.poll_max_instances)
    error_message = "poll_max_instances must be a whole number from 1 to 1000."
  }
}

variable "poll_memory" {
  description = "Memory of poll and push, which parse mail: about 12 x the largest message plus 100 MiB; 1Gi covers Gmail's 50 MB limit. Cloud Functions notation (for example 512M or 1Gi)."
  type        = string
  default     = "1Gi"

  validation {
    condition     = can(regex("^[0-9]+(M|Mi|G|Gi)$", var.poll_memory))
    error_message = "poll_memory must look like 256M, 512Mi, 1G or 1Gi."
  }
}

variable "poll_timeout_seconds" {
  description = "Request timeout of the poll function in seconds; long enough to work through a backlog. The code stops starting new work 60 seconds before it."
  type        = number
  default     = 540

  validation {
    condition     = var.poll_timeout_seconds >= 120 && var.poll_timeout_seconds <= 1800 && var.poll_timeout_seconds == floor(var.poll_timeout_seconds)
    error_message = "poll_timeout_seconds must be a whole number from 120 to 1800 (Cloud Scheduler's attempt deadline limit)."
  }
}

variable "prefix" {
  description = "Prefix of every resource name (service accounts, buckets, secrets, topics). The code creates its per-credential-set secrets under it too."
  type        = string
  default     = "mailbridge"

  validation {
    # Service account ids are at most 30 characters: prefix + "-oauth-callback" must fit.
    condition     = can(regex("^[a-z][a-z0-9-]{0,13}[a-z0-9]$", var.prefix))
    error_message = "prefix must be 2-15 characters: lower-case letters, digits and '-', starting with a letter and not ending with '-'."
  }
}

variable "project_id" {
  description = "Id of the Google Cloud project to deploy into."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project id: 6-30 characters, lower-case letters, digits and '-', starting with a letter."
  }
}

variable "region" {
  description = "Region of the functions, the scheduler job and the buckets (for example europe-west1)."
  type        = string
  default     = "europe-west1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as europe-west1 or us-central1."
  }
}

variable "schedule" {
  description = "Cron schedule of the poll (Cloud Scheduler syntax). Default: every minute."
  type        = string
  default     = "* * * * *"

  validation {
    condition     = length(split(" ", trimspace(var.schedule))) == 5
    error_message = "schedule must be a five-field cron expression such as \"* * * * *\"."
  }
}

variable "time_zone" {
  description = "IANA time zone of the poll schedule."
  type        = string
  default     = "Etc/UTC"

  validation {
    condition     = can(regex("^[A-Za-z_]+(/[A-Za-z0-9_+-]+)*$", var.time_zone))
    error_message = "time_zone must be an IANA time zone name such as Etc/UTC or Europe/Berlin."
  }
}

variable "use_incoming_service" {
  description = "Infrastructure switch for incoming mail: false removes the Gmail push subscription. The backend setting of the same name (scripts/mailbridge settings set) stops ingestion without a redeploy."
  type        = bool
  default     = true
}

variable "use_scheduling_service" {
  description = "Infrastructure switch for scheduled polling: false pauses the Cloud Scheduler job. The backend setting of the same name stops scheduled polling without a redeploy."
  type        = bool
  default     = true
}
