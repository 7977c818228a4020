from kit.migrations import run_env
from services.journey.models import metadata

run_env(metadata)
