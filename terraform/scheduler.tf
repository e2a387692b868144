# Cloud Scheduler triggers poll with an OIDC token of the invoker account.

resource "google_cloud_scheduler_job" "poll" {
  project     = var.project_id
  region      = var.region
  name        = "${var.prefix}-poll"
  description = "Polls every connected mailbox of the ${var.instance} instance (${var.prefix})."
  schedule    = local.poll_schedule
  time_zone   = var.time_zone
  paused      = !var.use_scheduling_service
  # Cloud Scheduler waits for the answer this long: at least poll's own timeout (main.tf).
  attempt_deadline = "${local.timeouts.scheduler_deadline_s}s"

  # A failed poll is retried once or twice; the next scheduled run is the real safety net.
  retry_config {
    retry_count          = 2
    min_backoff_duration = "10s"
    max_backoff_duration = "60s"
    max_doublings        = 2
  }

  http_target {
    http_method = "POST"
    uri         = local.function_urls["poll"]
    body        = base64encode("{}")
    headers = {
      "Content-Type" = "application/json"
    }

    oidc_token {
      service_account_email = google_service_account.invoker.email
      audience              = local.function_urls["poll"]
    }
  }

  depends_on = [
    google_cloud_run_v2_service.function,
    google_cloud_run_v2_service_iam_member.invoker,
  ]
}
