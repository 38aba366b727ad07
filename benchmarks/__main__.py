"""``python -m benchmarks`` (``make bench``): run every benchmark once and print the figures.

Order: import time first (no emulators running yet, so the machine is quiet), then one emulator
pair for the rest: latency against an in-process devhost, then throughput/RSS against a devhost
subprocess, then the per-request cost of the hot endpoints (``requests``). Ends with a compact
summary block. ``--only`` runs a subset. Prints figures; no speed target is asserted. Exit code 3
when a security guarantee broke during the run (a one-time token valid twice, a revoked token
valid), non-zero too when a benchmark could not run.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from devhost.__main__ import use_example_settings_if_needed  # also puts the repository on sys.path

SECTIONS = ("imports", "latency", "uploads", "requests", "attestation", "audit", "direct", "kms",
            "lifecycle")  # device and account lifecycle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="sections to run")
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    use_example_settings_if_needed()

    from benchmarks import attestation, direct_uploads, import_time, latency, per_request, stack, uploads

    started = time.perf_counter()
    print(f"TrustGate benchmarks  {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC  Python {platform.python_version()}  "
          f"{platform.system()} {platform.machine()}  {os.cpu_count()} CPUs", flush=True)
    imports = lat = ups = toks = att = direct = None
    if "imports" in options.only:
        imports = import_time.run()
    if {"latency", "uploads", "requests", "attestation", "direct"} & set(options.only):
        with tempfile.TemporaryDirectory(prefix="trustgate-bench-") as tmp, stack.emulators() as settings:
            if "latency" in options.only:
                with stack.in_process_devhost() as base_url:
                    lat = latency.run(base_url, Path(tmp))
            if "uploads" in options.only:
                ups = uploads.run(settings, Path(tmp))
            if "requests" in options.only:
                try:
                    toks = per_request.run(settings, Path(tmp), settings.pids)
                except per_request.GuaranteeBroken as broken:
                    print(f"GUARANTEE BROKEN: {broken}", file=sys.stderr, flush=True)
                    return 3
            if "attestation" in options.only:  # devices: hardware attestation
                with attestation.test_authority(Path(tmp)) as authority, stack.in_process_devhost() as base_url:
                    att = attestation.run(base_url, authority)
            if "direct" in options.only:
                direct = direct_uploads.run(settings, Path(tmp))
    lifecycle_figures = None
    if "lifecycle" in options.only:  # device and account lifecycle: a fresh emulator pair
        from benchmarks import lifecycle

        with stack.emulators():
            lifecycle_figures = lifecycle.run()
    kms_figures = None
    if "kms" in options.only:  # KMS key service
        from benchmarks import kms

        with tempfile.TemporaryDirectory(prefix="trustgate-bench-") as tmp, stack.emulators() as settings:
            kms_figures = kms.run(settings, Path(tmp))
    audit_figures = None
    if "audit" in options.only:  # a fresh emulator pair: the proof log starts from an empty tree
        from benchmarks import audit

        with stack.emulators():
            audit_figures = audit.run()
    _summary(imports, lat, ups, time.perf_counter() - started, toks, audit_figures, att, direct, kms_figures,
             lifecycle_figures)
    return 0


def _summary(imports, lat, ups, elapsed: float, toks=None, audit_figures=None, att=None, direct=None,
             kms_figures=None, lifecycle_figures=None) -> None:
    from benchmarks.report import MIB, heading

    heading("Summary")
    lines = [f"TrustGate bench {datetime.now(timezone.utc):%Y-%m-%d}, Python {platform.python_version()}, "
             f"{os.cpu_count()} CPUs, emulators (Azurite + cosmosdb-server) on loopback"]
    if lat:
        parts = [f"{r.short} {r.ms.p50:.1f}/{r.ms.p95:.1f} (N={r.ms.n})" for r in lat.rows]
        lines.append("latency ms p50/p95 via devhost, keep-alive: " + "; ".join(parts))
    if ups:
        by_size: dict[int, list] = {}
        for series in ups:
            by_size.setdefault(series.size, []).append(series)
        for size, (dev, sdk) in by_size.items():
            lines.append(
                f"upload {size / 1e6:g} MB (N={len(dev.seconds)}): devhost {dev.mb_per_s:.1f} MB/s "
                f"(POST alone {dev.post_mb_per_s:.1f}), peak RSS +{max(dev.deltas) / MIB:.0f} MiB "
                f"(max {max(dev.peaks) / MIB:.0f} MiB) | SDK {sdk.mb_per_s:.1f} MB/s, "
                f"peak RSS +{max(sdk.deltas) / MIB:.0f} MiB (max {max(sdk.peaks) / MIB:.0f} MiB)")
    if imports:
        lines.append(f"import function_app beyond azure.functions: {imports.function_app_ms:.0f} ms median "
                     f"(N={imports.runs}; azure.functions alone {imports.azure_functions_ms:.0f} ms; "
                     f"via {', '.join(f'{name} {ms:.0f}' for name, ms in imports.dependencies[:4])} ms)")
    if toks:
        from benchmarks.per_request import summary_line

        lines.append(summary_line(toks))
    if att:
        lines.append("attest-device p50/p95 ms by format: " + "; ".join(
            f"{row.label} {row.ms.p50:.1f}/{row.ms.p95:.1f}" for row in att))
    if audit_figures:
        a = audit_figures
        lines.append(f"audit append p50/p95 {a.append_ms.p50:.1f}/{a.append_ms.p95:.1f} ms "
                     f"({a.append_round_trips:.2f} storage calls); added p50 on " + "; ".join(
                         f"{e.name} {e.with_entry.p50 - e.without.p50:+.1f} ms" for e in a.endpoints)
                     + f"; proofs at 10^5: inclusion {a.inclusion_cold.p50:.1f} ms cold ({a.reads_inclusion:.1f} reads), "
                       f"{a.inclusion_warm.p50:.2f} ms warm, consistency {a.consistency_cold.p50:.1f} ms cold")
    if direct:
        from benchmarks.direct_uploads import summary_lines

        lines += summary_lines(direct)
    if kms_figures:
        k = kms_figures
        lines.append(f"RSA-3072 p50/p95 ms: /unwrap_key {k.unwrap_ms.p50:.1f}/{k.unwrap_ms.p95:.1f}, "
                     f"/get_private_key {k.export_ms.p50:.1f}/{k.export_ms.p95:.1f} (N={k.unwrap_ms.n}); "
                     f"OAEP decrypt CPU {k.cpu_ms['OAEP decrypt: valid data key']:.2f} ms")
    if lifecycle_figures:
        from benchmarks.lifecycle import summary_line as lifecycle_line

        lines.append(lifecycle_line(lifecycle_figures))
    lines.append(f"benchmark wall time {elapsed:.0f} s")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
