# Gmail push (var.enable_push): users.watch publishes {emailAddress, historyId} to the topic; the
# push subscription delivers it to the push service with an OIDC token of the invoker account.
# Polling stays the safety net, so undeliverable notifications go to a dead-letter topic instead
# of retrying forever.
#
# Gmail publishes as gmail-api-push@system.gserviceaccount.com, a Google account outside your
# Workspace domain: under domain-restricted sharing (iam.allowedPolicyMemberDomains) the grant
# below is refused until the organisation allows it for this project (terraform/README.md,
# "Organisation policies"). Without that exception, set enable_push = false.

locals {
  pubsub_service_agent = "serviceAccount:${google_project_service_identity.pubsub.email}"
  push_subscription    = local.push_enabled && var.use_incoming_service
}

resource "google_pubsub_topic" "gmail_push" {
  #checkov:skip=CKV_GCP_83:Notifications carry only a mailbox address and a history id (no mail content); Google-managed encryption is enough and a KMS key would only add cost and key management.
  count = local.push_enabled ? 1 : 0

  project = var.project_id
  name    = local.pubsub_topic_name
  labels  = local.labels
  # A notification older than a day is useless: the next poll has caught up by then.
  message_retention_duration = "86400s"

  depends_on = [time_sleep.apis_propagate]
}

# Gmail publishes as this Google-owned account; it needs nothing else.
resource "google_pubsub_topic_iam_member" "gmail_publisher" {
  count = local.push_enabled ? 1 : 0

  project = var.project_id
  topic   = google_pubsub_topic.gmail_push[0].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:gmail-api-push@system.gserviceaccount.com"
}

resource "google_pubsub_topic" "gmail_push_dead_letter" {
  #checkov:skip=CKV_GCP_83:Holds only undeliverable Gmail notifications (address and history id); Google-managed encryption is enough.
  count = local.push_enabled ? 1 : 0

  project = var.project_id
  name    = "${local.pubsub_topic_name}-dead-letter"
  labels  = local.labels

  depends_on = [time_sleep.apis_propagate]
}

# Keeps dead-lettered notifications for a week so they can be inspected; its backlog is alerted
# on (monitoring.tf).
resource "google_pubsub_subscription" "gmail_push_dead_letter" {
  count = local.push_enabled ? 1 : 0

  project                    = var.project_id
  name                       = "${local.pubsub_topic_name}-dead-letter"
  topic                      = google_pubsub_topic.gmail_push_dead_letter[0].id
  labels                     = local.labels
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
  labels  = local.labels
  # The push service acknowledges by answering: the deadline is its timeout (main.tf, timeouts).
  ack_deadline_seconds       = local.timeouts.push_ack_deadline_s
  message_retention_duration = "86400s"

  push_config {
    push_endpoint = local.function_urls["push"]

    oidc_token {
      service_account_email = google_service_account.invoker.email
      audience              = local.function_urls["push"]
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
    google_cloud_run_v2_service_iam_member.invoker,
    google_pubsub_topic_iam_member.dead_letter_publisher,
    google_service_account_iam_member.pubsub_mints_invoker_tokens,
  ]
}

resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  count = local.push_enabled ? 1 : 0

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
