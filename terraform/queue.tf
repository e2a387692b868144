# The work queue (docs/architecture.md, "Queue"): the scheduled tick publishes one "sync" task
# per connected mailbox to <prefix>-work, and replies publish "send" tasks; the push
# subscription delivers each task to the push service (one task per request, concurrency 1,
# bounded by the service's max instances) with an OIDC token of the invoker account. A task
# answered 429/5xx (mailbox busy, transient failure) or not answered within the ack deadline (the
# instance died) is redelivered with backoff; after max_delivery_attempts it is dead-lettered,
# and the next tick covers the mailbox anyway. Unlike Gmail push this is not a switch: the
# functions need the queue whatever enable_push says.

resource "google_pubsub_topic" "work" {
  #checkov:skip=CKV_GCP_83:Tasks carry only a mailbox name, a kind and ids (no mail content); Google-managed encryption is enough.
  project = var.project_id
  name    = "${var.prefix}-work"
  labels  = local.labels
  # A task older than an hour is stale: a later tick has queued the mailbox again.
  message_retention_duration = "3600s"

  depends_on = [time_sleep.apis_propagate]
}

resource "google_pubsub_topic" "work_dead_letter" {
  #checkov:skip=CKV_GCP_83:Holds only undeliverable tasks (mailbox name, kind, ids); Google-managed encryption is enough.
  project = var.project_id
  name    = "${var.prefix}-work-dead-letter"
  labels  = local.labels

  depends_on = [time_sleep.apis_propagate]
}

# Keeps dead-lettered tasks for a week so they can be inspected.
resource "google_pubsub_subscription" "work_dead_letter" {
  project                    = var.project_id
  name                       = "${var.prefix}-work-dead-letter"
  topic                      = google_pubsub_topic.work_dead_letter.id
  labels                     = local.labels
  message_retention_duration = "604800s"
  ack_deadline_seconds       = 60

  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_subscription" "work_push" {
  project = var.project_id
  name    = "${var.prefix}-work-to-push"
  topic   = google_pubsub_topic.work.id
  labels  = local.labels
  # push acknowledges by answering; its budget stops new work before this deadline (main.tf).
  ack_deadline_seconds       = local.timeouts.push_ack_deadline_s
  message_retention_duration = "3600s"

  push_config {
    push_endpoint = local.function_urls["push"]

    oidc_token {
      service_account_email = google_service_account.invoker.email
      audience              = local.function_urls["push"]
    }
  }

  # A mailbox whose sync died is busy until its 30 s lease runs out: the first redeliveries
  # answer 429, a later one takes the mailbox over.
  retry_policy {
    minimum_backoff = "5s"
    maximum_backoff = "60s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.work_dead_letter.id
    max_delivery_attempts = 10
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [
    google_cloud_run_v2_service_iam_member.invoker,
    google_pubsub_topic_iam_member.work_dead_letter_publisher,
    google_service_account_iam_member.pubsub_mints_invoker_tokens,
  ]
}

# Who publishes tasks: poll (the tick's fan-out), push (continuations, sends) and admin
# (a "poll now" that runs out of budget continues through the queue; replies queue sends).
resource "google_pubsub_topic_iam_member" "work_publishers" {
  for_each = toset(["admin", "poll", "push"])

  project = var.project_id
  topic   = google_pubsub_topic.work.name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.function[each.key].member
}

resource "google_pubsub_topic_iam_member" "work_dead_letter_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.work_dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "work_dead_letter_subscriber" {
  project      = var.project_id
  subscription = google_pubsub_subscription.work_push.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}
