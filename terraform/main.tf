# Shared names and values. Every name derives from var.prefix; nothing is random.

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  project_number = data.google_project.this.number

  # The code builds every link as "<functions_url>/<function>", the shape of 2nd gen function
  # URLs. So functions are named exactly after their entry points, which allows one mailbridge
  # deployment per project and region (put UAT in its own project or region).
  functions_url = "https://${var.region}-${var.project_id}.cloudfunctions.net"
  function_names = toset([
    "admin",
    "labels",
    "oauth_callback",
    "oauth_start",
    "poll",
    "push",
  ])
  function_urls = { for name in local.function_names : name => "${local.functions_url}/${name}" }

  # Secrets the code creates at run time for each credential set (client secret, refresh token).
  # Secret Manager IAM conditions see the name with the project number, not the id.
  credential_secret_prefix = "${var.prefix}-cred-"
  credential_secret_condition = {
    title       = "${var.prefix} credential secrets only"
    description = "Only secrets whose name starts with ${local.credential_secret_prefix} (created by mailbridge at run time)."
    expression  = "resource.name.startsWith(\"projects/${local.project_number}/secrets/${local.credential_secret_prefix}\")"
  }

  pubsub_topic_name = "${var.prefix}-gmail-push"

  # Environment shared by every function (read only by functions/mailbridge/config.py).
  function_environment = {
    GOOGLE_CLOUD_PROJECT          = var.project_id
    MAILBRIDGE_ATTACHMENTS_BUCKET = google_storage_bucket.attachments.name
    MAILBRIDGE_FUNCTIONS_URL      = local.functions_url
    MAILBRIDGE_INSTANCE           = var.instance
    MAILBRIDGE_PREFIX             = var.prefix
    MAILBRIDGE_PUBSUB_TOPIC       = var.enable_push ? google_pubsub_topic.gmail_push[0].id : ""
  }
}
