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

# Its push subscription, retries and dead-letter topic are the "work" entries of pubsub.tf
# (local.push_queue_settings: google_pubsub_subscription.push["work"] and the dead_letter resources).

# Who publishes tasks: poll (the tick's fan-out), push (continuations, sends), admin
# (a "poll now" that runs out of budget continues through the queue; replies queue sends) and
# api (replies queue sends).
resource "google_pubsub_topic_iam_member" "work_publishers" {
  for_each = toset(["admin", "api", "poll", "push"])

  project = var.project_id
  topic   = google_pubsub_topic.work.name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.function[each.key].member
}
