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

  # The topics delivered by push: Gmail notifications (this file) and the work queue (queue.tf)
  # to the push service, ticket events (events.tf) to the helpdesk's event_push_endpoint. Each
  # has a push subscription with an OIDC token, retries with exponential backoff and a
  # dead-letter topic, and they differ only in these values. `enabled`: the topic and its
  # dead-letter topic exist; `subscribed`: the push subscription does.
  push_queue_settings = {
    # A notification older than a day is useless: the next poll has caught up by then. Transient
    # failures (5xx) are redelivered with backoff; after max_delivery_attempts the notification
    # is dead-lettered and the next poll picks the mail up.
    gmail = {
      topic_name            = local.pubsub_topic_name
      topic                 = one(google_pubsub_topic.gmail_push[*].id)
      retention             = "86400s"
      minimum_backoff       = "10s"
      maximum_backoff       = "600s"
      max_delivery_attempts = 5
      enabled               = local.push_enabled
      subscribed            = local.push_subscription
      endpoint              = local.function_urls["push"]
      service_account       = google_service_account.invoker.email
      ack_deadline_s        = local.timeouts.push_ack_deadline_s
      ordered               = false
      unwrapped             = false
    }
    # A task older than an hour is stale: a later tick has queued the mailbox again. A mailbox
    # whose sync died is busy until its 30 s lease runs out: the first redeliveries answer 429, a
    # later one takes the mailbox over.
    work = {
      topic_name            = "${var.prefix}-work"
      topic                 = google_pubsub_topic.work.id
      retention             = "3600s"
      minimum_backoff       = "5s"
      maximum_backoff       = "60s"
      max_delivery_attempts = 10
      enabled               = true
      subscribed            = true
      endpoint              = local.function_urls["push"]
      service_account       = google_service_account.invoker.email
      ack_deadline_s        = local.timeouts.push_ack_deadline_s
      ordered               = false
      unwrapped             = false
    }
    # Ticket events to the helpdesk (var.event_push_endpoint), each ticket's in order. A helpdesk
    # that is down is retried for hours (backoff to 10 minutes) before an event is dead-lettered;
    # `scripts/mailbridge events replay` sends the log's events again. Unwrapped: the request body
    # is the CloudEvent itself (docs/events.md), the message attributes arrive as headers.
    events = {
      topic_name            = "${var.prefix}-events"
      topic                 = google_pubsub_topic.events.id
      retention             = "604800s"
      minimum_backoff       = "10s"
      maximum_backoff       = "600s"
      max_delivery_attempts = 20
      enabled               = local.event_push
      subscribed            = local.event_push
      endpoint              = var.event_push_endpoint
      service_account       = one(google_service_account.event_pusher[*].email)
      ack_deadline_s        = 60
      ordered               = true
      unwrapped             = true
    }
  }
  # The work queue always; Gmail push with enable_push, its subscription with the push service;
  # ticket events with an event_push_endpoint.
  push_queues        = { for key, queue in local.push_queue_settings : key => queue if queue.enabled }
  push_subscriptions = { for key, queue in local.push_queue_settings : key => queue if queue.subscribed }
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

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:Holds only undeliverable notifications (address and history id), tasks (mailbox name, kind, ids) or ticket events (as on the events topic, see events.tf); Google-managed encryption is enough.
  for_each = local.push_queues

  project = var.project_id
  name    = "${each.value.topic_name}-dead-letter"
  labels  = local.labels

  depends_on = [time_sleep.apis_propagate]
}

# Keeps dead-lettered messages for a week so they can be inspected; the backlog of Gmail's is
# alerted on (monitoring.tf).
resource "google_pubsub_subscription" "dead_letter" {
  for_each = local.push_queues

  project                    = var.project_id
  name                       = "${each.value.topic_name}-dead-letter"
  topic                      = google_pubsub_topic.dead_letter[each.key].id
  labels                     = local.labels
  message_retention_duration = "604800s"
  ack_deadline_seconds       = 60

  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_subscription" "push" {
  for_each = local.push_subscriptions

  project = var.project_id
  name    = "${each.value.topic_name}-to-push"
  topic   = each.value.topic
  labels  = local.labels
  # The push service acknowledges by answering: the deadline is its timeout, and its budget stops
  # new work before it (main.tf, timeouts).
  ack_deadline_seconds       = each.value.ack_deadline_s
  message_retention_duration = each.value.retention
  # Ticket events: each ticket's events are delivered one after the other (ordering key = ticket).
  enable_message_ordering = each.value.ordered

  push_config {
    push_endpoint = each.value.endpoint

    oidc_token {
      service_account_email = each.value.service_account
      audience              = each.value.endpoint
    }

    dynamic "no_wrapper" {
      for_each = each.value.unwrapped ? [true] : []

      content {
        write_metadata = true
      }
    }
  }

  retry_policy {
    minimum_backoff = each.value.minimum_backoff
    maximum_backoff = each.value.maximum_backoff
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter[each.key].id
    max_delivery_attempts = each.value.max_delivery_attempts
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [
    google_cloud_run_v2_service_iam_member.invoker,
    google_pubsub_topic_iam_member.dead_letter_publisher,
    google_service_account_iam_member.pubsub_mints_invoker_tokens,
    google_service_account_iam_member.pubsub_mints_event_pusher_tokens,
  ]
}

# Pub/Sub's service agent moves undeliverable messages: it publishes to the dead-letter topic and
# acknowledges on the push subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = local.push_queues

  project = var.project_id
  topic   = google_pubsub_topic.dead_letter[each.key].name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each = local.push_subscriptions

  project      = var.project_id
  subscription = google_pubsub_subscription.push[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

# Where these resources were before they became one per queue: an existing deployment moves them
# in its state instead of destroying and recreating them.
moved {
  from = google_pubsub_topic.gmail_push_dead_letter[0]
  to   = google_pubsub_topic.dead_letter["gmail"]
}

moved {
  from = google_pubsub_topic.work_dead_letter
  to   = google_pubsub_topic.dead_letter["work"]
}

moved {
  from = google_pubsub_subscription.gmail_push_dead_letter[0]
  to   = google_pubsub_subscription.dead_letter["gmail"]
}

moved {
  from = google_pubsub_subscription.work_dead_letter
  to   = google_pubsub_subscription.dead_letter["work"]
}

moved {
  from = google_pubsub_subscription.gmail_push[0]
  to   = google_pubsub_subscription.push["gmail"]
}

moved {
  from = google_pubsub_subscription.work_push
  to   = google_pubsub_subscription.push["work"]
}

moved {
  from = google_pubsub_topic_iam_member.dead_letter_publisher[0]
  to   = google_pubsub_topic_iam_member.dead_letter_publisher["gmail"]
}

moved {
  from = google_pubsub_topic_iam_member.work_dead_letter_publisher
  to   = google_pubsub_topic_iam_member.dead_letter_publisher["work"]
}

moved {
  from = google_pubsub_subscription_iam_member.dead_letter_subscriber[0]
  to   = google_pubsub_subscription_iam_member.dead_letter_subscriber["gmail"]
}

moved {
  from = google_pubsub_subscription_iam_member.work_dead_letter_subscriber
  to   = google_pubsub_subscription_iam_member.dead_letter_subscriber["work"]
}
