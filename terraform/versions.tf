terraform {
  # 1.11: write-only arguments (secret_data_wo) and ephemeral resources keep the signing key out
  # of the state and the plan.
  required_version = ">= 1.11, < 2.0"

  required_providers {
    archive = {
      source = "hashicorp/archive"
      # 2.5: glob patterns in excludes (without them __pycache__ is zipped and every apply rebuilds).
      version = ">= 2.5, < 3.0"
    }
    google = {
      source = "hashicorp/google"
      # 6.25: secret_data_wo on google_secret_manager_secret_version; invoker_iam_disabled on
      # google_cloud_run_v2_service.
      version = ">= 6.25, < 8.0"
    }
    google-beta = {
      source = "hashicorp/google-beta"
      # Only for google_project_service_identity (the Pub/Sub service agent), which is beta-only.
      version = ">= 6.25, < 8.0"
    }
    random = {
      source = "hashicorp/random"
      # 3.7: the ephemeral random_password the signing key is drawn from.
      version = ">= 3.7, < 4.0"
    }
    time = {
      source  = "hashicorp/time"
      version = ">= 0.12, < 1.0"
    }
  }

  # State: see backend.tf.example (a GCS bucket with versioning). Without it the state is a local
  # file; it holds no secret either way, but a team needs one shared, locked copy.
}

provider "google" {
  project = var.project_id
  region  = var.region
}

provider "google-beta" {
  project = var.project_id
  region  = var.region
}
