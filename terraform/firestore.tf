# Firestore in Native mode and the composite indexes the code's queries need. The list must
# match COMPOSITE_INDEXES in functions/mailbridge/indexes.py (tests/unit/test_terraform.py
# checks it). Resource names: <collection>_<field>_<field>...

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

  depends_on = [google_project_service.service]
}


resource "google_firestore_index" "tickets_mailbox_number" {
  project    = var.project_id
  database   = "(default)"
  collection = "tickets"

  fields {
    field_path = "mailbox"
    order      = "ASCENDING"
  }

  fields {
    field_path = "number"
    order      = "DESCENDING"
  }

  depends_on = [google_firestore_database.default, google_project_service.service]
}

resource "google_firestore_index" "tickets_status_number" {
  project    = var.project_id
  database   = "(default)"
  collection = "tickets"

  fields {
    field_path = "status"
    order      = "ASCENDING"
  }

  fields {
    field_path = "number"
    order      = "DESCENDING"
  }

  depends_on = [google_firestore_database.default, google_project_service.service]
}

resource "google_firestore_index" "tickets_mailbox_status_number" {
  project    = var.project_id
  database   = "(default)"
  collection = "tickets"

  fields {
    field_path = "mailbox"
    order      = "ASCENDING"
  }

  fields {
    field_path = "status"
    order      = "ASCENDING"
  }

  fields {
    field_path = "number"
    order      = "DESCENDING"
  }

  depends_on = [google_firestore_database.default, google_project_service.service]
}

resource "google_firestore_index" "inbound_mailbox_processed_at" {
  project    = var.project_id
  database   = "(default)"
  collection = "inbound"

  fields {
    field_path = "mailbox"
    order      = "ASCENDING"
  }

  fields {
    field_path = "processed_at"
    order      = "DESCENDING"
  }

  depends_on = [google_firestore_database.default, google_project_service.service]
}
