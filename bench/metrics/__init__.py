"""The metrics benchmark, `python -m bench.metrics` (what it measures: `__main__.py`), in
the parts it runs: the stream entries of the ingest run (`workload`), putting them on the
streams and waiting for a consumer group (`streams`), the ingest run and its bare loop
(`ingest`) with the stored facts checked column by column (`facts`), the SQL seed of the
stats run (`seed`), the stats run and its hand-written SQL (`stats`), and the table
(`report`)."""
