# The audit log beyond Firestore (docs/privacy.md, "Audit log"): every admin action is also one
# structured log line with the label audit=true (services/audit.py); this sink keeps those lines
# in their own log bucket for audit_log_retention_days, whatever the _Default bucket keeps.

resource "google_logging_project_bucket_config" "audit" {
  project        = var.project_id
  location       = "global"
  bucket_id      = "${var.prefix}-audit"
  retention_days = var.audit_log_retention_days
  description    = "mailbridge admin actions (one line per action; erased people appear only as keyed hashes)"

  depends_on = [time_sleep.apis_propagate]
}

resource "google_logging_project_sink" "audit" {
  project     = var.project_id
  name        = "${var.prefix}-audit"
  destination = "logging.googleapis.com/projects/${var.project_id}/locations/global/buckets/${google_logging_project_bucket_config.audit.bucket_id}"
  filter      = "labels.audit=\"true\" AND resource.type=\"cloud_run_revision\""
  # A sink into a log bucket of the same project needs no grant for its writer identity.
  unique_writer_identity = true
}
