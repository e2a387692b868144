# Gmail push: users.watch publishes {emailAddress, historyId} to the topic; the push
# subscription delivers it to the push function with an OIDC token. Polling stays the safety
# net, so undeliverable notifications go to a dead-letter topic instead of retrying forever.

locals {
  pubsub_service_agent = "serviceAccount:service-${local.project_number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  push_subscription    = var.enable_push && var.use_incoming_service
}

resource "google_pubsub_topic" "gmail_push" {
  #checkov:skip=CKV_GCP_83:Notifications carry only a mailbox address and a history id (no mail content); Google-managed encryption is enough and a KMS key would only add cost and key management.
  count = var.enable_push ? 1 : 0

  project = var.project_id
  name    = local.pubsub_topic_name
  # A notification older than a day is useless: the next poll has caught up by then.
  message_retention_duration = "86400s"

  labels = {
    app = "mailbridge"
  }

  depends_on = [google_project_service.service]
}

# Gmail publishes as this Google-owned account; it needs nothing else.
resource "google_pubsub_topic_iam_member" "gmail_publisher" {
  count = var.enable_push ? 1 : 0

  project = var.project_id
  topic   = google_pubsub_topic.gmail_push[0].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:gmail-api-push@system.gserviceaccount.com"
}

resource "google_pubsub_topic" "gmail_push_dead_letter" {
  #checkov:skip=CKV_GCP_83:Holds only undeliverable Gmail notifications (address and history id); Google-managed encryption is enough.
  count = var.enable_push ? 1 : 0

  project = var.project_id
  name    = "${local.pubsub_topic_name}-dead-letter"

  labels = {
    app = "mailbridge"
  }

  depends_on = [google_project_service.service]
}

# Keeps dead-lettered notifications for a week so they can be inspected.
resource "google_pubsub_subscription" "gmail_push_dead_letter" {
  count = var.enable_push ? 1 : 0

  project                    = var.project_id
  name                       = "${local.pubsub_topic_name}-dead-letter"
  topic                      = google_pubsub_topic.gmail_push_dead_letter[0].id
  message_retention_duration = "604800s"
  ack_deadline_seconds       = 60

  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_subscription" "gmail_push" {
  count = local.push_subscription ? 1 : 0

  project = var.project_id
  name    = "${local.pubsub_topic_name}-to-push"
  topic   = google_pubsub_topic.gmail_push[0].id
  # The push function acknowledges by answering; give it its whole timeout.
  ack_deadline_seconds       = var.function_timeout_seconds
  message_retention_duration = "86400s"

  push_config {
    push_endpoint = google_cloudfunctions2_function.push.service_config[0].uri

    oidc_token {
      service_account_email = google_service_account.push_invoker.email
      audience              = google_cloudfunctions2_function.push.service_config[0].uri
    }
  }

  # Transient failures (5xx) are redelivered with backoff; after max_delivery_attempts the
  # notification is dead-lettered and the next poll picks the mail up.
  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.gmail_push_dead_letter[0].id
    max_delivery_attempts = 5
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [
    google_cloud_run_service_iam_member.push_invoker_invokes_push,
    google_pubsub_topic_iam_member.dead_letter_publisher,
  ]
}

# The Pub/Sub service agent mints the OIDC tokens (needed in projects created before
# April 2021) and moves undeliverable messages to the dead-letter topic.
resource "google_service_account_iam_member" "pubsub_mints_push_tokens" {
  count = local.push_subscription ? 1 : 0

  service_account_id = google_service_account.push_invoker.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
}

resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  count = var.enable_push ? 1 : 0

  project = var.project_id
  topic   = google_pubsub_topic.gmail_push_dead_letter[0].name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  count = local.push_subscription ? 1 : 0

  project      = var.project_id
  subscription = google_pubsub_subscription.gmail_push[0].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}
