output "admin_url_command" {
  description = "Shell command that prints a signed link opening an admin session (run from the repository root, with gcloud application default credentials)."
  value = join(" ", [
    "GOOGLE_CLOUD_PROJECT=${var.project_id}",
    "MAILBRIDGE_INSTANCE=${var.instance}",
    "MAILBRIDGE_PREFIX=${var.prefix}",
    "MAILBRIDGE_FUNCTIONS_URL=${local.functions_url}",
    "MAILBRIDGE_ATTACHMENTS_BUCKET=${google_storage_bucket.attachments.name}",
    "MAILBRIDGE_SIGNING_KEY=\"$(gcloud secrets versions access latest --secret=${google_secret_manager_secret.signing_key.secret_id} --project=${var.project_id})\"",
    "scripts/mailbridge admin-url",
  ])
}

output "attachments_bucket" {
  description = "Cloud Storage bucket holding email attachments."
  value       = google_storage_bucket.attachments.name
}

output "function_urls" {
  description = "URL of each function, by entry point (<functions_url>/<function>)."
  value       = local.function_urls
}

output "functions_url" {
  description = "Base URL of the functions (MAILBRIDGE_FUNCTIONS_URL)."
  value       = local.functions_url
}

output "oauth_redirect_uri" {
  description = "The exact Authorized redirect URI to paste into the OAuth 2.0 client (Web application) in Google Cloud console."
  value       = local.function_urls["oauth_callback"]
}

output "pubsub_topic" {
  description = "Full name of the Gmail push topic (MAILBRIDGE_PUBSUB_TOPIC); empty when enable_push is false."
  value       = local.function_environment["MAILBRIDGE_PUBSUB_TOPIC"]
}

output "scheduler_job" {
  description = "Name of the Cloud Scheduler job that triggers poll."
  value       = google_cloud_scheduler_job.poll.name
}

output "signing_key_secret_id" {
  description = "Secret Manager secret id of the key that signs links and sessions."
  value       = google_secret_manager_secret.signing_key.secret_id
}
