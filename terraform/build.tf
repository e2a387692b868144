# The functions' image, built from source by Cloud Build on every change of functions/.
#
# Cloud Run services (not Cloud Functions) because only Cloud Run lets Terraform turn the invoker
# IAM check off for exactly the browser-facing services, which is how a public endpoint works
# under domain-restricted sharing (iam.tf). The Cloud Run API does not build source by itself, so
# the apply runs `gcloud builds submit` once per content hash: gcloud (authenticated) and python3
# are prerequisites of `terraform apply` (README.md, "Deploy").

# Content hash of functions/ (requirements.txt included: the image installs from it).
data "archive_file" "functions_source" {
  type        = "zip"
  source_dir  = "${path.module}/../functions"
  output_path = "${path.module}/.terraform/mailbridge-functions.zip"
  # Glob excludes need archive >= 2.5 (versions.tf); without them __pycache__ changes the hash and
  # every apply rebuilds and redeploys.
  excludes = [
    "**/__pycache__/**",
    "**/*.pyc",
    ".pytest_cache/**",
  ]
}

resource "google_artifact_registry_repository" "functions" {
  #checkov:skip=CKV_GCP_84:The image holds only the open-source code of functions/ and its public dependencies, no data; Google-managed encryption is enough.
  project       = var.project_id
  location      = var.region
  repository_id = "${var.prefix}-functions"
  description   = "Images of the mailbridge functions (${var.prefix}), one tag per content hash of functions/."
  format        = "DOCKER"
  labels        = local.labels

  # Old images go; the ten most recent (the live one among them) always stay.
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"

    most_recent_versions {
      keep_count = 10
    }
  }

  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"

    condition {
      tag_state  = "ANY"
      older_than = "2592000s"
    }
  }

  depends_on = [time_sleep.apis_propagate]
}

locals {
  functions_image = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.functions.repository_id}/functions:${data.archive_file.functions_source.output_md5}"
}

resource "terraform_data" "functions_image" {
  # A new tag per content hash: a code change builds a new image and redeploys every service.
  triggers_replace = [local.functions_image]

  provisioner "local-exec" {
    interpreter = ["bash", "-c"]
    command     = <<-EOT
      set -euo pipefail
      staging="$(mktemp -d)"
      trap 'rm -rf "$staging"' EXIT
      python3 -m zipfile -e "$ARCHIVE" "$staging"
      cp "$DOCKERFILE" "$staging/Dockerfile"
      gcloud builds submit "$staging" \
        --project="$PROJECT" --region="$REGION" --tag="$IMAGE" \
        --service-account="$BUILD_SERVICE_ACCOUNT" \
        --gcs-source-staging-dir="$STAGING_DIR" --gcs-log-dir="$LOG_DIR" --quiet
    EOT

    environment = {
      ARCHIVE               = data.archive_file.functions_source.output_path
      BUILD_SERVICE_ACCOUNT = google_service_account.build.id
      DOCKERFILE            = "${path.module}/build/Dockerfile"
      IMAGE                 = local.functions_image
      LOG_DIR               = "gs://${google_storage_bucket.build.name}/logs"
      PROJECT               = var.project_id
      REGION                = var.region
      STAGING_DIR           = "gs://${google_storage_bucket.build.name}/staging"
    }
  }

  depends_on = [time_sleep.grants_propagate]
}
