output "admin_oauth_client_secret_id" {
  description = "Secret Manager secret that holds the admin sign-in OAuth client's secret; add its value with gcloud (terraform/README.md)."
  value       = google_secret_manager_secret.admin_oauth_client_secret.secret_id
}

output "admin_url" {
  description = "The admin pages (Sign in with Google as one of admin_emails or a user of admin_domain)."
  value       = local.function_urls["admin"]
}

output "api_url" {
  description = "The helpdesk's JSON API (README.md, \"JSON API\"): callers in api_callers send an OIDC token whose audience is exactly this URL; its contract is GET /openapi.json."
  value       = local.function_urls["api"]
}

output "attachments_bucket" {
  description = "Cloud Storage bucket holding email attachments."
  value       = google_storage_bucket.attachments.name
}

output "cli_env" {
  description = "Shell export lines that point scripts/mailbridge at this deployment: eval \"$(terraform -chdir=terraform output -raw cli_env)\" (needs gcloud and application default credentials)."
  value = join("\n", [
    "export GOOGLE_CLOUD_PROJECT='${var.project_id}'",
    "export MAILBRIDGE_INSTANCE='${var.instance}'",
    "export MAILBRIDGE_PREFIX='${var.prefix}'",
    "export MAILBRIDGE_FUNCTION_URLS='${jsonencode(local.function_urls)}'",
    "export MAILBRIDGE_ATTACHMENTS_BUCKET='${google_storage_bucket.attachments.name}'",
    "export MAILBRIDGE_PUBSUB_TOPIC='${local.function_environment["MAILBRIDGE_PUBSUB_TOPIC"]}'",
    "export MAILBRIDGE_INVOKER_SERVICE_ACCOUNT='${google_service_account.invoker.email}'",
    "export MAILBRIDGE_EVENTS_TOPIC='${google_pubsub_topic.events.id}'",
    "export MAILBRIDGE_EVENTS_SUBSCRIPTION='${length(var.event_subscribers) > 0 ? google_pubsub_subscription.events_pull[0].id : ""}'",
    "export MAILBRIDGE_REGION='${var.region}'",
    # Read at eval time, never stored by Terraform: the CLI signs connect and admin links with it.
    "export MAILBRIDGE_SIGNING_KEY=\"$(gcloud secrets versions access ${google_secret_manager_secret_version.signing_key.version} --secret=${google_secret_manager_secret.signing_key.secret_id} --project=${var.project_id})\"",
  ])
}

output "event_push_service_account" {
  description = "The account whose OIDC tokens come with ticket events pushed to event_push_endpoint (the helpdesk checks the token's email is this one); empty without an endpoint."
  value       = local.event_push ? google_service_account.event_pusher[0].email : ""
}

output "events_pull_subscription" {
  description = "Full name of the pull subscription the event_subscribers read ticket events from (MAILBRIDGE_EVENTS_SUBSCRIPTION for events tail); empty without subscribers."
  value       = length(var.event_subscribers) > 0 ? google_pubsub_subscription.events_pull[0].id : ""
}

output "events_topic" {
  description = "Full name of the ticket events topic (MAILBRIDGE_EVENTS_TOPIC): CloudEvents, ordering key = ticket id (docs/events.md)."
  value       = google_pubsub_topic.events.id
}

output "function_urls" {
  description = "URL of each function's Cloud Run service, by entry point (MAILBRIDGE_FUNCTION_URLS)."
  value       = local.function_urls
}

output "invoker_service_account" {
  description = "Service account whose OIDC tokens Cloud Scheduler, Pub/Sub push and the fan-out queue send to poll and push (MAILBRIDGE_INVOKER_SERVICE_ACCOUNT)."
  value       = google_service_account.invoker.email
}

output "oauth_redirect_uri" {
  description = "The exact Authorized redirect URI to add to the mailboxes' OAuth client (Google Auth Platform, Clients, Web application)."
  value       = local.function_urls["oauth_callback"]
}

output "pubsub_topic" {
  description = "Full name of the Gmail push topic (MAILBRIDGE_PUBSUB_TOPIC); empty when enable_push is false."
  value       = local.function_environment["MAILBRIDGE_PUBSUB_TOPIC"]
}

output "scheduler_job" {
  description = "Name of the Cloud Scheduler job that triggers poll (run it by hand with gcloud scheduler jobs run)."
  value       = google_cloud_scheduler_job.poll.name
}

output "signing_key_secret_id" {
  description = "Secret Manager secret id of the key that signs links and sessions."
  value       = google_secret_manager_secret.signing_key.secret_id
}
