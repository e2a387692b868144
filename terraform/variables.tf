# Alphabetical. Every variable has a description and a type; constrained values are validated.

variable "admin_domain" {
  description = "Google Workspace domain whose users may sign in to the admin pages with Google (MAILBRIDGE_ADMIN_DOMAIN), for example example.com. Empty: only admin_emails may."
  type        = string
  default     = ""

  validation {
    condition     = var.admin_domain == "" || can(regex("^([a-z0-9-]+\\.)+[a-z]{2,}$", var.admin_domain))
    error_message = "admin_domain must be empty or a lower-case domain name such as example.com."
  }
}

variable "admin_emails" {
  description = "Google accounts that may sign in to the admin pages (MAILBRIDGE_ADMIN_EMAILS, comma-joined)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for email in var.admin_emails : can(regex("^[^@\\s,]+@[^@\\s,]+\\.[a-z]{2,}$", email))])
    error_message = "admin_emails must be plain e-mail addresses such as admin@example.com."
  }
}

variable "admin_oauth_client_id" {
  description = "Client id of the OAuth web client the admin pages use for Sign in with Google (the whole id, ending .apps.googleusercontent.com). Its secret is added to Secret Manager with gcloud, never through Terraform (terraform/README.md)."
  type        = string
  default     = ""

  validation {
    condition     = var.admin_oauth_client_id == "" || endswith(var.admin_oauth_client_id, ".apps.googleusercontent.com")
    error_message = "admin_oauth_client_id must be the whole client id, ending in .apps.googleusercontent.com."
  }
}

variable "alert_email" {
  description = "E-mail address that receives the alerts (creates an e-mail notification channel). Empty: only notification_channels are used."
  type        = string
  default     = ""

  validation {
    condition     = var.alert_email == "" || can(regex("^[^@\\s,]+@[^@\\s,]+\\.[a-z]{2,}$", var.alert_email))
    error_message = "alert_email must be empty or one e-mail address."
  }
}

variable "api_callers" {
  description = "Service account emails (a helpdesk's, a script's) that may call the api function with an OIDC token: each gets roles/run.invoker on that service only, and the code accepts their tokens only (MAILBRIDGE_API_CALLERS). Default: nobody."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for email in var.api_callers : can(regex("^[a-z0-9][a-z0-9._-]*@[a-z0-9-]+(\\.[a-z0-9-]+)*\\.gserviceaccount\\.com$", email))])
    error_message = "api_callers must be service account emails such as helpdesk@PROJECT.iam.gserviceaccount.com (no serviceAccount: prefix)."
  }
}

variable "attachment_retention_days" {
  description = "Days an email attachment is kept in the attachments bucket before Cloud Storage deletes it."
  type        = number
  default     = 365

  validation {
    condition     = var.attachment_retention_days >= 1 && var.attachment_retention_days == floor(var.attachment_retention_days)
    error_message = "attachment_retention_days must be a whole number of days, at least 1."
  }
}

variable "audit_log_retention_days" {
  description = "Days the audit log bucket keeps the admin actions' log lines (terraform/audit.tf); the Firestore copy is kept by the audit.retention_days setting."
  type        = number
  default     = 400

  validation {
    condition     = var.audit_log_retention_days >= 1 && var.audit_log_retention_days <= 3650 && var.audit_log_retention_days == floor(var.audit_log_retention_days)
    error_message = "audit_log_retention_days must be a whole number of days from 1 to 3650."
  }
}

variable "create_firestore_database" {
  description = "Create the Firestore (default) database in Native mode. Set to false when the project already has one (it must be in Native mode)."
  type        = bool
  default     = true
}

variable "enable_push" {
  description = "Gmail push (Pub/Sub topic with Gmail's publisher grant, push subscription to push, dead-letter topic). Under domain-restricted sharing the publisher grant needs an organisation policy exception (terraform/README.md); with push off, polling alone runs every minute."
  type        = bool
  default     = true
}

variable "event_push_endpoint" {
  description = "HTTPS URL of a helpdesk endpoint that receives every ticket event (a CloudEvent as the request body) with an OIDC token of the <prefix>-events-push account whose audience is this URL; retried with backoff, dead-lettered after 20 attempts (README.md, \"Ticket events\"). Empty: no push subscription."
  type        = string
  default     = ""

  validation {
    condition     = var.event_push_endpoint == "" || can(regex("^https://[^\\s/]+(/\\S*)?$", var.event_push_endpoint))
    error_message = "event_push_endpoint must be an https:// URL (or empty)."
  }
}

variable "event_subscribers" {
  description = "Service account emails (a helpdesk's workers, a script) that may pull ticket events from the <prefix>-events-pull subscription (with message ordering): each gets roles/pubsub.subscriber on it. Empty: no pull subscription."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for email in var.event_subscribers : can(regex("^[a-z0-9][a-z0-9._-]*@[a-z0-9-]+(\\.[a-z0-9-]+)*\\.gserviceaccount\\.com$", email))])
    error_message = "event_subscribers must be service account emails such as helpdesk@PROJECT.iam.gserviceaccount.com (no serviceAccount: prefix)."
  }
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
  description = "Memory of each function except poll and push, in Cloud Run notation (for example 512Mi or 1Gi)."
  type        = string
  default     = "512Mi"

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.function_memory))
    error_message = "function_memory must look like 512Mi or 1Gi."
  }
}

variable "function_timeout_seconds" {
  description = "Request timeout in seconds of the browser-facing functions (admin, oauth_start, oauth_callback) and of labels."
  type        = number
  default     = 60

  validation {
    condition     = var.function_timeout_seconds >= 10 && var.function_timeout_seconds <= 3600 && var.function_timeout_seconds == floor(var.function_timeout_seconds)
    error_message = "function_timeout_seconds must be a whole number from 10 to 3600."
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

variable "labels_invokers" {
  description = "Principals (for example serviceAccount:automation@PROJECT.iam.gserviceaccount.com) that may call the internal-only labels function over HTTP with an identity token. Default: nobody; the admin pages and the CLI run the same code in-process."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for member in var.labels_invokers : !contains(["allUsers", "allAuthenticatedUsers"], member) && can(regex("^(serviceAccount|user|group|domain):", member))])
    error_message = "labels_invokers must name principals (serviceAccount:, user:, group:, domain:), never allUsers or allAuthenticatedUsers."
  }
}

variable "notification_channels" {
  description = "Ids of existing Cloud Monitoring notification channels (projects/PROJECT/notificationChannels/ID) that receive every alert."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for channel in var.notification_channels : can(regex("^projects/[^/]+/notificationChannels/[^/]+$", channel))])
    error_message = "notification_channels must be full channel names: projects/PROJECT/notificationChannels/ID."
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
  description = "Memory of poll and push, which parse mail: about 12 x the largest message plus 100 MiB; 1Gi covers Gmail's 50 MB limit. Cloud Run notation (for example 512Mi or 2Gi)."
  type        = string
  default     = "1Gi"

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.poll_memory))
    error_message = "poll_memory must look like 512Mi or 1Gi."
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
  description = "Prefix of every resource name (services, service accounts, buckets, secrets, topics, roles, metrics). Two deployments with different prefixes live side by side in one project. The code creates its per-credential-set secrets under it too."
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

variable "push_latency_alert_seconds" {
  description = "Alert when the 95th percentile of Gmail push latency (Gmail's publish time to the push function's answer) stays above this many seconds for 10 minutes."
  type        = number
  default     = 60

  validation {
    condition     = var.push_latency_alert_seconds > 0
    error_message = "push_latency_alert_seconds must be positive."
  }
}

variable "push_timeout_seconds" {
  description = "Request timeout of the push function in seconds; also the acknowledgement deadline of the push subscription (Pub/Sub allows 10-600). The code stops starting new work 15 seconds before it."
  type        = number
  default     = 60

  validation {
    condition     = var.push_timeout_seconds >= 30 && var.push_timeout_seconds <= 600 && var.push_timeout_seconds == floor(var.push_timeout_seconds)
    error_message = "push_timeout_seconds must be a whole number from 30 to 600 (600 is Pub/Sub's acknowledgement deadline limit)."
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
  description = "Cron schedule of the poll (Cloud Scheduler syntax). Empty: every 5 minutes with Gmail push (the poll is the safety net), every minute without it."
  type        = string
  default     = ""

  validation {
    condition     = var.schedule == "" || length(split(" ", trimspace(var.schedule))) == 5
    error_message = "schedule must be empty or a five-field cron expression such as \"* * * * *\"."
  }
}

variable "signing_key_version" {
  description = "Generation of the signing key for links and sessions. Raise it by one to rotate the key: a new random key is written (write-only, never in the state) and the functions move to it; open links and sessions stop working."
  type        = number
  default     = 1

  validation {
    condition     = var.signing_key_version >= 1 && var.signing_key_version == floor(var.signing_key_version)
    error_message = "signing_key_version must be a whole number, at least 1."
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
