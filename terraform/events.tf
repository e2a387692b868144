# Ticket events (docs/events.md): every change to a ticket is stored with its change (the
# Firestore collection `events`, TTL in firestore.tf) and published to <prefix>-events as a
# CloudEvent 1.0 in structured JSON mode, the ordering key being the ticket id. The JSON shape is
# documented, not a Pub/Sub schema: Pub/Sub schemas are Avro or Protocol Buffers, whose JSON
# encodings cannot carry the CloudEvent's free-form `data` as the plain JSON consumers read. The
# JSON Schema of an event is docs/event.schema.json.
#
# Delivery: with event_push_endpoint, the "events" entry of local.push_queue_settings (pubsub.tf)
# pushes each event to the helpdesk with an OIDC token of the event pusher account (audience: the
# endpoint), retries with exponential backoff and dead-letters after its attempts. With
# event_subscribers, those service accounts may pull from <prefix>-events-pull (with ordering).

locals {
  event_push = var.event_push_endpoint != ""

  # The functions whose code changes tickets and publishes the events after the commit: admin
  # (ticket pages, disconnect), api (status, team, type, participants, replies sent inline), poll
  # and push (ingestion, sends, revoked tokens, events tasks). Any other function only writes
  # events to the log; the tick's sweep gets them published.
  event_publishers = toset(["admin", "api", "poll", "push"])
}

resource "google_pubsub_topic" "events" {
  #checkov:skip=CKV_GCP_83:Events carry the ticket and message JSON that Firestore and the attachments bucket already keep under Google-managed encryption; a KMS key would have to cover those first.
  project = var.project_id
  name    = "${var.prefix}-events"
  labels  = local.labels
  # A new or lagging subscription can be seeked back a week; older events: events replay.
  message_retention_duration = "604800s"

  depends_on = [time_sleep.apis_propagate]
}

resource "google_pubsub_topic_iam_member" "event_publishers" {
  for_each = local.event_publishers

  project = var.project_id
  topic   = google_pubsub_topic.events.name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.function[each.key].member
}

# The identity of the OIDC tokens on pushed events: the helpdesk checks the token's email is this
# account and its audience is its endpoint (README.md, "Ticket events"). It has no role at all.
resource "google_service_account" "event_pusher" {
  count = local.event_push ? 1 : 0

  project      = var.project_id
  account_id   = "${var.prefix}-events-push"
  display_name = "mailbridge event push (${var.prefix})"
  description  = "Pub/Sub signs the OIDC tokens of ticket events pushed to event_push_endpoint with this account; it may do nothing else."

  depends_on = [time_sleep.apis_propagate]
}

resource "google_service_account_iam_member" "pubsub_mints_event_pusher_tokens" {
  count = local.event_push ? 1 : 0

  service_account_id = google_service_account.event_pusher[0].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
}

# A pull subscription for the event_subscribers (a helpdesk's workers, a script), with ordering.
resource "google_pubsub_subscription" "events_pull" {
  count = length(var.event_subscribers) > 0 ? 1 : 0

  project                    = var.project_id
  name                       = "${var.prefix}-events-pull"
  topic                      = google_pubsub_topic.events.id
  labels                     = local.labels
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  enable_message_ordering    = true

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_subscription_iam_member" "event_subscribers" {
  for_each = toset(var.event_subscribers)

  project      = var.project_id
  subscription = google_pubsub_subscription.events_pull[0].name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${each.value}"
}
