# One Cloud Run service per entry point of functions/main.py, all running the image of build.tf;
# FUNCTION_TARGET selects the entry point. Names carry the prefix; URLs are the deterministic
# run.app URLs of main.tf (local.function_urls).
#
# admin, oauth_start and oauth_callback are opened by browsers: ingress from anywhere and the
# invoker IAM check off (iam.tf, "Who may call what", says why). api takes traffic from anywhere
# (a helpdesk calls it from outside the project) and keeps the IAM check: only var.api_callers
# may invoke it. poll, push and labels keep the IAM check and accept internal traffic only:
# Cloud Scheduler, Pub/Sub push and Cloud Tasks of the same project count as internal. Run a poll by hand with
# `gcloud scheduler jobs run <prefix>-poll --location <region>`.

resource "google_cloud_run_v2_service" "function" {
  for_each = local.functions

  project     = var.project_id
  location    = var.region
  name        = local.service_names[each.key]
  description = "mailbridge ${each.key} (${var.prefix}, ${var.instance})"
  labels      = merge(local.labels, { function = replace(each.key, "_", "-") })

  ingress              = each.value.internet ? "INGRESS_TRAFFIC_ALL" : "INGRESS_TRAFFIC_INTERNAL_ONLY"
  invoker_iam_disabled = each.value.browser
  # Stateless: deleting a service loses nothing (terraform destroy must be able to).
  deletion_protection = false

  template {
    service_account                  = google_service_account.function[each.key].email
    timeout                          = "${each.value.timeout_s}s"
    max_instance_request_concurrency = each.value.concurrency

    scaling {
      min_instance_count = 0
      max_instance_count = each.value.max_instances
    }

    containers {
      image = local.functions_image

      resources {
        limits = {
          cpu    = "1"
          memory = each.value.memory
        }
        cpu_idle = true
      }

      env {
        name  = "FUNCTION_TARGET"
        value = each.key
      }

      dynamic "env" {
        for_each = merge(local.function_environment, local.function_extra_environment[each.key])
        content {
          name  = env.key
          value = env.value
        }
      }

      # Pinned to the version Terraform wrote: rotating the key redeploys the services with it.
      dynamic "env" {
        for_each = contains(tolist(local.signing_key_readers), each.key) ? ["MAILBRIDGE_SIGNING_KEY"] : []
        content {
          name = env.value
          value_source {
            secret_key_ref {
              secret  = google_secret_manager_secret.signing_key.secret_id
              version = google_secret_manager_secret_version.signing_key.version
            }
          }
        }
      }
    }
  }

  traffic {
    type    = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"
    percent = 100
  }

  depends_on = [
    terraform_data.functions_image,
    time_sleep.grants_propagate,
  ]
}
