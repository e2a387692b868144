# Someone is told when something breaks: log-based metrics on the functions' structured log lines
# (functions/mailbridge/logs.py), alert policies on them and on Pub/Sub, and one dashboard.
# The log lines each metric counts are a contract with the code; terraform/README.md
# ("Monitoring") lists them.

locals {
  # Log entries of this deployment's services only (another prefix is another deployment).
  services_log_filter = join(" OR ", [for name in sort(tolist(local.function_names)) : "resource.labels.service_name=\"${local.service_names[name]}\""])
  log_filter          = "resource.type=\"cloud_run_revision\" AND (${local.services_log_filter})"

  notification_channels = concat(
    var.notification_channels,
    [for channel in google_monitoring_notification_channel.email : channel.id],
  )

  # Counters: one log line per event, labelled with the mailbox.
  log_counters = {
    credential_disconnected = {
      description = "A credential set was marked disconnected (Google refused its refresh token: revoked, password change, unused for 6 months)."
      filter      = "jsonPayload.message=\"credential set disconnected\""
    }
    message_quarantined = {
      description = "A message was quarantined after repeated failures (inbound row with the reason; Retry on the admin page)."
      filter      = "jsonPayload.message=\"message quarantined\""
    }
    mailbox_polled = {
      description = "A mailbox was synchronised successfully (poll or push)."
      filter      = "jsonPayload.message=\"mailbox polled\" AND jsonPayload.outcome=\"ok\""
    }
    poll_failed = {
      description = "Synchronising a mailbox failed (the reason is in the log line and on the mailbox)."
      filter      = "jsonPayload.message=\"mailbox polled\" AND jsonPayload.outcome=\"error\""
    }
  }

  # Counters that alert: more than `threshold` events for one mailbox within `period`.
  counter_alerts = {
    credential_disconnected = {
      title      = "credential set disconnected"
      severity   = "ERROR"
      threshold  = 0
      period     = "300s"
      what_to_do = "Google refused a mailbox's refresh token; that mailbox is not ingested until someone signs in again. `scripts/mailbridge mailbox show MAILBOX` gives the reason; `scripts/mailbridge connect-url MAILBOX` opens a new sign-in."
    }
    message_quarantined = {
      title      = "message quarantined"
      severity   = "WARNING"
      threshold  = 0
      period     = "300s"
      what_to_do = "A message failed repeatedly and was set aside; later messages of its thread wait. `scripts/mailbridge inbound MAILBOX --json` shows the row and its reason; press Retry on the admin page after fixing the cause (a message that killed the function needs more poll_memory)."
    }
    poll_failed = {
      title      = "polls failing"
      severity   = "WARNING"
      threshold  = 2
      period     = "900s"
      what_to_do = "More than two failed synchronisations of one mailbox in 15 minutes. The log lines `mailbox polled` with `outcome=error` carry the reason; `scripts/mailbridge mailbox show MAILBOX` shows the last error."
    }
  }
}

resource "google_logging_metric" "counter" {
  for_each = local.log_counters

  project     = var.project_id
  name        = "${var.prefix}_${each.key}"
  description = each.value.description
  filter      = "${local.log_filter} AND ${each.value.filter}"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "${var.prefix} ${replace(each.key, "_", " ")}"

    labels {
      key         = "mailbox"
      value_type  = "STRING"
      description = "Mailbox name."
    }
  }

  label_extractors = {
    mailbox = "EXTRACT(jsonPayload.mailbox)"
  }

  depends_on = [time_sleep.apis_propagate]
}

# Seconds from Gmail's publish time of a notification to the push service's answer.
resource "google_logging_metric" "push_latency" {
  project         = var.project_id
  name            = "${var.prefix}_push_latency"
  description     = "Gmail push latency: Pub/Sub publish time to the push service's answer, in seconds."
  filter          = "${local.log_filter} AND resource.labels.service_name=\"${local.service_names["push"]}\" AND jsonPayload.latency_s>=0"
  value_extractor = "EXTRACT(jsonPayload.latency_s)"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "s"
    display_name = "${var.prefix} push latency"
  }

  bucket_options {
    exponential_buckets {
      num_finite_buckets = 30
      growth_factor      = 1.5
      scale              = 0.1
    }
  }

  depends_on = [time_sleep.apis_propagate]
}

resource "google_monitoring_notification_channel" "email" {
  count = var.alert_email != "" ? 1 : 0

  project      = var.project_id
  display_name = "${var.prefix} alerts"
  type         = "email"

  labels = {
    email_address = var.alert_email
  }

  depends_on = [time_sleep.apis_propagate]
}

resource "google_monitoring_alert_policy" "counter" {
  for_each = local.counter_alerts

  project               = var.project_id
  display_name          = "${var.prefix}: ${each.value.title}"
  combiner              = "OR"
  severity              = each.value.severity
  notification_channels = local.notification_channels

  conditions {
    display_name = each.value.title

    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.counter[each.key].name}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = each.value.threshold
      duration        = "0s"

      aggregations {
        alignment_period     = each.value.period
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.mailbox"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = each.value.what_to_do
  }
}

resource "google_monitoring_alert_policy" "mailbox_not_polled" {
  project               = var.project_id
  display_name          = "${var.prefix}: no successful poll of a mailbox for 15 minutes"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = local.notification_channels

  conditions {
    display_name = "A mailbox that was synchronised stopped being synchronised"

    # Per mailbox: fires when a mailbox that had successful syncs has none for 15 minutes
    # (disconnected, failing, or polling stopped altogether).
    condition_absent {
      filter   = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.counter["mailbox_polled"].name}\" AND resource.type=\"cloud_run_revision\""
      duration = "900s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.mailbox"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "No successful synchronisation of this mailbox for 15 minutes. Check `scripts/mailbridge mailbox show MAILBOX` (last error, credential status), the scheduler job (`gcloud scheduler jobs describe ${var.prefix}-poll --location ${var.region}`) and the switches `use_incoming_service` / `use_scheduling_service`."
  }
}

resource "google_monitoring_alert_policy" "dead_letter_backlog" {
  count = local.push_enabled ? 1 : 0

  project               = var.project_id
  display_name          = "${var.prefix}: Gmail notifications dead-lettered"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.notification_channels

  conditions {
    display_name = "Dead-letter subscription has messages"

    condition_threshold {
      filter          = "metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=\"${google_pubsub_subscription.dead_letter["gmail"].name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "300s"

      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Pub/Sub could not deliver Gmail notifications to the push service five times. No mail is lost (the scheduled poll picks it up), but push is broken: check the push service's logs and its invoker grant (`scripts/mailbridge doctor`)."
  }
}

resource "google_monitoring_alert_policy" "push_latency" {
  count = local.push_subscription ? 1 : 0

  project               = var.project_id
  display_name          = "${var.prefix}: Gmail push latency p95 above ${var.push_latency_alert_seconds}s"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.notification_channels

  conditions {
    display_name = "Push latency p95"

    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.push_latency.name}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.push_latency_alert_seconds
      duration        = "600s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_PERCENTILE_95"
        cross_series_reducer = "REDUCE_MAX"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "New mail takes longer than expected to become tickets through Gmail push. Look for push retries (`push:` log lines with status 429/5xx), Gmail quota waits, and poll_max_instances / function_max_instances limits."
  }
}

resource "google_monitoring_dashboard" "mailbridge" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "mailbridge (${var.prefix})"
    mosaicLayout = {
      columns = 48
      tiles = [
        for index, chart in [
          { title = "Successful syncs by mailbox", metric = "logging.googleapis.com/user/${google_logging_metric.counter["mailbox_polled"].name}", aligner = "ALIGN_SUM", group = ["metric.label.mailbox"] },
          { title = "Failed syncs by mailbox", metric = "logging.googleapis.com/user/${google_logging_metric.counter["poll_failed"].name}", aligner = "ALIGN_SUM", group = ["metric.label.mailbox"] },
          { title = "Quarantined messages", metric = "logging.googleapis.com/user/${google_logging_metric.counter["message_quarantined"].name}", aligner = "ALIGN_SUM", group = ["metric.label.mailbox"] },
          { title = "Credential sets disconnected", metric = "logging.googleapis.com/user/${google_logging_metric.counter["credential_disconnected"].name}", aligner = "ALIGN_SUM", group = ["metric.label.mailbox"] },
          { title = "Push latency p95 (s)", metric = "logging.googleapis.com/user/${google_logging_metric.push_latency.name}", aligner = "ALIGN_PERCENTILE_95", group = [] },
          { title = "Requests by service and status class", metric = "run.googleapis.com/request_count", aligner = "ALIGN_RATE", group = ["resource.label.service_name", "metric.label.response_code_class"] },
          ] : {
          xPos   = (index % 2) * 24
          yPos   = floor(index / 2) * 16
          width  = 24
          height = 16
          widget = {
            title = chart.title
            xyChart = {
              dataSets = [{
                plotType = "LINE"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter = "metric.type=\"${chart.metric}\" AND resource.type=\"cloud_run_revision\" AND (${local.services_log_filter})"
                    aggregation = {
                      alignmentPeriod    = "300s"
                      perSeriesAligner   = chart.aligner
                      crossSeriesReducer = length(chart.group) > 0 ? "REDUCE_SUM" : "REDUCE_MAX"
                      groupByFields      = chart.group
                    }
                  }
                }
              }]
            }
          }
        }
      ]
    }
  })

  depends_on = [time_sleep.apis_propagate]
}
