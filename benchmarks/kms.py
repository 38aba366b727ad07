"""``POST /unwrap_key`` (the private key stays in the KMS) against ``POST /get_private_key`` (the
seed's export), RSA-3072, through a devhost subprocess over HTTP (one ``requests.Session``,
keep-alive), plus the server-side CPU per call and per decryption outcome.

HTTP: one user owns one file (``KMS_RSA_KEY_BITS=3072``) whose envelope is sealed by the client;
``WARMUP`` calls of each kind first, then ``N`` calls alternating between the two endpoints, so
both see the same load. Both paths read the session and the key item, unwrap the private key
from its KEK (AES-256-GCM) and append one audit entry; ``/unwrap_key`` also counts the per-user
rate limit (one Cosmos patch), loads the key and runs RSA-OAEP decryption.

In process (no HTTP, no storage): ``CPU_N`` runs of each step with ``time.process_time``: the
KEK unwrap, loading the PKCS#8 key (as the KMS does, without OpenSSL's key validation, and with it
for comparison), OAEP decryption of a valid wrapped key and of each failure class; the failure
rows show how far apart (or not) the outcomes are in CPU time.
"""

from __future__ import annotations

import base64
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from benchmarks.per_request import user_session
from benchmarks.report import Stats, heading, summarize, table
from benchmarks.stack import StackSettings, devhost_subprocess, environment

N = 200
WARMUP = 5
CPU_N = 200
VALIDATED_LOAD_N = 10
BENCH_SETTINGS = {"KMS_RSA_KEY_BITS": "3072", "KMS_UNWRAP_RATE_LIMIT_PER_MINUTE": "1000000"}


@dataclass(frozen=True)
class KmsFigures:
    unwrap_ms: Stats
    export_ms: Stats
    cpu_ms: dict[str, float]  # step or outcome -> mean CPU milliseconds


def run(stack: StackSettings, workdir: Path) -> KmsFigures:
    """Measure and print; returns the figures."""
    with environment(BENCH_SETTINGS):  # the devhost subprocess and the in-process steps use them
        unwrap_ms, export_ms = _http(stack, workdir)
        cpu_ms = _cpu()
    heading("POST /unwrap_key vs POST /get_private_key, RSA-3072, devhost subprocess, keep-alive")
    table(["endpoint", "calls", "p50 ms", "p95 ms", "max ms"],
          [[label, s.n, s.p50, s.p95, s.maximum] for label, s in (("/unwrap_key", unwrap_ms), ("/get_private_key", export_ms))])
    heading("KMS server CPU per step (in process, mean of runs, ms)")
    table(["step", "CPU ms"], [[name, value] for name, value in cpu_ms.items()])
    print(f"({WARMUP} warm-up calls of each endpoint not counted; {N} calls each, alternating; "
          f"CPU means over {CPU_N} runs, the validated load over {VALIDATED_LOAD_N})", flush=True)
    return KmsFigures(unwrap_ms, export_ms, cpu_ms)


def _http(stack: StackSettings, workdir: Path) -> tuple[Stats, Stats]:
    from client.files_api import FilesClient

    _, sid = user_session()
    name = f"bench-{os.urandom(4).hex()}.bin"
    with devhost_subprocess(stack, workdir / "devhost-kms.log") as host:
        files = FilesClient(host.base_url, sid)
        files.put_bytes(name, os.urandom(4096))
        wrapped = files.download_envelope(name).sealed.encrypted_aes_key
        session = requests.Session()
        headers = {"sid": sid}
        calls = {
            "unwrap": (f"{host.base_url}/unwrap_key",
                       {"file_name": name, "encrypted_aes_key": base64.b64encode(wrapped).decode(), "key_version": 1}),
            "export": (f"{host.base_url}/get_private_key", {"file_name": name}),
        }
        samples: dict[str, list[float]] = {"unwrap": [], "export": []}
        for round_ in range(WARMUP + N):
            for kind, (url, body) in calls.items():
                began = time.perf_counter()
                response = session.post(url, json=body, headers=headers, timeout=30)
                elapsed = (time.perf_counter() - began) * 1000
                if response.status_code != 200:
                    raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:200]}")
                if round_ >= WARMUP:
                    samples[kind].append(elapsed)
    return summarize(samples["unwrap"]), summarize(samples["export"])


def _cpu() -> dict[str, float]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from shared_code.filestore import data_keys, key_wrap

    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    wrapped_pem = key_wrap.wrap(pem, "bench")
    good = key.public_key().encrypt(os.urandom(32), data_keys.oaep())
    flipped = bytearray(good)
    flipped[200] ^= 1
    other = rsa.generate_private_key(public_exponent=65537, key_size=3072).public_key().encrypt(os.urandom(32), data_keys.oaep())
    outcomes = {
        "OAEP decrypt: valid data key": good, "OAEP decrypt: bit flipped (bad padding)": bytes(flipped),
        "OAEP decrypt: another key's ciphertext": other, "OAEP decrypt: one byte short": good[:-1],
        "OAEP decrypt: valid OAEP, not an AES key": key.public_key().encrypt(os.urandom(31), data_keys.oaep()),
    }
    figures = {
        "KEK unwrap (AES-256-GCM)": _mean_cpu(lambda: key_wrap.unwrap(wrapped_pem, "bench"), CPU_N),
        "load PKCS#8, no validation (the KMS)": _mean_cpu(
            lambda: serialization.load_pem_private_key(pem, None, unsafe_skip_rsa_key_validation=True), CPU_N),
        "load PKCS#8 with OpenSSL validation": _mean_cpu(lambda: serialization.load_pem_private_key(pem, None), VALIDATED_LOAD_N),
    }
    for label, ciphertext in outcomes.items():
        text = base64.b64encode(ciphertext).decode()
        figures[label] = _mean_cpu(lambda text=text: _attempt(pem, text), CPU_N)
    return figures


def _attempt(pem: bytes, wrapped: str) -> None:
    from shared_code.filestore import data_keys
    from shared_code.platform.errors import BadRequest

    try:
        data_keys.unwrap_data_key(pem, wrapped)
    except BadRequest:
        pass


def _mean_cpu(action, runs: int) -> float:
    samples = []
    for _ in range(runs):
        began = time.process_time()
        action()
        samples.append((time.process_time() - began) * 1000)
    return statistics.fmean(samples)
