"""Accounts of the secure file store (seed 002): users, passwords, emailed one-time codes, sessions.

- ``users``: email normalisation and the user lookup (public contract for other areas);
- ``registration``: register + verify_register (password policy, hash, code, create-on-id);
- ``signin``: login + verify_login + logout (same answer for unknown email and wrong password);
- ``password_policy``: length and zxcvbn strength of new passwords;
- ``otp``: the emailed 6-digit codes (NIST SP 800-63B §5.1.3.2) and ``mail`` (SMTP);
- ``sessions``: session ids (stored as SHA-256), idle and absolute timeouts, ``session_email``
  for the ``sid`` header (public contract for other areas);
- ``throttle``: the per-address OTP mail limit (password guessing: ``platform.login_throttle``).

Other areas may import only the modules in ``PUBLIC_MODULES`` (a test checks this). No imports
here, so importing one module loads only its own dependencies (cold start).
"""

PUBLIC_MODULES = ("users", "sessions")
