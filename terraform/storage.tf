# Source archive of functions/ and the two buckets.

data "archive_file" "functions_source" {
  type        = "zip"
  source_dir  = "${path.module}/../functions"
  output_path = "${path.module}/.terraform/mailbridge-functions.zip"
  # requirements.txt must stay in the archive: Cloud Build installs the runtime from it.
  excludes = [
    "**/__pycache__/**",
    "**/*.pyc",
    ".pytest_cache/**",
  ]
}

resource "google_storage_bucket" "source" {
  #checkov:skip=CKV_GCP_62:Holds only build inputs (zips of functions/, rebuilt from the repository); access logs would record nothing of value and need a bucket of their own.
  name                        = "${var.project_id}-${var.prefix}-source"
  project                     = var.project_id
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true

  versioning {
    enabled = true
  }

  # Each deploy uploads a new object named after its content hash; old ones are not needed.
  lifecycle_rule {
    condition {
      age = 30
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.service]
}

resource "google_storage_bucket_object" "functions_source" {
  # Named after the content hash, so a code change makes every function redeploy.
  name   = "functions-${data.archive_file.functions_source.output_md5}.zip"
  bucket = google_storage_bucket.source.name
  source = data.archive_file.functions_source.output_path
}

resource "google_storage_bucket" "attachments" {
  #checkov:skip=CKV_GCP_62:Data access is recorded by Cloud Audit Logs (enable DATA_READ/DATA_WRITE for Cloud Storage); usage logs would need a second bucket holding email metadata.
  name                        = "${var.project_id}-${var.prefix}-attachments"
  project                     = var.project_id
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      age = var.attachment_retention_days
    }
    action {
      type = "Delete"
    }
  }

  # Versioning keeps replaced objects; they must not outlive the retention either.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 1
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.service]
}
