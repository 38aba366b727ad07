"""On-demand performance figures for TrustGate: ``python -m benchmarks`` (``make bench``).

Starts its own emulators (Azurite + cosmosdb-server on free ports) and devhost, measures, and
prints tables plus a compact summary. Not part of the test suite: nothing here asserts timing.

Modules, one job each:

- :mod:`benchmarks.stack` starts and stops the emulators, an in-process devhost and a devhost
  subprocess;
- :mod:`benchmarks.latency` p50/p95 latency of register, challenge and 1 KiB uploads;
- :mod:`benchmarks.uploads` upload throughput and peak RSS, devhost vs. a plain SDK upload;
- :mod:`benchmarks.import_time` import cost of ``function_app`` beyond ``azure.functions``;
- :mod:`benchmarks.rss` the RSS peak sampler; :mod:`benchmarks.timed_session` per-request
  timing; :mod:`benchmarks.sdk_worker` the plain-SDK upload subprocess;
- :mod:`benchmarks.report` percentiles and table printing.
"""
