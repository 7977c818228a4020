from kit.settings import ServiceSettings


class JourneySettings(ServiceSettings):
    grpc_port: int = 50054
    segment_addr: str = "127.0.0.1:50052"
    dispatch_addr: str = "127.0.0.1:50053"
    profile_addr: str = "127.0.0.1:50051"
    # Due timers claimed per transaction, and how long a claim is this replica's alone:
    # a replica killed mid-batch has its claims retaken by another after the lease.
    timer_batch: int = 200
    timer_lease_seconds: float = 30.0
    # How often each replica looks for due timers when nothing woke it.
    timer_poll_seconds: float = 0.5
    # Runs stepped at the same time within one batch (each may call dispatch).
    step_concurrency: int = 32
    # Events taken from the streams per read.
    consumer_batch: int = 200
    # The consumer group on nudge.events.v1 and nudge.segments.v1 shared by the replicas.
    consumer_group: str = "journey"
    # A replica's unacknowledged entries are taken over by another after this long.
    consumer_reclaim_idle_ms: int = 30_000
