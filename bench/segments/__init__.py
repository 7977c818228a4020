"""The segment benchmark, `python -m bench.segments` (what it measures: `__main__.py`), in
the parts it runs: the segments and the stream entries (`workload`), the segment service
driven through its gRPC API and the events stream (`service`), the three measurements with
their baselines (`throughput`, `latency` with its bare Redis hop, `backfill`), and the table
(`report`)."""
