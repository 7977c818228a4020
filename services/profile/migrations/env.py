from kit.migrations import run_env
from services.profile.models import metadata

run_env(metadata)
