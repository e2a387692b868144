"""Process management for the local stack, shared by `scripts/stack` and tests/conftest.py.

A `Stack` reserves a free port for every service up front (so every address, and therefore the
whole environment, is known before anything starts), starts services lazily, each in its own
process group with its log in `<state_dir>/logs/<name>.log`, records them in
`<state_dir>/pids.json`, and stops them by process group, verifying that their ports close.

One module per service: `firestore`, `pubsub`, `storage` (the emulators), `fake_google`,
`functions` (the functions server and the environment it and the CLI run with); under them
`ports`, `processes` (process groups) and `recorded` (a stack in pids.json); `stack` the Stack.
"""

from .common import HOST, REPO, SDK_CANDIDATES, VENV_PYTHON, StackError
from .fake_google import ADMIN_CLIENT_ID, ADMIN_CLIENT_SECRET_ID, fake_google_command, register_admin_client
from .firestore import NPM_FIRESTORE_DIR, firestore_command
from .functions import functions_command
from .ports import free_port, http_answers, port_is_listening
from .processes import Service, kill_group, log_tail, wait_ports_closed
from .pubsub import (EVENTS_SUBSCRIPTION, EVENTS_TOPIC, PUSH_SUBSCRIPTION, PUSH_TOPIC, WORK_ACK_DEADLINE_S,
                     WORK_PUSH_BUDGET_S, WORK_SHARDS, WORK_SUBSCRIPTION, WORK_TOPIC, _pubsub_clients,
                     create_events_subscription, create_push_subscription, create_topic, create_work_subscription,
                     pubsub_command, work_topics)
from .recorded import read_pids, recorded_status, stop_recorded
from .stack import LOCAL_PROJECT, SERVICES, Stack
from .storage import ATTACHMENTS_BUCKET, create_bucket, storage_command

__all__ = [
    "ADMIN_CLIENT_ID", "ADMIN_CLIENT_SECRET_ID", "ATTACHMENTS_BUCKET", "EVENTS_SUBSCRIPTION", "EVENTS_TOPIC", "HOST",
    "LOCAL_PROJECT", "NPM_FIRESTORE_DIR",
    "PUSH_SUBSCRIPTION", "PUSH_TOPIC", "REPO", "SDK_CANDIDATES", "SERVICES", "VENV_PYTHON", "WORK_ACK_DEADLINE_S",
    "WORK_PUSH_BUDGET_S", "WORK_SHARDS", "WORK_SUBSCRIPTION", "WORK_TOPIC",
    "Service", "Stack", "StackError",
    "create_bucket", "create_events_subscription", "create_push_subscription", "create_topic", "create_work_subscription", "fake_google_command",
    "firestore_command", "free_port", "functions_command", "http_answers", "kill_group", "log_tail",
    "port_is_listening", "pubsub_command", "read_pids", "recorded_status", "register_admin_client",
    "stop_recorded", "storage_command", "wait_ports_closed", "work_topics",
    "_pubsub_clients",  # tests/integration/test_push.py reads the emulator through the stack's clients
]
