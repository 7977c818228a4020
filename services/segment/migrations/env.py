from kit.migrations import run_env
from services.segment.models import metadata

run_env(metadata)
