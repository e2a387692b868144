# Firestore in Native mode, the composite indexes the code's queries need and the TTL policies of
# short-lived collections. The index list must match COMPOSITE_INDEXES in
# functions/mailbridge/indexes.py (tests/unit/test_terraform.py checks it): one index resource per
# entry of local.firestore_indexes.
#
# A project that already has a (default) database: either set create_firestore_database = false
# (Terraform leaves it alone; it must be in Native mode, which `scripts/mailbridge doctor`
# checks), or keep it true and adopt it once with
#   terraform -chdir=terraform import 'google_firestore_database.default[0]' 'projects/PROJECT/databases/(default)'
# (terraform/README.md, "Firestore").

resource "google_firestore_database" "default" {
  count = var.create_firestore_database ? 1 : 0

  project     = var.project_id
  name        = "(default)"
  location_id = var.firestore_location != "" ? var.firestore_location : var.region
  type        = "FIRESTORE_NATIVE"

  concurrency_mode                  = "OPTIMISTIC"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = "DELETE_PROTECTION_ENABLED"
  # terraform destroy leaves the mailbox and ticket data in place.
  deletion_policy = "ABANDON"

  depends_on = [time_sleep.apis_propagate]
}

locals {
  # Every composite index, keyed <collection>_<field>_<field>...; the fields in index order.
  firestore_indexes = {
    tickets_mailbox_number = {
      collection = "tickets"
      fields = [
        { field_path = "mailbox", order = "ASCENDING" },
        { field_path = "number", order = "DESCENDING" },
      ]
    }
    tickets_status_number = {
      collection = "tickets"
      fields = [
        { field_path = "status", order = "ASCENDING" },
        { field_path = "number", order = "DESCENDING" },
      ]
    }
    tickets_mailbox_status_number = {
      collection = "tickets"
      fields = [
        { field_path = "mailbox", order = "ASCENDING" },
        { field_path = "status", order = "ASCENDING" },
        { field_path = "number", order = "DESCENDING" },
      ]
    }
    inbound_mailbox_processed_at = {
      collection = "inbound"
      fields = [
        { field_path = "mailbox", order = "ASCENDING" },
        { field_path = "processed_at", order = "DESCENDING" },
      ]
    }
  }
}

resource "google_firestore_index" "composite" {
  for_each = local.firestore_indexes

  project    = var.project_id
  database   = "(default)"
  collection = each.value.collection

  dynamic "fields" {
    for_each = each.value.fields

    content {
      field_path = fields.value.field_path
      order      = fields.value.order
    }
  }

  depends_on = [google_firestore_database.default, time_sleep.apis_propagate]
}

# Where the indexes were before they became one for_each: an existing deployment moves them in its
# state instead of deleting and rebuilding them.
moved {
  from = google_firestore_index.tickets_mailbox_number
  to   = google_firestore_index.composite["tickets_mailbox_number"]
}

moved {
  from = google_firestore_index.tickets_status_number
  to   = google_firestore_index.composite["tickets_status_number"]
}

moved {
  from = google_firestore_index.tickets_mailbox_status_number
  to   = google_firestore_index.composite["tickets_mailbox_status_number"]
}

moved {
  from = google_firestore_index.inbound_mailbox_processed_at
  to   = google_firestore_index.composite["inbound_mailbox_processed_at"]
}

# Documents of these collections are useless once expired; Firestore deletes them (typically
# within a day of expires_at) instead of the code sweeping. The product writes a timestamp field
# `expires_at` (adapters/firestore/links.py and outbound.py write it, inbound.py on message_copies; admin sessions get it from
# services/admin_access.py, event documents from domain/events.py, audit records from
# services/audit.py). In tickets, inbound and outbound only a closed ticket's documents and
# ignored/quarantined rows carry one (services/retention.py, docs/privacy.md): a document without
# it, or with null, is kept.
locals {
  ttl_collections = toset([
    "ack_limits",     # acknowledgement rate limit per recipient and hour (services/outgoing/)
    "admin_sessions", # admin sign-in sessions (Sign in with Google)
    "audit",          # the audit log, kept audit.retention_days (services/audit.py, docs/privacy.md)
    "events",         # the ticket event log, kept events.retention_days (domain/events.py)
    "inbound",        # a closed ticket's messages, ignored/quarantined rows (retention.*, docs/privacy.md)
    "message_copies", # one mail at several mailboxes: copy keys claimed by a sync, 30 days (domain/copies.py)
    "nonces",         # single-use link nonces (store.use_nonce)
    "oauth_states",   # OAuth state + PKCE verifier between oauth_start and oauth_callback
    "outbound",       # a closed ticket's outgoing records (services/retention.py)
    "send_budget",    # daily send budget per mailbox (services/outgoing/budget.py)
    "tickets",        # closed tickets, retention.closed_ticket_days after closing, unless on legal hold
  ])
}

resource "google_firestore_field" "expires_at" {
  for_each = local.ttl_collections

  project    = var.project_id
  database   = "(default)"
  collection = each.value
  field      = "expires_at"

  ttl_config {}

  # No single-field index on expires_at: nothing queries it, and an index on an ever-increasing
  # timestamp is a write hotspot.
  index_config {}

  depends_on = [google_firestore_database.default, time_sleep.apis_propagate]
}
