"""Structure checks of terraform/ on the parsed HCL (python-hcl2), against the code it deploys.

No provider can be downloaded here, so these tests stand in for `terraform validate`/`plan` on
what matters for mailbridge (terraform/README.md): one Cloud Run service per entry point, no
public IAM binding (domain-restricted sharing), least-privilege identities, secret rights only
under the prefix and no secret in the state, OIDC for machine callers, one place for every
timeout, the prefix on every name, ordering on a fresh project, Firestore, and monitoring.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import re
from pathlib import Path

import hcl2
import pytest

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
MAIN_PY = REPO / "functions" / "main.py"
INDEXES_PY = REPO / "functions" / "mailbridge" / "indexes.py"

BROWSER_FUNCTIONS = {"admin", "oauth_callback", "oauth_start"}
IAM_MEMBER_TYPES = (
    "google_project_iam_member",
    "google_project_iam_binding",
    "google_cloud_run_service_iam_member",
    "google_cloud_run_service_iam_binding",
    "google_cloud_run_v2_service_iam_member",
    "google_cloud_run_v2_service_iam_binding",
    "google_cloudfunctions2_function_iam_member",
    "google_secret_manager_secret_iam_member",
    "google_storage_bucket_iam_member",
    "google_pubsub_topic_iam_member",
    "google_pubsub_subscription_iam_member",
    "google_service_account_iam_member",
    "google_artifact_registry_repository_iam_member",
)
BOUNDED_VERSION = re.compile(r"^>=\s*\d+(\.\d+)*,\s*<\s*\d+(\.\d+)*$")
HCL_OPTIONS = hcl2.SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)


# --- Loading ---------------------------------------------------------------------------------


def load_hcl(path: Path) -> dict:
    with path.open() as handle:
        return hcl2.load(handle, serialization_options=HCL_OPTIONS)


@functools.cache
def parsed_files() -> dict[str, dict]:
    files = sorted(TERRAFORM.glob("*.tf"))
    assert files, f"no .tf files in {TERRAFORM}"
    return {path.name: load_hcl(path) for path in files}


def blocks(kind: str) -> list[dict]:
    """Top-level blocks of one kind (resource, data, variable, output, locals, terraform)."""
    return [block for document in parsed_files().values() for block in document.get(kind, [])]


def resources(resource_type: str, kind: str = "resource") -> dict[str, dict]:
    found: dict[str, dict] = {}
    for block in blocks(kind):
        for name, body in block.get(resource_type, {}).items():
            assert name not in found, f"{resource_type}.{name} declared twice"
            found[name] = body
    return found


def all_resources() -> list[tuple[str, str, dict]]:
    return [(kind, name, body) for block in blocks("resource") for kind, named in block.items()
            for name, body in named.items()]


def locals_() -> dict:
    merged: dict = {}
    for block in blocks("locals"):
        merged.update(block)
    return merged


def names_in_set_expression(expression: str) -> set[str]:
    """The names in an HCL literal such as ${toset(["a", "b"])}."""
    return set(re.findall(r'"([^"]+)"', expression))


def resolve_name_set(expression: str) -> set[str]:
    """A literal set, or a reference to a local holding one."""
    reference = re.fullmatch(r"\$\{local\.(\w+)\}", expression)
    if reference:
        return resolve_name_set(locals_()[reference.group(1)])
    return names_in_set_expression(expression)


def one(value):
    """A nested block as hcl2 gives it (a list of one dict)."""
    assert isinstance(value, list) and len(value) == 1, f"expected one block, got {value!r}"
    return value[0]


def depends_on(body: dict) -> list[str]:
    return [str(item) for item in body.get("depends_on", [])]


def entry_points() -> set[str]:
    if not MAIN_PY.exists():
        pytest.fail(f"{MAIN_PY.relative_to(REPO)} does not exist: cannot check the functions against its entry points")
    tree = ast.parse(MAIN_PY.read_text(), filename=str(MAIN_PY))
    found = set()
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            if (
                isinstance(target, ast.Attribute)
                and target.attr == "http"
                and isinstance(target.value, ast.Name)
                and target.value.id == "functions_framework"
            ):
                found.add(node.name)
    assert found, f"no @functions_framework.http function in {MAIN_PY.relative_to(REPO)}"
    return found


def functions_local() -> dict[str, dict]:
    return locals_()["functions"]


def service() -> dict:
    return resources("google_cloud_run_v2_service")["function"]


def container() -> dict:
    return one(one(service()["template"])["containers"])


def dynamic_env(for_each_mentions: str) -> dict:
    """The container's dynamic "env" block whose for_each mentions the given name."""
    found = [block["env"] for block in container()["dynamic"] if for_each_mentions in block["env"]["for_each"]]
    return one(found)


def iam_members() -> list[tuple[str, str, dict]]:
    return [(kind, name, body) for kind in IAM_MEMBER_TYPES for name, body in resources(kind).items()]


def custom_role_permissions() -> dict[str, list[str]]:
    return {
        f"${{google_project_iam_custom_role.{name}.id}}": body["permissions"]
        for name, body in resources("google_project_iam_custom_role").items()
    }


def variables() -> dict[str, dict]:
    found = {}
    for block in blocks("variable"):
        found.update(block)
    return found


def evaluate(expression: str, values: dict[str, int]) -> int:
    """A number or "${var.x - 60}"-style arithmetic, with var.* taken from `values`."""
    if isinstance(expression, (int, float)):
        return expression
    body = re.fullmatch(r"\$\{(.*)\}", expression.strip()).group(1)
    body = re.sub(r"var\.(\w+)", lambda match: str(values[match.group(1)]), body)
    assert re.fullmatch(r"[\d\s+\-*/()]+", body), f"not plain arithmetic: {expression!r}"
    return eval(body)  # noqa: S307 - digits and operators only, checked above


# --- Functions -------------------------------------------------------------------------------


def test_every_entry_point_has_exactly_one_service():
    assert set(functions_local()) == entry_points()
    assert service()["for_each"] == "${local.functions}"


def test_each_service_runs_its_own_entry_point():
    target = [env for env in container()["env"] if env.get("name") == "FUNCTION_TARGET"]
    assert target == [{"name": "FUNCTION_TARGET", "value": "${each.key}"}]
    dockerfile = (TERRAFORM / "build" / "Dockerfile").read_text()
    assert "functions-framework" in dockerfile and "--target" not in dockerfile, (
        "the image must leave the target to FUNCTION_TARGET so one image serves every function"
    )


def test_function_names_local_is_derived_from_the_functions_map():
    assert locals_()["function_names"] == "${toset(keys(local.functions))}"


def test_every_service_runs_as_a_service_account_of_its_own():
    template = one(service()["template"])
    assert template["service_account"] == "${google_service_account.function[each.key].email}"
    assert resources("google_service_account")["function"]["for_each"] == "${local.service_names}"


def test_the_default_compute_account_appears_nowhere():
    for path in TERRAFORM.glob("*.tf"):
        text = path.read_text()
        assert "compute@developer.gserviceaccount.com" not in text, path.name
        assert "appspot.gserviceaccount.com" not in text, path.name


def test_environment_gives_the_functions_every_setting_they_read():
    environment = locals_()["function_environment"]
    for key in (
        "GOOGLE_CLOUD_PROJECT",
        "MAILBRIDGE_INSTANCE",
        "MAILBRIDGE_FUNCTION_URLS",
        "MAILBRIDGE_PREFIX",
        "MAILBRIDGE_ATTACHMENTS_BUCKET",
        "MAILBRIDGE_PUBSUB_TOPIC",
        "MAILBRIDGE_INVOKER_SERVICE_ACCOUNT",
        "MAILBRIDGE_WORK_TOPIC",
    ):
        assert key in environment, key
    assert environment["MAILBRIDGE_FUNCTION_URLS"] == "${jsonencode(local.function_urls)}"
    assert environment["MAILBRIDGE_INVOKER_SERVICE_ACCOUNT"] == "${google_service_account.invoker.email}"
    settings = dynamic_env("local.function_environment")
    assert settings["for_each"] == "${merge(local.function_environment, local.function_extra_environment[each.key])}"
    assert one(settings["content"]) == {"name": "${env.key}", "value": "${env.value}"}


def test_function_urls_are_the_deterministic_run_app_urls_of_the_prefixed_services():
    assert "${local.service_names[name]}-${local.project_number}.${var.region}.run.app" in locals_()["function_urls"]
    assert '"${var.prefix}-${replace(name, "_", "-")}"' in locals_()["service_names"]


def test_admin_gets_its_sign_in_settings_and_nobody_else_does():
    extra = locals_()["function_extra_environment"]
    assert set(extra) == entry_points()
    assert extra["admin"]["MAILBRIDGE_ADMIN_EMAILS"] == '${join(",", var.admin_emails)}'
    assert extra["admin"]["MAILBRIDGE_ADMIN_DOMAIN"] == "${var.admin_domain}"
    assert extra["admin"]["MAILBRIDGE_ADMIN_OAUTH_CLIENT_ID"] == "${var.admin_oauth_client_id}"
    assert "admin_oauth_client_secret" in extra["admin"]["MAILBRIDGE_ADMIN_OAUTH_CLIENT_SECRET_ID"]
    for name, settings in extra.items():
        if name != "admin":
            assert not any(key.startswith("MAILBRIDGE_ADMIN_") for key in settings), name


def test_no_secret_value_is_passed_as_a_plain_environment_variable():
    environment = dict(locals_()["function_environment"])
    for settings in locals_()["function_extra_environment"].values():
        environment.update(settings)
    assert "MAILBRIDGE_SIGNING_KEY" not in environment, "the signing key comes from Secret Manager only"
    for key in environment:
        assert not re.search(r"SECRET$|TOKEN|PASSWORD", key), f"{key}: secrets reach the code through Secret Manager"


def test_signing_key_reaches_exactly_its_readers_from_secret_manager():
    readers = resolve_name_set(locals_()["signing_key_readers"])
    assert readers == {"admin", "oauth_start"}
    grant = resources("google_secret_manager_secret_iam_member")["signing_key_reader"]
    assert grant["for_each"] == "${local.signing_key_readers}"
    assert grant["role"] == "roles/secretmanager.secretAccessor"
    secret_env = one(dynamic_env("local.signing_key_readers")["content"])
    assert secret_env["name"] == "${env.value}"
    reference = one(one(secret_env["value_source"])["secret_key_ref"])
    assert reference["secret"] == "${google_secret_manager_secret.signing_key.secret_id}"
    assert reference["version"] == "${google_secret_manager_secret_version.signing_key.version}"


def test_functions_that_parse_mail_get_memory_for_gmails_largest_message_one_request_at_a_time():
    # poll and push parse mail: about 12 x the message plus ~100 MiB (docs/reliability.md)
    for name in ("poll", "push"):
        assert functions_local()[name]["memory"] == "${var.poll_memory}", name
        assert functions_local()[name]["concurrency"] == 1, name
    limits = one(container()["resources"])["limits"]
    assert limits["memory"] == "${each.value.memory}"
    default = variables()["poll_memory"]["default"]
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", default).groups()
    mebibytes = int(number) * (1024 if unit == "Gi" else 1)
    assert mebibytes >= 12 * 50 + 100, default


def test_poll_timeout_allows_a_backlog():
    assert functions_local()["poll"]["timeout_s"] == "${local.timeouts.poll_timeout_s}"
    assert variables()["poll_timeout_seconds"]["default"] >= 300


# --- Build -----------------------------------------------------------------------------------


def test_source_archive_is_functions_folder_with_its_requirements_and_no_caches():
    archive = resources("archive_file", kind="data")["functions_source"]
    assert archive["source_dir"] == "${path.module}/../functions"
    assert (REPO / "functions" / "requirements.txt").exists()
    for pattern in archive["excludes"]:
        assert not fnmatch.fnmatch("requirements.txt", pattern), f"{pattern} would drop requirements.txt"
    assert any(fnmatch.fnmatch("mailbridge/__pycache__/x.cpython-311.pyc", p) for p in archive["excludes"])


def test_image_tag_changes_with_the_code_and_the_build_runs_once_per_tag():
    assert "output_md5" in locals_()["functions_image"]
    build = resources("terraform_data")["functions_image"]
    assert build["triggers_replace"] == ["${local.functions_image}"]
    command = one(build["provisioner"])["local-exec"]
    assert "gcloud builds submit" in command["command"]
    assert command["environment"]["BUILD_SERVICE_ACCOUNT"] == "${google_service_account.build.id}"
    assert container()["image"] == "${local.functions_image}"
    assert "${terraform_data.functions_image}" in depends_on(service())


# The email package before 3.11.10 writes a CR/LF decoded from an encoded word as a real header
# (CVE-2024-6923); 3.11.15 also fixes CVE-2025-11468 and CVE-2026-1299 (header injection on
# serialization). docs/reliability.md, "Hostile senders".
PATCHED_PYTHON = (3, 11, 15)


def test_the_image_runs_a_pinned_patched_python_311():
    dockerfile = (TERRAFORM / "build" / "Dockerfile").read_text()
    (base,) = re.findall(r"^FROM\s+(\S+)", dockerfile, re.MULTILINE)
    pinned = re.fullmatch(r"python:(\d+)\.(\d+)\.(\d+)-slim", base)
    assert pinned, f"{base}: the base image must name an exact Python release (python:3.11.N-slim), not a moving tag"
    version = tuple(int(part) for part in pinned.groups())
    assert version[:2] == (3, 11), "the functions are written and tested for Python 3.11"
    assert version >= PATCHED_PYTHON, f"Python {version} has the email header injection of CVE-2024-6923 or later ones"


def test_no_lifecycle_rule_deletes_what_a_running_service_needs():
    # Services run the image in Artifact Registry; the build bucket only holds build inputs and logs.
    build_bucket = resources("google_storage_bucket")["build"]
    for rule in build_bucket["lifecycle_rule"]:
        condition = one(rule["condition"])
        assert condition.get("matches_prefix") == ["staging/", "logs/"] or condition.get("with_state") == "ARCHIVED", rule
    repository = resources("google_artifact_registry_repository")["functions"]
    keep = [policy for policy in repository["cleanup_policies"] if policy["action"] == "KEEP"]
    assert keep and one(keep[0]["most_recent_versions"])["keep_count"] >= 2, "the live image must never be cleaned up"


# --- Who may call what -----------------------------------------------------------------------


def test_no_public_principal_anywhere():
    # Domain-restricted sharing (organisations since May 2024) refuses allUsers/allAuthenticatedUsers.
    for path in TERRAFORM.glob("*.tf"):
        text = path.read_text()
        for public in ("allUsers", "allAuthenticatedUsers"):
            mentions = [line for line in text.splitlines() if public in line and not line.strip().startswith("#")
                        and "never" not in line and "!contains" not in line]
            assert not mentions, f"{path.name}: {mentions}"
    for kind, name, body in iam_members():
        members = [body.get("member", "")] + list(body.get("members", []))
        assert not any(member in ("allUsers", "allAuthenticatedUsers") for member in members), f"{kind}.{name}"


def test_invoker_iam_check_is_off_on_exactly_the_browser_facing_services():
    browser = {name for name, function in functions_local().items() if function["browser"] is True}
    assert browser == BROWSER_FUNCTIONS
    assert service()["invoker_iam_disabled"] == "${each.value.browser}"


def test_only_the_browser_pages_and_the_api_take_traffic_from_outside_the_project():
    assert service()["ingress"] == '${each.value.internet ? "INGRESS_TRAFFIC_ALL" : "INGRESS_TRAFFIC_INTERNAL_ONLY"}'
    internet = {name for name, function in functions_local().items() if function["internet"] is True}
    assert internet == BROWSER_FUNCTIONS | {"api"}
    for name in ("api", "poll", "push", "labels"):
        assert functions_local()[name]["browser"] is False, name


def test_the_api_is_invoked_by_the_api_callers_only_on_its_own_service():
    grant = resources("google_cloud_run_v2_service_iam_member")["api_invoker"]
    assert grant["for_each"] == "${toset(var.api_callers)}"
    assert grant["name"] == '${google_cloud_run_v2_service.function["api"].name}'
    assert (grant["role"], grant["member"]) == ("roles/run.invoker", "serviceAccount:${each.value}")
    assert variables()["api_callers"]["default"] == []
    assert locals_()["function_extra_environment"]["api"]["MAILBRIDGE_API_CALLERS"] == '${join(",", var.api_callers)}'
    other_grants = [name for kind, name, body in iam_members() if "var.api_callers" in str(body) and name != "api_invoker"]
    assert other_grants == []


def test_api_callers_are_service_account_emails():
    pattern = validation_pattern("api_callers")
    assert pattern.search("helpdesk@acme-helpdesk.iam.gserviceaccount.com")
    for refused in ("serviceAccount:helpdesk@acme-helpdesk.iam.gserviceaccount.com", "allUsers",
                    "someone@example.com", "helpdesk@acme-helpdesk.iam.gserviceaccount.com,b@p.iam.gserviceaccount.com"):
        assert not pattern.search(refused), refused


def test_labels_function_is_callable_by_nobody_unless_named():
    grant = resources("google_cloud_run_v2_service_iam_member")["labels_invoker"]
    assert grant["for_each"] == "${toset(var.labels_invokers)}"
    assert variables()["labels_invokers"]["default"] == []
    condition = one(variables()["labels_invokers"]["validation"])["condition"]
    assert '"allUsers", "allAuthenticatedUsers"' in condition


def test_scheduler_posts_to_poll_with_an_oidc_token_of_the_invoker_account():
    job = resources("google_cloud_scheduler_job")["poll"]
    target = one(job["http_target"])
    token = one(target["oidc_token"])

    assert target["http_method"] == "POST"
    assert target["uri"] == '${local.function_urls["poll"]}'
    assert token["audience"] == target["uri"]
    assert token["service_account_email"] == "${google_service_account.invoker.email}"
    assert job["paused"] == "${!var.use_scheduling_service}"
    assert int(one(job["retry_config"])["retry_count"]) >= 1


def test_invoker_account_may_invoke_poll_and_push_and_nothing_else():
    grants = [(kind, name, body) for kind, name, body in iam_members()
              if body.get("member") == "${google_service_account.invoker.member}"]
    assert [(kind, name) for kind, name, _ in grants] == [("google_cloud_run_v2_service_iam_member", "invoker")]
    _, _, body = grants[0]
    assert body["role"] == "roles/run.invoker"
    assert resolve_name_set(body["for_each"]) == {"poll", "push"}


def push_queue(key: str) -> dict:
    """One queue's values in local.push_queue_settings (pubsub.tf): "gmail", "work" or "events"."""
    return locals_()["push_queue_settings"][key]


def test_push_subscriptions_deliver_with_oidc_retries_and_dead_letters():
    subscription = resources("google_pubsub_subscription")["push"]
    push_config = one(subscription["push_config"])
    token = one(push_config["oidc_token"])

    assert push_config["push_endpoint"] == "${each.value.endpoint}"
    assert token["audience"] == push_config["push_endpoint"]
    assert token["service_account_email"] == "${each.value.service_account}"
    for key in ("gmail", "work"):  # to our push service, as the invoker account
        assert push_queue(key)["endpoint"] == '${local.function_urls["push"]}', key
        assert push_queue(key)["service_account"] == "${google_service_account.invoker.email}", key
        assert push_queue(key)["ack_deadline_s"] == "${local.timeouts.push_ack_deadline_s}", key
        assert push_queue(key)["ordered"] is False and push_queue(key)["unwrapped"] is False, key
    assert one(subscription["dead_letter_policy"])["dead_letter_topic"] == "${google_pubsub_topic.dead_letter[each.key].id}"
    assert resources("google_pubsub_topic")["dead_letter"]["for_each"] == "${local.push_queues}"
    assert one(subscription["retry_policy"])["minimum_backoff"] == "${each.value.minimum_backoff}"
    assert push_queue("gmail")["topic"] == "${one(google_pubsub_topic.gmail_push[*].id)}"
    assert push_queue("gmail")["topic_name"] == "${local.pubsub_topic_name}"
    for key in ("gmail", "work", "events"):
        assert push_queue(key)["minimum_backoff"] and push_queue(key)["max_delivery_attempts"] > 1, key


def test_every_former_pubsub_address_moves_to_its_queue_entry():
    # An existing deployment keeps its subscriptions (and their undelivered messages).
    moved = {block["from"]: block["to"] for block in blocks("moved")}
    for old, new in [
        ("google_pubsub_subscription.gmail_push[0]", 'google_pubsub_subscription.push["gmail"]'),
        ("google_pubsub_subscription.work_push", 'google_pubsub_subscription.push["work"]'),
        ("google_pubsub_topic.gmail_push_dead_letter[0]", 'google_pubsub_topic.dead_letter["gmail"]'),
        ("google_pubsub_topic.work_dead_letter", 'google_pubsub_topic.dead_letter["work"]'),
        ("google_pubsub_subscription.gmail_push_dead_letter[0]", 'google_pubsub_subscription.dead_letter["gmail"]'),
        ("google_pubsub_subscription.work_dead_letter", 'google_pubsub_subscription.dead_letter["work"]'),
        ("google_pubsub_topic_iam_member.dead_letter_publisher[0]",
         'google_pubsub_topic_iam_member.dead_letter_publisher["gmail"]'),
        ("google_pubsub_topic_iam_member.work_dead_letter_publisher",
         'google_pubsub_topic_iam_member.dead_letter_publisher["work"]'),
        ("google_pubsub_subscription_iam_member.dead_letter_subscriber[0]",
         'google_pubsub_subscription_iam_member.dead_letter_subscriber["gmail"]'),
        ("google_pubsub_subscription_iam_member.work_dead_letter_subscriber",
         'google_pubsub_subscription_iam_member.dead_letter_subscriber["work"]'),
    ]:
        assert moved.get("${" + old + "}") == "${" + new + "}", old
    for target in moved.values():
        kind, name = target[2:].split("[")[0].split(".")
        assert name in resources(kind), target


def test_push_is_a_switch_and_everything_gmail_push_needs_follows_it():
    assert variables()["enable_push"]["default"] is True
    assert locals_()["push_enabled"] == "${var.enable_push}"
    for kind in ("google_pubsub_topic", "google_pubsub_topic_iam_member"):
        for name, body in resources(kind).items():
            if name.startswith(("work", "event")):
                continue  # the work queue (queue.tf) and ticket events (events.tf) are not part of Gmail push
            if "for_each" in body:  # one per queue: Gmail's only with push (below)
                assert body["for_each"] == "${local.push_queues}", f"{kind}.{name}"
                continue
            assert body["count"] == "${local.push_enabled ? 1 : 0}", f"{kind}.{name}"
    assert locals_()["push_queues"] == "${{for key, queue in local.push_queue_settings : key => queue if queue.enabled}}"
    assert locals_()["push_subscriptions"] == (
        "${{for key, queue in local.push_queue_settings : key => queue if queue.subscribed}}")
    assert push_queue("gmail")["enabled"] == "${local.push_enabled}"
    assert push_queue("gmail")["subscribed"] == "${local.push_subscription}"
    assert resources("google_pubsub_subscription")["push"]["for_each"] == "${local.push_subscriptions}"
    assert resources("google_pubsub_subscription_iam_member")["dead_letter_subscriber"]["for_each"] == (
        "${local.push_subscriptions}")


def test_without_push_polling_alone_runs_on_a_shorter_schedule():
    assert variables()["schedule"]["default"] == ""
    schedule = locals_()["poll_schedule"]
    assert schedule == '${var.schedule != "" ? var.schedule : (local.push_enabled ? "*/5 * * * *" : "* * * * *")}'
    assert resources("google_cloud_scheduler_job")["poll"]["schedule"] == "${local.poll_schedule}"


def test_work_queue_pushes_tasks_to_push_with_oidc_retries_and_dead_letters():
    subscription = resources("google_pubsub_subscription")["push"]
    push_config = one(subscription["push_config"])
    token = one(push_config["oidc_token"])
    assert subscription["topic"] == "${each.value.topic}"
    assert push_queue("work")["topic"] == "${google_pubsub_topic.work.id}"
    assert resources("google_pubsub_topic")["work"]["name"] == "${var.prefix}-work" == push_queue("work")["topic_name"]
    assert push_queue("work")["endpoint"] == '${local.function_urls["push"]}'
    assert token["audience"] == push_config["push_endpoint"]
    assert push_queue("work")["service_account"] == "${google_service_account.invoker.email}"
    assert subscription["ack_deadline_seconds"] == "${each.value.ack_deadline_s}"
    assert one(subscription["dead_letter_policy"])["dead_letter_topic"] == "${google_pubsub_topic.dead_letter[each.key].id}"
    assert one(subscription["retry_policy"])["minimum_backoff"] == "${each.value.minimum_backoff}"
    assert "count" not in subscription
    # tasks flow whether or not Gmail push is on: "work" is never filtered out
    assert push_queue("work")["enabled"] is True and push_queue("work")["subscribed"] is True
    assert locals_()["function_environment"]["MAILBRIDGE_WORK_TOPIC"] == "${google_pubsub_topic.work.id}"


def test_the_functions_that_queue_work_may_publish_to_the_work_topic_and_nobody_else():
    grants = {name: body for name, body in resources("google_pubsub_topic_iam_member").items()
              if body["topic"] == "${google_pubsub_topic.work.name}"}
    assert list(grants) == ["work_publishers"]
    grant = grants["work_publishers"]
    assert grant["role"] == "roles/pubsub.publisher"
    assert grant["member"] == "${google_service_account.function[each.key].member}"
    assert resolve_name_set(grant["for_each"]) == {"admin", "api", "poll", "push"}


def test_pubsub_may_mint_oidc_tokens_for_the_work_queue_even_without_gmail_push():
    grant = resources("google_service_account_iam_member")["pubsub_mints_invoker_tokens"]
    assert grant["count"] == 1
    assert grant["role"] == "roles/iam.serviceAccountTokenCreator"


def test_ticket_events_have_their_topic_and_the_functions_that_change_tickets_may_publish_there_only():
    topic = resources("google_pubsub_topic")["events"]
    assert topic["name"] == "${var.prefix}-events" == push_queue("events")["topic_name"]
    assert push_queue("events")["topic"] == "${google_pubsub_topic.events.id}"
    grants = {name: body for name, body in resources("google_pubsub_topic_iam_member").items()
              if body["topic"] == "${google_pubsub_topic.events.name}"}
    assert list(grants) == ["event_publishers"]
    assert grants["event_publishers"]["role"] == "roles/pubsub.publisher"
    publishers = resolve_name_set(grants["event_publishers"]["for_each"])
    assert publishers == {"admin", "api", "poll", "push"}
    extra = locals_()["function_extra_environment"]
    given = {name for name, settings in extra.items() if "MAILBRIDGE_EVENTS_TOPIC" in settings}
    assert given == publishers, "the topic goes exactly where publishing is allowed"
    assert all(extra[name]["MAILBRIDGE_EVENTS_TOPIC"] == "${google_pubsub_topic.events.id}" for name in given)


def test_ticket_events_push_to_the_helpdesk_in_order_with_oidc_backoff_and_dead_letters():
    events = push_queue("events")
    assert events["endpoint"] == "${var.event_push_endpoint}"
    assert events["enabled"] == events["subscribed"] == "${local.event_push}"
    assert locals_()["event_push"] == '${var.event_push_endpoint != ""}'
    assert events["service_account"] == "${one(google_service_account.event_pusher[*].email)}"
    assert events["ordered"] is True and events["unwrapped"] is True
    assert events["minimum_backoff"] < events["maximum_backoff"]
    subscription = resources("google_pubsub_subscription")["push"]
    assert subscription["enable_message_ordering"] == "${each.value.ordered}"
    wrapper = one(one(subscription["push_config"])["dynamic"])["no_wrapper"]
    assert wrapper["for_each"] == "${each.value.unwrapped ? [true] : []}"
    pusher = resources("google_service_account")["event_pusher"]
    assert pusher["count"] == "${local.event_push ? 1 : 0}"
    minting = resources("google_service_account_iam_member")["pubsub_mints_event_pusher_tokens"]
    assert minting["role"] == "roles/iam.serviceAccountTokenCreator" and minting["member"] == "${local.pubsub_service_agent}"
    assert "${google_service_account_iam_member.pubsub_mints_event_pusher_tokens}" in depends_on(subscription)
    assert not [kind for kind, name, body in iam_members() if body.get("member") == "${google_service_account.event_pusher[0].member}"]


def test_event_subscribers_may_pull_from_an_ordered_subscription_and_nothing_else():
    pull = resources("google_pubsub_subscription")["events_pull"]
    assert pull["count"] == "${length(var.event_subscribers) > 0 ? 1 : 0}"
    assert pull["topic"] == "${google_pubsub_topic.events.id}" and pull["enable_message_ordering"] is True
    grant = resources("google_pubsub_subscription_iam_member")["event_subscribers"]
    assert grant["for_each"] == "${toset(var.event_subscribers)}"
    assert grant["role"] == "roles/pubsub.subscriber"
    assert grant["member"] == "serviceAccount:${each.value}"
    assert grant["subscription"] == "${google_pubsub_subscription.events_pull[0].name}"
    condition = one(variables()["event_subscribers"]["validation"])["condition"]
    pattern = re.search(r'regex\("([^"]+)"', condition).group(1).replace("\\\\", "\\")  # HCL's escapes
    assert re.search(pattern, "helpdesk@acme-prod.iam.gserviceaccount.com")
    assert not re.search(pattern, "serviceAccount:helpdesk@acme-prod.iam.gserviceaccount.com")


def test_gmail_may_publish_to_the_push_topic():
    grant = resources("google_pubsub_topic_iam_member")["gmail_publisher"]
    assert grant["member"] == "serviceAccount:gmail-api-push@system.gserviceaccount.com"
    assert grant["role"] == "roles/pubsub.publisher"
    assert grant["topic"].startswith("${google_pubsub_topic.gmail_push[")


# --- Timeouts: one place ---------------------------------------------------------------------


def timeouts_for(values: dict[str, int]) -> dict[str, int]:
    return {key: evaluate(expression, values) for key, expression in locals_()["timeouts"].items()}


def variable_bounds(name: str) -> list[int]:
    condition = one(variables()[name]["validation"])["condition"]
    low = int(re.search(rf"var\.{name} >= (\d+)", condition).group(1))
    high = int(re.search(rf"var\.{name} <= (\d+)", condition).group(1))
    return [low, variables()[name]["default"], high]


@pytest.mark.parametrize("poll_timeout", variable_bounds("poll_timeout_seconds"))
def test_poll_budget_is_below_poll_timeout_which_is_within_the_scheduler_deadline(poll_timeout):
    timeouts = timeouts_for({"poll_timeout_seconds": poll_timeout, "push_timeout_seconds": 60,
                             "function_timeout_seconds": 60})
    assert 0 < timeouts["poll_time_budget_s"] < timeouts["poll_timeout_s"] <= timeouts["scheduler_deadline_s"] <= 1800


@pytest.mark.parametrize("push_timeout", variable_bounds("push_timeout_seconds"))
def test_push_budget_is_below_push_timeout_which_equals_the_ack_deadline(push_timeout):
    timeouts = timeouts_for({"poll_timeout_seconds": 540, "push_timeout_seconds": push_timeout,
                             "function_timeout_seconds": 60})
    assert 0 < timeouts["push_time_budget_s"] < timeouts["push_timeout_s"] == timeouts["push_ack_deadline_s"] <= 600


@pytest.mark.parametrize("timeout", variable_bounds("function_timeout_seconds"))
def test_an_api_reply_stops_waiting_for_its_send_well_before_the_api_times_out(timeout):
    timeouts = timeouts_for({"poll_timeout_seconds": 540, "push_timeout_seconds": 60, "function_timeout_seconds": timeout})
    assert 0 < timeouts["api_reply_wait_s"] <= timeouts["api_timeout_s"] - 5


def test_every_timeout_is_read_from_the_one_place():
    assert functions_local()["api"]["timeout_s"] == "${local.timeouts.api_timeout_s}"
    assert functions_local()["poll"]["timeout_s"] == "${local.timeouts.poll_timeout_s}"
    assert functions_local()["push"]["timeout_s"] == "${local.timeouts.push_timeout_s}"
    assert one(service()["template"])["timeout"] == "${each.value.timeout_s}s"
    assert resources("google_cloud_scheduler_job")["poll"]["attempt_deadline"] == "${local.timeouts.scheduler_deadline_s}s"
    subscription = resources("google_pubsub_subscription")["push"]
    assert subscription["ack_deadline_seconds"] == "${each.value.ack_deadline_s}"
    for key in ("gmail", "work"):
        assert push_queue(key)["ack_deadline_s"] == "${local.timeouts.push_ack_deadline_s}", key
    extra = locals_()["function_extra_environment"]
    assert extra["poll"]["MAILBRIDGE_POLL_TIME_BUDGET_S"] == "${tostring(local.timeouts.poll_time_budget_s)}"
    assert extra["push"]["MAILBRIDGE_PUSH_TIME_BUDGET_S"] == "${tostring(local.timeouts.push_time_budget_s)}"
    assert extra["api"]["MAILBRIDGE_REPLY_WAIT_S"] == "${tostring(local.timeouts.api_reply_wait_s)}"


# --- Names: every one carries the prefix -----------------------------------------------------

NAME_ATTRIBUTES = ("name", "account_id", "secret_id", "role_id", "repository_id", "display_name")
# Names Google fixes: the Firestore database, and resources that only point at another one.
NAMELESS_TYPES = ("google_firestore_database",)


def service_name(function: str, prefix: str) -> str:
    """local.service_names[function], rendered from the local's own template."""
    template = re.search(r'=> "(.*)"\}+$', locals_()["service_names"]).group(1)
    return render(template.replace('${replace(name, "_", "-")}', function.replace("_", "-")), prefix)


def render(text: str, prefix: str, each: dict | None = None) -> str:
    """One name as Terraform would render it for a prefix (project id "p")."""
    each = each or {}
    substitutions = {
        "var.prefix": prefix,
        'replace(var.prefix, "-", "_")': prefix.replace("-", "_"),
        "var.project_id": "p",
        "var.region": "r",
        "var.instance": "production",
        "each.key": each.get("key", ""),
        "each.value": each.get("value", ""),
    }

    def substitute(match: re.Match) -> str:
        inner = match.group(1)
        if inner in substitutions:
            if inner.startswith("each.") and not each:
                raise AssertionError(f"{text!r} uses {inner} outside a for_each")
            return substitutions[inner]
        local = re.fullmatch(r"local\.(\w+)", inner)
        if local and isinstance(locals_()[local.group(1)], str):
            return render(locals_()[local.group(1)], prefix, each)
        other_variable = re.fullmatch(r"var\.(\w+)", inner)
        if other_variable and other_variable.group(1) != "prefix":
            return str(variables()[other_variable.group(1)]["default"])
        attribute = re.fullmatch(r"each\.value\.(\w+)", inner)
        if attribute and "object" in each:
            return render(str(each["object"][attribute.group(1)]), prefix, each)
        if inner == "local.service_names[each.key]":
            return service_name(each["key"], prefix)
        replaced = re.fullmatch(r'replace\(each\.key, "_", " "\)', inner)
        if replaced:
            return each["key"].replace("_", " ")
        raise AssertionError(f"cannot render {inner!r} in {text!r}")

    previous = None
    while previous != text:
        previous, text = text, re.sub(r"\$\{([^${}]*)\}", substitute, text)
    return text


def for_each_items(body: dict, prefix: str) -> list[dict]:
    """(key, value) pairs a for_each iterates, for the for_each expressions names depend on."""
    expression = body.get("for_each")
    if expression is None:
        return [{}]
    if expression == "${local.service_names}":
        return [{"key": name, "value": service_name(name, prefix)} for name in entry_points()]
    reference = re.fullmatch(r"\$\{local\.(\w+)\}", expression)
    if reference and isinstance(locals_()[reference.group(1)], str):  # a filter of a map local: all its entries
        filtered = re.fullmatch(r"\$\{\{for \w+, \w+ in local\.(\w+) : .*\}\}", locals_()[reference.group(1)])
        reference = filtered or reference
    if reference and isinstance(locals_()[reference.group(1)], dict):
        return [{"key": key, "value": "", "object": value} for key, value in locals_()[reference.group(1)].items()]
    return [{"key": key, "value": key} for key in resolve_name_set(expression)]


def rendered_names(prefix: str) -> list[tuple[str, str]]:
    names = []
    for kind, resource_name, body in all_resources():
        if kind.endswith(("_iam_member", "_iam_binding")) or kind in NAMELESS_TYPES:
            continue
        for attribute in NAME_ATTRIBUTES:
            if isinstance(body.get(attribute), str):
                for each in for_each_items(body, prefix):
                    names.append((f"{kind}.{resource_name}.{attribute}", render(body[attribute], prefix, each)))
    dashboard = resources("google_monitoring_dashboard")["mailbridge"]["dashboard_json"]
    names.append(("dashboard", render(re.search(r'displayName = "([^"]+)"', dashboard).group(1), prefix)))
    return names


def test_every_resource_name_carries_the_prefix():
    names = rendered_names("zz-prefix")
    assert len(names) > 20
    for where, name in names:
        assert "zz-prefix" in name or "zz_prefix" in name, f"{where} renders to {name!r} without the prefix"


def test_two_prefixes_share_no_name():
    # Production and UAT side by side in one project (terraform/README.md).
    production = {name for _, name in rendered_names("mb-prod")}
    uat = {name for _, name in rendered_names("mb-uat")}
    assert not production & uat, sorted(production & uat)


def test_prefix_validation_keeps_service_account_ids_within_30_characters():
    condition = one(variables()["prefix"]["validation"])["condition"]
    pattern = re.search(r'regex\("([^"]+)"', condition).group(1)
    longest = max(len(name) for kind, name in (
        (where, name) for where, name in rendered_names("a" * 15) if ".account_id" in where))
    assert longest <= 30
    assert re.search(pattern, "mailbridge")
    assert re.search(pattern, "a" * 15)
    assert not re.search(pattern, "a" * 16)
    assert not re.search(pattern, "Mail_Bridge")


# --- Ordering on a fresh project -------------------------------------------------------------


def test_apis_come_first_and_are_given_time_to_propagate():
    wait = resources("time_sleep")["apis_propagate"]
    assert depends_on(wait) == ["${google_project_service.service}"]
    project = resources("google_project", kind="data")["this"]
    assert depends_on(project), "the project number is read after the Resource Manager API is on"
    for kind in ("google_service_account", "google_project_iam_custom_role", "google_secret_manager_secret",
                 "google_storage_bucket", "google_pubsub_topic", "google_firestore_database",
                 "google_firestore_index", "google_firestore_field", "google_artifact_registry_repository",
                 "google_logging_metric"):
        for name, body in resources(kind).items():
            assert "${time_sleep.apis_propagate}" in depends_on(body), f"{kind}.{name} may run before its API is on"


def test_the_pubsub_service_agent_exists_before_it_is_granted_anything():
    identity = resources("google_project_service_identity")["pubsub"]
    assert identity["service"] == "pubsub.googleapis.com"
    assert locals_()["pubsub_service_agent"] == "serviceAccount:${google_project_service_identity.pubsub.email}"
    assert "gcp-sa-pubsub" not in (TERRAFORM / "pubsub.tf").read_text(), "never spell the agent by hand"


def test_builds_and_services_wait_for_their_grants_to_propagate():
    wait = resources("time_sleep")["grants_propagate"]
    waited_for = set(depends_on(wait))
    for grant in ("google_artifact_registry_repository_iam_member.build_pushes_images",
                  "google_storage_bucket_iam_member.build_reads_sources_writes_logs",
                  "google_project_iam_member.firestore_user",
                  "google_project_iam_member.credential_secret_reader",
                  "google_project_iam_member.client_secret_reader",
                  "google_secret_manager_secret_iam_member.signing_key_reader"):
        assert f"${{{grant}}}" in waited_for, grant
    assert "${time_sleep.grants_propagate}" in depends_on(resources("terraform_data")["functions_image"])
    assert "${time_sleep.grants_propagate}" in depends_on(service())


def test_scheduler_and_push_subscription_wait_for_the_invoker_grant():
    assert "${google_cloud_run_v2_service_iam_member.invoker}" in depends_on(resources("google_cloud_scheduler_job")["poll"])
    assert "${google_cloud_run_v2_service_iam_member.invoker}" in depends_on(
        resources("google_pubsub_subscription")["push"])


# --- Secrets ---------------------------------------------------------------------------------


def test_no_project_wide_secret_rights_without_a_prefix_condition():
    custom_roles = custom_role_permissions()
    assert locals_()["credential_secret_prefix"] == "${var.prefix}-cred-"
    prefix_check = 'resource.name.startsWith("projects/${local.project_number}/secrets/${local.credential_secret_prefix}")'
    assert locals_()["credential_secret_condition"]["expression"] == prefix_check
    assert locals_()["client_secret_condition"]["expression"].startswith(prefix_check + " && ")

    conditioned = 0
    for kind in ("google_project_iam_member", "google_project_iam_binding"):
        for name, body in resources(kind).items():
            role = body["role"]
            assert role != "roles/secretmanager.admin", f"{kind}.{name}: never secretmanager.admin project-wide"
            permissions = custom_roles.get(role, [])
            if role.startswith("roles/secretmanager.") or any(p.startswith("secretmanager.") for p in permissions):
                if permissions == ["secretmanager.secrets.create"]:
                    # Checked on the parent project, so a secret-name condition could never match;
                    # creating an empty secret gives no access to any secret's data.
                    assert "condition" not in body
                    continue
                assert "condition" in body, f"{kind}.{name} grants {role} on every secret of the project"
                assert one(body["condition"])["expression"] in (
                    "${local.credential_secret_condition.expression}", "${local.client_secret_condition.expression}")
                conditioned += 1
    assert conditioned == 4, "expected conditioned reader, client reader, writer and revoker grants"
    assert not resources("google_project_iam_policy"), "authoritative project policies are out of scope"


def test_client_secret_condition_admits_client_secrets_and_not_refresh_tokens():
    expression = locals_()["client_secret_condition"]["expression"]
    suffix = re.search(r'endsWith\\?\("([^"\\]+)\\?"\)', expression) or re.search(r'endsWith\("([^"]+)"\)', expression)
    assert suffix.group(1) == "-client"
    assert '.extract("/secrets/{id}/versions/")' in expression
    models_py = (REPO / "functions" / "mailbridge" / "domain" / "models.py").read_text()
    assert 'f"{prefix}-cred-{digest}-{kind}"' in models_py, "secret ids changed: update the conditions in main.tf"


def test_secret_rights_match_what_each_function_does():
    readers = resolve_name_set(locals_()["credential_secret_readers"])
    client_readers = resolve_name_set(locals_()["client_secret_readers"])
    assert readers == entry_points() - {"oauth_start"}
    assert client_readers == {"oauth_start"}, "oauth_start needs client secrets only, never refresh tokens"
    assert resolve_name_set(locals_()["credential_secret_writers"]) == {"admin", "oauth_callback"}
    assert resolve_name_set(locals_()["credential_secret_revokers"]) == {"admin"}
    roles = resources("google_project_iam_custom_role")
    assert roles["credential_secret_creator"]["permissions"] == ["secretmanager.secrets.create"]
    assert "secretmanager.versions.add" in roles["credential_secret_writer"]["permissions"]
    for role in roles.values():
        assert "secretmanager.secrets.delete" not in role["permissions"]
        assert "secretmanager.secrets.setIamPolicy" not in role["permissions"]


def test_no_secret_value_is_ever_in_the_state():
    for kind, name, body in all_resources():
        assert "secret_data" not in body, f"{kind}.{name}: secret_data is stored in the state; use secret_data_wo"
    assert not resources("random_password"), "a random_password resource keeps its result in the state"
    version = resources("google_secret_manager_secret_version")
    assert set(version) == {"signing_key"}, "only the signing key is written by Terraform"
    assert version["signing_key"]["secret_data_wo"] == "${ephemeral.random_password.signing_key.result}"
    assert version["signing_key"]["secret_data_wo_version"] == "${var.signing_key_version}"
    assert resources("random_password", kind="ephemeral")["signing_key"]["length"] >= 32


def test_admin_sign_in_client_secret_is_readable_by_admin_only():
    grant = resources("google_secret_manager_secret_iam_member")["admin_oauth_client_secret_reader"]
    assert grant["secret_id"] == "${google_secret_manager_secret.admin_oauth_client_secret.secret_id}"
    assert grant["member"] == '${google_service_account.function["admin"].member}'
    assert grant["role"] == "roles/secretmanager.secretAccessor"


# --- Least privilege -------------------------------------------------------------------------


def test_no_broad_project_roles():
    for kind in ("google_project_iam_member", "google_project_iam_binding"):
        for name, body in resources(kind).items():
            assert body["role"] not in ("roles/owner", "roles/editor", "roles/viewer"), f"{kind}.{name}"
            assert not body["role"].startswith("roles/storage."), f"{kind}.{name}: storage rights are per bucket"


def test_functions_do_not_get_log_writer_for_stdout_logs():
    for name, body in resources("google_project_iam_member").items():
        if body["role"] == "roles/logging.logWriter":
            assert body["member"] == "${google_service_account.build.member}", name


def test_attachments_bucket_is_private_versioned_expires_and_grants_object_user_only():
    bucket = resources("google_storage_bucket")["attachments"]
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"
    assert one(bucket["versioning"])["enabled"] is True
    ages = [one(rule["condition"]).get("age") for rule in bucket["lifecycle_rule"]]
    assert "${var.attachment_retention_days}" in ages
    grant = resources("google_storage_bucket_iam_member")["attachment_writer"]
    assert grant["role"] == "roles/storage.objectUser"
    assert resolve_name_set(locals_()["attachment_writers"]) == {"admin", "api", "poll", "push"}


def test_build_account_touches_only_its_bucket_and_its_repository():
    grants = [(kind, name, body) for kind, name, body in iam_members()
              if body.get("member") == "${google_service_account.build.member}"]
    where = {(kind, body.get("bucket") or body.get("repository") or body.get("project")) for kind, _, body in grants}
    assert where == {
        ("google_storage_bucket_iam_member", "${google_storage_bucket.build.name}"),
        ("google_artifact_registry_repository_iam_member", "${google_artifact_registry_repository.functions.name}"),
        ("google_project_iam_member", "${var.project_id}"),
    }


# --- Firestore -------------------------------------------------------------------------------


def declared_indexes() -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """The entries of local.firestore_indexes, from which google_firestore_index.composite builds one
    index each (test_each_index_entry_becomes_one_index_with_its_fields_in_order)."""
    return {(index["collection"], tuple((field["field_path"], field["order"]) for field in index["fields"]))
            for index in locals_()["firestore_indexes"].values()}


def code_indexes() -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    tree = ast.parse(INDEXES_PY.read_text(), filename=str(INDEXES_PY))
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(target, ast.Name) and target.id == "COMPOSITE_INDEXES" for target in targets):
            value = ast.literal_eval(node.value)
            return {(index["collection"], tuple(tuple(field) for field in index["fields"])) for index in value}
    pytest.fail(f"{INDEXES_PY.relative_to(REPO)} has no literal COMPOSITE_INDEXES")


def test_firestore_declares_exactly_the_composite_indexes_the_code_needs():
    # Every index costs a write per indexed document: keep terraform/firestore.tf to the code's list.
    assert INDEXES_PY.exists(), f"{INDEXES_PY.relative_to(REPO)} holds the list terraform/firestore.tf must match"
    assert code_indexes() == declared_indexes()


def test_firestore_indexes_target_the_default_native_database():
    database = resources("google_firestore_database")["default"]
    assert database["name"] == "(default)"
    assert database["type"] == "FIRESTORE_NATIVE"
    assert database["count"] == "${var.create_firestore_database ? 1 : 0}"
    for name, body in resources("google_firestore_index").items():
        assert body["database"] == "(default)", name
    for key, index in locals_()["firestore_indexes"].items():
        assert len(index["fields"]) >= 2, f"{key}: a composite index has at least two fields"


def test_each_index_entry_becomes_one_index_with_its_fields_in_order():
    assert set(resources("google_firestore_index")) == {"composite"}
    index = resources("google_firestore_index")["composite"]
    assert index["for_each"] == "${local.firestore_indexes}"
    assert index["collection"] == "${each.value.collection}"
    [dynamic] = index["dynamic"]
    assert dynamic["fields"]["for_each"] == "${each.value.fields}"
    assert dynamic["fields"]["content"] == [{"field_path": "${fields.value.field_path}",
                                             "order": "${fields.value.order}"}]
    for key, entry in locals_()["firestore_indexes"].items():
        assert key == "_".join([entry["collection"], *(field["field_path"] for field in entry["fields"])]), key


def test_every_former_index_address_moves_to_its_entry():
    # An existing deployment keeps its indexes instead of deleting and rebuilding them.
    moved = {block["from"]: block["to"] for block in blocks("moved")}
    for key in ("tickets_mailbox_number", "tickets_status_number", "tickets_mailbox_status_number",
                "inbound_mailbox_processed_at"):
        assert key in locals_()["firestore_indexes"], key
        assert moved.get("${google_firestore_index." + key + "}") == (
            '${google_firestore_index.composite["' + key + '"]}'), key


def test_short_lived_collections_expire_by_ttl_on_expires_at():
    collections = resolve_name_set(locals_()["ttl_collections"])
    assert {"oauth_states", "nonces", "ack_limits", "send_budget", "admin_sessions", "events"} <= collections
    field = resources("google_firestore_field")["expires_at"]
    assert field["for_each"] == "${local.ttl_collections}"
    assert field["collection"] == "${each.value}"
    assert field["field"] == "expires_at"
    assert field["ttl_config"] == [{}]


def test_ttl_collections_are_collections_the_code_uses():
    code = "\n".join(path.read_text() for path in (REPO / "functions").rglob("*.py"))
    used = set(re.findall(r'collection\("(\w+)"\)', code))
    planned = {"admin_sessions"}  # Sign in with Google sessions: written once the admin sign-in lands
    assert resolve_name_set(locals_()["ttl_collections"]) - used <= planned


# --- Monitoring ------------------------------------------------------------------------------


def alert_policies() -> dict[str, dict]:
    return resources("google_monitoring_alert_policy")


def test_log_based_metrics_count_the_events_that_need_attention():
    counters = locals_()["log_counters"]
    assert set(counters) >= {"credential_disconnected", "message_quarantined", "mailbox_polled", "poll_failed"}
    metric = resources("google_logging_metric")["counter"]
    assert metric["for_each"] == "${local.log_counters}"
    assert "${local.log_filter}" in metric["filter"]
    assert metric["label_extractors"] == {"mailbox": "EXTRACT(jsonPayload.mailbox)"}
    latency = resources("google_logging_metric")["push_latency"]
    assert one(latency["metric_descriptor"])["value_type"] == "DISTRIBUTION"
    assert latency["value_extractor"] == "EXTRACT(jsonPayload.latency_s)"


def test_every_alert_the_operators_need_exists_and_notifies_the_channels():
    policies = alert_policies()
    assert set(policies) >= {"counter", "mailbox_not_polled", "dead_letter_backlog", "push_latency"}
    assert set(locals_()["counter_alerts"]) >= {"credential_disconnected", "message_quarantined", "poll_failed"}
    assert set(locals_()["counter_alerts"]) <= set(locals_()["log_counters"])
    assert policies["counter"]["for_each"] == "${local.counter_alerts}"
    for name, body in policies.items():
        assert body["notification_channels"] == "${local.notification_channels}", name
        assert one(body["documentation"])["content"], f"{name}: say what to do"
    for name, alert in locals_()["counter_alerts"].items():
        assert alert["what_to_do"], f"{name}: say what to do"
    assert locals_()["notification_channels"].startswith("${concat(var.notification_channels, ")


def test_no_successful_poll_for_15_minutes_alerts_per_mailbox():
    condition = one(one(alert_policies()["mailbox_not_polled"]["conditions"])["condition_absent"])
    assert condition["duration"] == "900s"
    assert 'counter["mailbox_polled"]' in condition["filter"]
    assert one(condition["aggregations"])["group_by_fields"] == ["metric.label.mailbox"]


def test_push_latency_alert_is_on_the_95th_percentile():
    condition = one(one(alert_policies()["push_latency"]["conditions"])["condition_threshold"])
    assert one(condition["aggregations"])["per_series_aligner"] == "ALIGN_PERCENTILE_95"
    assert condition["threshold_value"] == "${var.push_latency_alert_seconds}"


def test_dead_letter_backlog_alert_watches_the_dead_letter_subscription():
    condition = one(one(alert_policies()["dead_letter_backlog"]["conditions"])["condition_threshold"])
    assert "subscription/num_undelivered_messages" in condition["filter"]
    assert 'google_pubsub_subscription.dead_letter["gmail"].name' in condition["filter"]


def test_a_dashboard_shows_the_metrics():
    dashboard = resources("google_monitoring_dashboard")["mailbridge"]["dashboard_json"]
    for metric in ('counter["mailbox_polled"]', 'counter["message_quarantined"]', "push_latency", "request_count"):
        assert metric in dashboard, metric


# --- Variables, outputs, providers -----------------------------------------------------------


def test_every_variable_has_a_description_and_a_type():
    for name, body in variables().items():
        assert body.get("description"), f"variable {name} has no description"
        assert body.get("type"), f"variable {name} has no type"


def test_variables_are_declared_in_alphabetical_order():
    names = [name for block in parsed_files()["variables.tf"].get("variable", []) for name in block]
    assert names == sorted(names)
    assert set(names) == set(variables()), "variables belong in variables.tf"


def test_constrained_variables_are_validated():
    for name in (
        "admin_domain",
        "admin_emails",
        "admin_oauth_client_id",
        "alert_email",
        "api_callers",
        "attachment_retention_days",
        "event_push_endpoint",
        "event_subscribers",
        "function_memory",
        "function_timeout_seconds",
        "instance",
        "labels_invokers",
        "notification_channels",
        "poll_timeout_seconds",
        "prefix",
        "project_id",
        "push_timeout_seconds",
        "region",
        "schedule",
        "signing_key_version",
    ):
        assert variables()[name].get("validation"), f"variable {name} needs a validation block"
    assert variables()["time_zone"]["default"] == "Etc/UTC"


def test_instance_validation_accepts_known_and_custom_names():
    condition = one(variables()["instance"]["validation"])["condition"]
    assert 'contains(["production", "uat", "dev"], var.instance)' in condition
    pattern = re.search(r'regex\("([^"]+)"', condition).group(1)
    assert re.search(pattern, "staging-2")
    assert not re.search(pattern, "Prod Copy")


def outputs() -> dict[str, dict]:
    return {name: body for block in blocks("output") for name, body in block.items()}


def test_every_output_has_a_description():
    for name in ("function_urls", "oauth_redirect_uri", "cli_env", "admin_url", "api_url", "signing_key_secret_id"):
        assert name in outputs(), f"output {name} is missing"
    for name, body in outputs().items():
        assert body.get("description"), f"output {name} has no description"
    assert outputs()["oauth_redirect_uri"]["value"] == '${local.function_urls["oauth_callback"]}'


def test_cli_env_exports_what_the_cli_needs_and_keeps_the_key_out_of_terraform():
    value = outputs()["cli_env"]["value"]
    for key in ("GOOGLE_CLOUD_PROJECT", "MAILBRIDGE_INSTANCE", "MAILBRIDGE_PREFIX", "MAILBRIDGE_FUNCTION_URLS",
                "MAILBRIDGE_ATTACHMENTS_BUCKET", "MAILBRIDGE_PUBSUB_TOPIC", "MAILBRIDGE_SIGNING_KEY",
                "MAILBRIDGE_EVENTS_TOPIC", "MAILBRIDGE_EVENTS_SUBSCRIPTION"):
        assert f"export {key}=" in value, key
    assert "gcloud secrets versions access" in value, "the signing key is read when the lines are evaluated"


def test_terraform_and_providers_are_bounded():
    settings = one(blocks("terraform"))
    assert re.match(r"^>=\s*1\.(1[1-9]|[2-9]\d)", settings["required_version"]), "write-only arguments need 1.11"
    providers = one(settings["required_providers"])
    for name in ("google", "google-beta", "archive", "random", "time"):
        assert name in providers, f"provider {name} is not declared"
    for name, requirement in providers.items():
        assert BOUNDED_VERSION.match(requirement["version"]), f"provider {name} must be bounded '>= x, < y'"
    archive_low = re.match(r">=\s*(\d+)\.(\d+)", providers["archive"]["version"]).groups()
    assert tuple(map(int, archive_low)) >= (2, 5), "glob excludes need archive >= 2.5"


def test_gcs_backend_example_is_valid_hcl():
    example = load_hcl(TERRAFORM / "backend.tf.example")
    backend = one(one(example["terraform"])["backend"])
    assert set(backend["gcs"]) >= {"bucket", "prefix"}


def test_services_enable_every_api_mailbridge_uses():
    services = names_in_set_expression(locals_()["services"])
    for api in ("run", "cloudbuild", "artifactregistry", "firestore", "secretmanager", "cloudscheduler", "gmail",
                "iam", "storage", "pubsub", "monitoring", "logging", "cloudresourcemanager"):
        assert f"{api}.googleapis.com" in services, api


def validation_pattern(name: str) -> re.Pattern:
    condition = one(variables()[name]["validation"])["condition"]
    return re.compile(re.search(r'regex\("((?:[^"\\]|\\.)+)"', condition).group(1).replace("\\\\", "\\"))


def test_admin_and_alert_addresses_are_plain_email_addresses():
    for name in ("admin_emails", "alert_email"):
        pattern = validation_pattern(name)
        assert pattern.search("helpdesk-admin@example.com"), name
        assert not pattern.search("helpdesk-admin@example"), name
        assert not pattern.search("a@example.com,b@example.com"), name


def test_admin_domain_is_a_domain_name():
    pattern = validation_pattern("admin_domain")
    assert pattern.search("example.co.uk")
    assert not pattern.search("https://example.com")
