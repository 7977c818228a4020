from gateway.models import metadata
from kit.migrations import run_env

run_env(metadata)
