"""The file-store demo step's helpers and the mailbox handed to it (the demo itself runs in ``make demo``)."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import devhost.__main__ as cli
from devhost.demo_files import DEMO_FILE, file_store_demo, same_bytes
from shared_code.accounts.mail import PURPOSE_HEADER


def test_same_bytes_holds_only_for_an_exact_copy(tmp_path):
    original = tmp_path / "original.bin"
    original.write_bytes(b"\x00header\nbody\xff" * 100)
    copy = tmp_path / "copy.bin"
    copy.write_bytes(original.read_bytes())
    assert same_bytes(original, copy)[0]

    flipped = bytearray(original.read_bytes())
    flipped[-1] ^= 1
    copy.write_bytes(bytes(flipped))
    ok, detail = same_bytes(original, copy)
    assert not ok and detail.startswith("expected 1300 bytes")
    copy.write_bytes(original.read_bytes()[:-1])
    assert not same_bytes(original, copy)[0]
    assert same_bytes(original, tmp_path / "absent.bin") == (False, "absent.bin missing")


def test_the_demo_file_is_a_real_repository_file():
    assert DEMO_FILE.is_file() and DEMO_FILE.stat().st_size > 0


def test_without_the_dev_mailbox_the_step_reports_a_failure_and_calls_nothing(tmp_path):
    results = []
    file_store_demo("http://127.0.0.1:9", None, tmp_path, lambda label, ok: results.append((label, ok)))
    assert len(results) == 1 and results[0][1] is False and "DEVHOST_MAILBOX" in results[0][0]
    assert list(tmp_path.iterdir()) == []


def test_local_mailbox_yields_the_running_mailbox_that_reads_codes(monkeypatch, tmp_path):
    monkeypatch.setattr(cli, "ROOT", tmp_path)  # mails are kept under ROOT/.devhost/mail
    monkeypatch.delenv("DEVHOST_MAILBOX", raising=False)
    monkeypatch.delenv("SMTP_HOST", raising=False)  # not given: the dev mailbox takes the mail
    for name in ("SMTP_PORT", "SMTP_STARTTLS", "SMTP_USERNAME", "SMTP_PASSWORD"):
        monkeypatch.setenv(name, "restored-after-the-test")  # local_mailbox overwrites them
    with cli.local_mailbox() as mailbox:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "app@example.org", "Ann@example.org", "code"
        message[PURPOSE_HEADER] = "login"
        message.set_content("Your code:\n\n  042917\n")
        with smtplib.SMTP("127.0.0.1", int(cli.os.environ["SMTP_PORT"]), timeout=10) as smtp:
            smtp.send_message(message)
        assert mailbox.latest_otp("ann@example.org", "login") == "042917"
    assert len(list((tmp_path / ".devhost" / "mail").glob("*.eml"))) == 1


def test_local_mailbox_yields_none_when_switched_off(monkeypatch):
    monkeypatch.setenv("DEVHOST_MAILBOX", "0")
    with cli.local_mailbox() as mailbox:
        assert mailbox is None


def test_an_smtp_host_given_in_the_environment_is_used_instead_of_the_dev_mailbox(monkeypatch):
    monkeypatch.delenv("DEVHOST_MAILBOX", raising=False)
    monkeypatch.setenv("SMTP_HOST", "smtp.example.org")
    monkeypatch.setenv("SMTP_PORT", "2587")
    with cli.local_mailbox() as mailbox:
        assert mailbox is None
        assert (cli.os.environ["SMTP_HOST"], cli.os.environ["SMTP_PORT"]) == ("smtp.example.org", "2587")


def test_the_demo_keeps_the_dev_mailbox_to_read_its_codes(monkeypatch, tmp_path):
    monkeypatch.setattr(cli, "ROOT", tmp_path)
    monkeypatch.delenv("DEVHOST_MAILBOX", raising=False)
    for name in ("SMTP_HOST", "SMTP_PORT", "SMTP_STARTTLS", "SMTP_USERNAME", "SMTP_PASSWORD"):
        monkeypatch.setenv(name, "restored-after-the-test")
    with cli.local_mailbox(required=True) as mailbox:
        assert mailbox is not None and cli.os.environ["SMTP_PORT"] == str(mailbox.port)


def test_the_token_step_never_prints_a_whole_token():
    from devhost.demo_tokens import _masked

    token = "kX9cR4tL7wZ1pN6yB3hJ5fD0sA8eU2iO4gK7qTmQ8v2"
    assert _masked(f"Bearer {token}") == "Bearer kX9cR4…" and _masked(token) == "kX9cR4…"
