from kit.migrations import run_env
from services.metrics.models import metadata

run_env(metadata)
