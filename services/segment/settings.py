from kit.settings import ServiceSettings


class SegmentSettings(ServiceSettings):
    grpc_port: int = 50052
    # Events taken from the stream per transaction.
    consumer_batch: int = 500
    # Due timers (time-driven membership changes) claimed per transaction.
    timer_batch: int = 500
    # Profiles evaluated per transaction by a backfill.
    backfill_batch: int = 1000
    # How often each replica looks for due timers (time-driven membership changes).
    timer_poll_seconds: float = 1.0
    # The consumer group on nudge.events.v1 shared by the replicas.
    consumer_group: str = "segment"
    # A replica's unacknowledged entries are taken over by another after this long.
    consumer_reclaim_idle_ms: int = 30_000
    # The journey service, asked before a segment is deleted whether a live journey uses it.
    journey_addr: str = "127.0.0.1:50054"
