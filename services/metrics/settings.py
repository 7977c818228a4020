from kit.settings import ServiceSettings


class MetricsSettings(ServiceSettings):
    grpc_port: int = 50055
    # Facts taken from the streams per transaction.
    consumer_batch: int = 1000
    # The consumer group on the delivery, engagement, journey and event streams.
    consumer_group: str = "metrics"
    # A replica's unacknowledged entries are taken over by another after this long.
    consumer_reclaim_idle_ms: int = 30_000
