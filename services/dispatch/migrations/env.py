from kit.migrations import run_env
from services.dispatch.models import metadata

run_env(metadata)
