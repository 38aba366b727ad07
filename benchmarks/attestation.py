"""``POST /attest-device`` latency per format through devhost, and the verifier's CPU cost.

For each format, ``N`` fresh devices (the formats interleaved) are registered, fetch a challenge and attest over HTTP
(one keep-alive ``requests.Session``, in-process devhost on the emulators, client in the same
process). Only the ``POST /attest-device`` call is timed (the client building the simulated
evidence is not): ``key`` (proof of possession, ``trust_level`` software), ``android-key`` with a
factory-provisioned 4-certificate chain and with a remotely provisioned 5-certificate StrongBox
chain, and ``apple-appattest``. The server's work per format is the same as for a real device:
DER parsing, every signature of the chain, the KeyDescription walk, the status list (served
locally, cached after the first call), one challenge consume and one device write.

The issue's target: hardware formats add no more than 10 ms p50 over ``key``. The second table
is :func:`shared_code.devices.attestation.verifier.verify_evidence` alone, CPU time per call
(``time.process_time``), which does not depend on load from other processes.
"""

from __future__ import annotations

import contextlib
import secrets
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from benchmarks.report import Stats, heading, summarize, table
from benchmarks.timed_session import TimedSession

N = 100
WARMUP = 3
CPU_N = 200
FORMATS = (
    ("key", "key", {}),
    ("android-key (factory, TEE)", "android-key", {"provisioning": "factory", "security_level": "tee"}),
    ("android-key (RKP, StrongBox)", "android-key", {"provisioning": "remote", "security_level": "strongbox"}),
    ("apple-appattest", "apple-appattest", {}),
)


@dataclass(frozen=True)
class AttestationRow:
    label: str
    ms: Stats
    cpu_ms: float | None


@contextlib.contextmanager
def test_authority(workdir: Path) -> Iterator[Path]:
    """The dev stack's test authority and its settings, as ``make run`` has them."""
    from devhost.test_authority import local_test_authority
    from shared_code.platform.config import reset_settings

    with local_test_authority(workdir) as folder:
        reset_settings()
        yield folder
    reset_settings()


def _attest_once(base_url: str, session: TimedSession, authority, fmt: str, options: dict, run_id: str, i: int) -> float:
    from client import attestation_sim as sim
    from client.device_api import DeviceClient
    from client.keys import generate_private_key

    client = DeviceClient(base_url, f"bench-att-{run_id}-{fmt}-{i}", secrets.token_urlsafe(32),
                          generate_private_key("p256"), session=session)
    client.register()
    if fmt == "key":
        client.attest()
    elif fmt == "android-key":
        client.attest_simulated(authority, fmt, package=sim.DEV_PACKAGE, signature_digest=sim.DEV_SIGNER_DIGEST, **options)
    else:
        client.attest_simulated(authority, fmt, app_id=sim.DEV_APP_ID)
    return session.last("POST", "/attest-device").ms


def _cpu_ms(authority, fmt: str, options: dict) -> float | None:
    """Median CPU ms of one in-process verification (no HTTP, no storage)."""
    if fmt == "key":
        return None
    from cryptography.hazmat.primitives.asymmetric import ec

    from client import attestation_sim as sim
    from shared_code.devices.attestation.verifier import AndroidEvidence, AppleEvidence, config_from_settings, verify_evidence
    from shared_code.platform.config import get_settings

    key, challenge, now = ec.generate_private_key(ec.SECP256R1()), secrets.token_bytes(32), datetime.now(timezone.utc)
    if fmt == "android-key":
        evidence = AndroidEvidence(tuple(sim.android_chain(authority, key, challenge, package=sim.DEV_PACKAGE,
                                                           signature_digest=sim.DEV_SIGNER_DIGEST, **options)))
    else:
        evidence = AppleEvidence(*sim.apple_attestation(authority, key, challenge, sim.DEV_APP_ID))
    config = config_from_settings(get_settings(), fmt)
    samples = []
    for _ in range(CPU_N):
        start = time.process_time()
        result = verify_evidence(evidence, challenge, config, now)
        samples.append((time.process_time() - start) * 1000)
        assert result.ok, result.detail
    return statistics.median(samples)


def run(base_url: str, authority_dir: Path) -> list[AttestationRow]:
    """Measure and print; returns the figures (ms)."""
    from client import attestation_sim as sim

    authority = sim.TestAuthority.load(authority_dir)
    session = TimedSession()
    run_id = uuid.uuid4().hex[:6]
    samples: dict[str, list[float]] = {label: [] for label, _, _ in FORMATS}
    for i in range(-WARMUP, N):  # formats interleaved, so load drifting over the run hits them alike
        for index, (label, fmt, options) in enumerate(FORMATS):
            ms = _attest_once(base_url, session, authority, fmt, options, run_id, i * 10 + index)
            if i >= 0:
                samples[label].append(ms)
    rows = [AttestationRow(label, summarize(samples[label]), _cpu_ms(authority, fmt, options)) for label, fmt, options in FORMATS]
    base = rows[0].ms.p50
    heading("POST /attest-device through devhost (ms, keep-alive, client in the same process)")
    table(["format", "N", "p50 ms", "p95 ms", "p50 over key", "verify CPU ms (median)"],
          [[r.label, r.ms.n, r.ms.p50, r.ms.p95, r.ms.p50 - base, "-" if r.cpu_ms is None else r.cpu_ms] for r in rows])
    print(f"({WARMUP} warm-up attestations per format not counted; every device is new; evidence built by the "
          f"client beforehand is not timed; formats interleaved; CPU column: verify_evidence alone, {CPU_N} calls)", flush=True)
    return rows
