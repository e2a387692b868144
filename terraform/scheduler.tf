# Cloud Scheduler triggers poll, as the scheduler's own service account (OIDC).

resource "google_cloud_scheduler_job" "poll" {
  project     = var.project_id
  region      = var.region
  name        = "${var.prefix}-poll"
  description = "Polls every connected mailbox of the ${var.instance} instance."
  schedule    = var.schedule
  time_zone   = var.time_zone
  paused      = !var.use_scheduling_service
  # Cloud Scheduler waits for the answer up to this long; a poll may work through a backlog.
  attempt_deadline = "${var.poll_timeout_seconds}s"

  # A failed poll is retried once or twice; the next scheduled run is the real safety net.
  retry_config {
    retry_count          = 2
    min_backoff_duration = "10s"
    max_backoff_duration = "60s"
    max_doublings        = 2
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.poll.service_config[0].uri
    body        = base64encode("{}")
    headers = {
      "Content-Type" = "application/json"
    }

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = google_cloudfunctions2_function.poll.service_config[0].uri
    }
  }

  depends_on = [google_cloud_run_service_iam_member.scheduler_invokes_poll]
}
