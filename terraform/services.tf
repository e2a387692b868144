# APIs mailbridge uses, enabled before anything else: every resource that calls one of them
# depends on google_project_service.service. disable_on_destroy = false: other workloads in the
# project may use them too.

locals {
  services = toset([
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com",
    "firestore.googleapis.com",
    "gmail.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    # Read by scripts/mailbridge doctor (organisation policies), with this project as quota project.
    "orgpolicy.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ])
}

resource "google_project_service" "service" {
  for_each = local.services

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

# Enabling an API answers before every backend sees it; the first calls on a fresh project can
# still fail with "API not enabled". Everything waits a little once.
resource "time_sleep" "apis_propagate" {
  create_duration = "60s"

  depends_on = [google_project_service.service]
}

# The Pub/Sub service agent is created lazily; granting it roles before it exists fails. Ask for
# it explicitly (beta-only resource, hence the google-beta provider).
resource "google_project_service_identity" "pubsub" {
  provider = google-beta

  project = var.project_id
  service = "pubsub.googleapis.com"

  depends_on = [time_sleep.apis_propagate]
}
