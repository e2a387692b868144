# Buckets: build inputs and logs of the functions' image, and the attachments.

resource "google_storage_bucket" "build" {
  #checkov:skip=CKV_GCP_62:Holds only copies of functions/ uploaded for Cloud Build and the build logs; access logs would need a bucket of their own and record nothing of value.
  name                        = "${var.project_id}-${var.prefix}-build"
  project                     = var.project_id
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true
  labels                      = local.labels

  versioning {
    enabled = true
  }

  # Only build inputs (staging/) and build logs (logs/) live here; nothing a running service
  # reads (the services run the image in Artifact Registry), so old objects can go.
  lifecycle_rule {
    condition {
      age            = 30
      matches_prefix = ["staging/", "logs/"]
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 1
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [time_sleep.apis_propagate]
}

resource "google_storage_bucket" "attachments" {
  #checkov:skip=CKV_GCP_62:Data access is recorded by Cloud Audit Logs (enable DATA_READ/DATA_WRITE for Cloud Storage); usage logs would need a second bucket holding email metadata.
  name                        = "${var.project_id}-${var.prefix}-attachments"
  project                     = var.project_id
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  # terraform destroy refuses while attachments remain: deleting mail is a decision (README.md).
  force_destroy = false
  labels        = local.labels

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

  depends_on = [time_sleep.apis_propagate]
}
