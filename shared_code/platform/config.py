"""Typed application settings: the one place the app reads its configuration.

Sources, highest precedence first:
1. environment variables (what Azure App Settings and ``func start`` provide);
2. the ``Values`` of ``local.settings.json`` in the project root (or the file named by
   ``TRUSTGATE_LOCAL_SETTINGS``), so the devhost and tests see what ``func start`` would.

Nothing is read at import time. :func:`get_settings` parses once per process and caches; a
missing or malformed setting raises :class:`ConfigError` naming it. Every setting the code
reads is declared in :data:`SETTINGS`, which tests compare with ``local.settings.example.json``
and the Bicep app settings.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

PROJECT_ROOT = Path(__file__).resolve().parents[2]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(RuntimeError):
    """A setting is missing or malformed. ``setting`` names it; the message never holds its value."""

    def __init__(self, setting: str, reason: str) -> None:
        super().__init__(f"setting {setting}: {reason}")
        self.setting = setting


@dataclass(frozen=True)
class SettingSpec:
    """Declaration of one setting: its name, default (``None`` = required) and whether it is secret."""

    name: str
    default: str | None
    description: str
    secret: bool = False


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("COSMOS_ENDPOINT", None, "Cosmos DB account endpoint, e.g. https://acct.documents.azure.com:443/"),
    SettingSpec("COSMOS_KEY", "", "Cosmos DB key; empty = Microsoft Entra ID (DefaultAzureCredential)", secret=True),
    SettingSpec("COSMOS_DATABASE", "trustgate", "Cosmos DB database name"),
    SettingSpec("COSMOS_VERIFY_TLS", "true", "verify the Cosmos endpoint's TLS certificate (false only for emulators)"),
    SettingSpec("STORAGE", "", "Blob Storage connection string (emulator / key auth); empty = use STORAGE__blobServiceUri", secret=True),
    SettingSpec("STORAGE__blobServiceUri", "", "Blob service URL for identity-based access, e.g. https://acct.blob.core.windows.net"),
    SettingSpec("AZURE_CLIENT_ID", "", "client id of the user-assigned managed identity (empty = default identity)"),
    SettingSpec("STORAGE_TIMEOUT_SECONDS", "10", "connect/read timeout for Cosmos and Blob calls, seconds"),
    # Required, no default: the upload blob trigger's path binds %UPLOADS_CONTAINER%, which the
    # Functions host resolves from app settings only; a code default would hide a broken trigger.
    SettingSpec("UPLOADS_CONTAINER", None, "blob container holding device uploads (also the blob trigger's path)"),
    SettingSpec("DEVICE_TOKEN_PEPPER", None, "base64 key (>= 32 bytes) for the keyed hash of device tokens", secret=True),
    SettingSpec("CHALLENGE_TTL_SECONDS", "300", "lifetime of a device challenge, seconds"),
    SettingSpec("MAX_UPLOAD_BYTES", "67108864", "largest accepted upload file, bytes"),
    SettingSpec(
        "ALLOWED_CONTENT_TYPES",
        "application/octet-stream,application/pdf,application/json,application/zip,"
        "text/plain,text/markdown,text/csv,image/png,image/jpeg,image/webp",
        "comma-separated media types accepted by /upload-file",
    ),
    SettingSpec("FILES_PAGE_SIZE", "50", "default page size of GET /api/files (max 200)"),
    SettingSpec("SESSION_IDLE_TIMEOUT_SECONDS", "1800", "a user session dies after this long without use, seconds"),
    SettingSpec("SESSION_ABSOLUTE_TIMEOUT_SECONDS", "43200", "a user session dies this long after login, seconds"),
    SettingSpec("PASSWORD_PEPPER", None, "base64 key (>= 32 bytes) for the HMAC pre-hash of passwords before bcrypt", secret=True),
    SettingSpec("BCRYPT_COST", "12", "bcrypt cost factor (log2 rounds), 12..16"),
    # Empty default on purpose: only the KMS endpoints need it, and they answer 500
    # configuration_error naming it (shared_code.filestore.key_wrap), so a missing KEK never stops the rest.
    SettingSpec("KMS_MASTER_KEY", "", "base64 of the 32-byte AES-256 KEK wrapping file private keys (Key Vault reference in Azure)", secret=True),
    SettingSpec("KMS_RSA_KEY_BITS", "3072", "RSA modulus size of new file key pairs: 2048, 3072 or 4096"),
    SettingSpec("ENCRYPTED_FILES_CONTAINER", "encrypted-files", "blob container holding the encrypted store's ciphertexts"),
    SettingSpec("DATASTORE_MAX_FILE_BYTES", "16777216", "largest accepted encrypted_data of POST /upload, bytes (decoded)"),
    SettingSpec("TOKEN_EXPIRATION_TIME", "3600", "default lifetime of a bearer token from /generate_token, seconds"),
    SettingSpec("TOKEN_MAX_TTL_SECONDS", "86400", "largest ttl_seconds /generate_token accepts, seconds"),
    SettingSpec("TOKEN_IP_ALLOW", "", "comma-separated addresses/CIDR ranges allowed to call the token endpoints (empty = all)"),
    SettingSpec("TOKEN_IP_DENY", "", "comma-separated addresses/CIDR ranges refused by the token endpoints (wins over allow)"),
    SettingSpec("TRUSTED_PROXY_HOPS", "1", "proxies that append to X-Forwarded-For in front of the app (Azure front end = 1); 0 = ignore it"),
    SettingSpec("TOKEN_RATE_LIMIT_PER_MINUTE", "120", "requests per client address and minute on /verify_token and /generate_token (each)"),
    SettingSpec("TOKEN_VERIFY_FAILURE_BURST", "10", "failed verifications per client address and minute that log a verify_failure_burst event"),
    # per-request cost: units an instance leases from a shared rate-limit counter in one write
    SettingSpec("RATE_LIMIT_LEASE_UNITS", "16", "block size of leased rate-limit counters (token endpoints; at most limit/8); 1 = one write per request"),
    # Binding expression of the purge timer: the Functions host resolves %PURGE_SCHEDULE% from app
    # settings only, so this default is what local.settings.example.json and Bicep must carry.
    SettingSpec("PURGE_SCHEDULE", "0 */5 * * * *", "six-field NCRONTAB schedule of the purge timer (UTC)"),
    SettingSpec("PASSWORD_MIN_SCORE", "3", "lowest zxcvbn score (0..4) a new password must reach"),
    SettingSpec("OTP_PEPPER", None, "base64 key (>= 32 bytes) for the HMAC of one-time codes", secret=True),
    SettingSpec("OTP_TTL_SECONDS", "600", "lifetime of an emailed one-time code, seconds"),
    # Empty defaults on purpose: only the accounts endpoints mail, and they answer 500
    # configuration_error naming the setting (shared_code.accounts.mail), so an app deployed before its mail
    # relay is configured still serves devices, tokens and messages.
    SettingSpec("SMTP_HOST", "", "SMTP server that sends the one-time code mails"),
    SettingSpec("SMTP_PORT", "587", "SMTP server port"),
    SettingSpec("SMTP_USERNAME", "", "SMTP login user; empty = no AUTH"),
    SettingSpec("SMTP_PASSWORD", "", "SMTP login password", secret=True),
    SettingSpec("SMTP_SENDER", "", "From address of the one-time code mails, e.g. TrustGate <no-reply@example.org>"),
    SettingSpec("SMTP_STARTTLS", "true", "upgrade the SMTP connection with STARTTLS (false only for a local dev server)"),
    SettingSpec("SMTP_TIMEOUT_SECONDS", "10", "connect/read timeout for the SMTP server, seconds"),
    SettingSpec("JWT_SECRET", None, "base64 HS256 key (>= 32 bytes) for message-gatherer access tokens; a Key Vault reference in Azure", secret=True),
    SettingSpec("JWT_TTL_SECONDS", "600", "lifetime of a message-gatherer access token (exp - iat), seconds"),
    SettingSpec("JWT_ISSUER", "trustgate", "iss claim of message-gatherer access tokens (checked on every use)"),
    SettingSpec("JWT_AUDIENCE", "trustgate-messages", "aud claim of message-gatherer access tokens (checked on every use)"),
    SettingSpec("MAX_MESSAGE_BYTES", "65536", "largest accepted gathered message, UTF-8 bytes"),
    SettingSpec("MESSAGES_CONTAINER", "messages", "blob container holding the gathered messages (append blobs)"),
    SettingSpec("MESSAGES_PAGE_SIZE", "100", "default page size of GET /messages (max 1000)"),
    SettingSpec("PLAY_INTEGRITY_MODE", "google", "how /verify decodes Play Integrity tokens: google (decodeIntegrityToken) or local (own response keys)"),
    SettingSpec("PLAY_INTEGRITY_PACKAGE_NAME", "", "Android package name the integrity tokens must be for (required by /verify)"),
    SettingSpec("PLAY_INTEGRITY_CREDENTIALS", "", "google mode: service-account JSON (or a path to it); in Azure a Key Vault reference", secret=True),
    SettingSpec("PLAY_INTEGRITY_API_BASE", "https://playintegrity.googleapis.com", "google mode: base URL of the Play Integrity API"),
    SettingSpec("PLAY_INTEGRITY_DECRYPTION_KEY", "", "local mode: Play Console response decryption key (AES-256, base64)", secret=True),
    SettingSpec("PLAY_INTEGRITY_VERIFICATION_KEY", "", "local mode: Play Console response verification key (EC P-256 public key, base64 DER)"),
    SettingSpec("PLAY_INTEGRITY_MAX_AGE_SECONDS", "300", "oldest accepted integrity token, and lifetime of a passing verdict for uploads, seconds"),
    SettingSpec("PLAY_INTEGRITY_CERT_DIGESTS", "", "comma-separated accepted app signing certificate SHA-256 digests (base64url, as in the verdict)"),
    SettingSpec("PLAY_INTEGRITY_MIN_DEVICE", "DEVICE", "weakest accepted device verdict: BASIC, DEVICE or STRONG"),
    SettingSpec("PLAY_INTEGRITY_REQUIRE_LICENSED", "false", "require appLicensingVerdict LICENSED"),
    SettingSpec("PLAY_INTEGRITY_TIMEOUT_SECONDS", "10", "google mode: connect/read timeout for Google's token and decode endpoints, seconds"),
    SettingSpec("REQUIRE_INTEGRITY_FOR_UPLOAD", "false", "refuse /upload-file for devices without a recent passing Play Integrity verdict"),
    SettingSpec("LOGIN_RATE_LIMIT_PER_MINUTE", "5", "password attempts per account and minute: /login per email, /authenticate per username (429 beyond)"),
    SettingSpec("LOGIN_CLIENT_RATE_LIMIT_PER_MINUTE", "30", "requests per client address and minute on /register, /login, /identify and /authenticate (each)"),
    SettingSpec("MAIL_RATE_LIMIT_PER_HOUR", "5", "OTP mails (registration and login codes together) per email address and hour"),
    # devices: hardware attestation (Android Key Attestation, Apple App Attest) and the newer
    # Play Integrity verdict checks
    SettingSpec("MIN_DEVICE_TRUST", "software", "weakest device trust_level /upload-file and /verify accept: software, hardware or strongbox"),
    SettingSpec("ATTESTATION_TEST_ROOTS", "", "DEV ONLY, never in Azure: PEM bundle of extra attestation roots (the dev stack's test authority)"),
    SettingSpec("ANDROID_ATTESTATION_PACKAGES", "", "comma-separated Android package names android-key attestations must be for (required by that format)"),
    SettingSpec("ANDROID_ATTESTATION_SIGNATURE_DIGESTS", "", "comma-separated SHA-256 digests of the app's signing certificates, hex or base64 (required by android-key)"),
    SettingSpec("ANDROID_ALLOW_UNLOCKED", "false", "accept android-key attestations from unlocked bootloaders / unverified boot"),
    SettingSpec("ANDROID_MIN_PATCH_LEVEL", "", "oldest accepted osPatchLevel, yyyymm (empty = no minimum)"),
    SettingSpec("ANDROID_ATTESTATION_STATUS_URL", "https://android.googleapis.com/attestation/status", "Google's attestation status (revocation) list"),
    SettingSpec("ANDROID_ATTESTATION_STATUS_MAX_AGE_SECONDS", "86400", "staleness budget of the cached status list; beyond it android-key answers 503, seconds"),
    SettingSpec("ANDROID_ATTESTATION_STATUS_TIMEOUT_SECONDS", "10", "connect/read timeout fetching the status list, seconds"),
    SettingSpec("ANDROID_ATTESTATION_STATUS_SCHEDULE", "0 7 * * * *", "six-field NCRONTAB of the timer refreshing the status list and re-checking stored chains (UTC)"),
    SettingSpec("APP_ATTEST_APP_IDS", "", "comma-separated App IDs (TEAMID.bundle.id) apple-appattest attestations must be for (required by that format)"),
    SettingSpec("APP_ATTEST_ENVIRONMENT", "production", "App Attest environment accepted: production or development"),
    SettingSpec("PLAY_INTEGRITY_MIN_VERSION_CODE", "0", "lowest accepted appIntegrity.versionCode (0 = any)"),
    SettingSpec("PLAY_INTEGRITY_REQUIRE_PLAY_PROTECT", "false", "require environmentDetails.playProtectVerdict NO_ISSUES"),
    SettingSpec("PLAY_INTEGRITY_REFUSE_RISKY_APPS", "false", "refuse appAccessRiskVerdict UNKNOWN_CAPTURING / UNKNOWN_CONTROLLING / UNKNOWN_OVERLAYS"),
    SettingSpec("PLAY_INTEGRITY_MAX_ACTIVITY_LEVEL", "", "highest accepted recentDeviceActivity.deviceActivityLevel, LEVEL_1..LEVEL_4 (empty = not checked)"),
    SettingSpec("PLAY_INTEGRITY_ALLOW_TESTING", "false", "accept testingDetails.isTestingResponse tokens (Play Console test responses)"),
    # audit. Empty key defaults on purpose: an audited decision answers 500
    # configuration_error naming the setting (shared_code.audit), so nothing is ever decided unlogged.
    SettingSpec("AUDIT_CONTAINER", "audit", "blob container of the audit log (log segments, hash tiles, checkpoints)"),
    SettingSpec("AUDIT_SIGNING_KEY", "", "base64 of the 32-byte Ed25519 private key that signs audit checkpoints (Key Vault reference in Azure)", secret=True),
    SettingSpec("AUDIT_SALT", "", "base64 key (>= 32 bytes) of the salted digests (HMAC-SHA256) of emails and addresses in audit entries", secret=True),
    SettingSpec("AUDIT_ENVIRONMENT", "local", "environment name in the audit log's origin trustgate/<environment>/audit"),
    SettingSpec("AUDIT_CHECKPOINT_SECONDS", "60", "a new signed checkpoint at most this long after new entries (the timer runs every minute), seconds"),
    SettingSpec("AUDIT_CHECKPOINT_ENTRIES", "1000", "also sign a checkpoint in the request that appends every N-th entry"),
    # Direct-to-blob uploads. Required, no default, like UPLOADS_CONTAINER: the staging
    # blob trigger's path binds %UPLOAD_STAGING_CONTAINER%, which the host resolves from app settings only.
    SettingSpec("UPLOAD_STAGING_CONTAINER", None, "blob container devices write direct uploads to (SAS create+write), the verifier trigger's path"),
    SettingSpec("MAX_DIRECT_UPLOAD_BYTES", "5368709120", "largest file POST /api/uploads grants, bytes"),
    SettingSpec("UPLOAD_SAS_TTL_SECONDS", "900", "lifetime of one upload_url (SAS), seconds; renew for another"),
    SettingSpec("UPLOAD_GRANT_TTL_SECONDS", "86400", "how long a direct-upload grant stays pending (renewals and the commit must fall inside), seconds"),
    SettingSpec("MAX_PENDING_UPLOADS_PER_DEVICE", "4", "direct-upload grants one device may have pending at once (429 beyond)"),
    # abuse resistance
    SettingSpec("RATE_LIMIT_IPV6_PREFIX", "64", "per-client limits count IPv6 clients per network of this prefix length (64 = one subscriber's /64; 128 = per address)"),
    SettingSpec("KMS_KEYS_PER_HOUR", "60", "file key pairs (POST /get_public_key) one user may create per hour (429 beyond)"),
    # device and account lifecycle
    SettingSpec("ATTESTATION_REVOCATION_ACTION", "downgrade", "what a revoked attestation certificate does to the devices whose stored chain holds it: downgrade (trust_level revoked) or revoke (the device, with its cascade)"),
    # KMS key service: KEK versions and the rewrap timer, unwrap, private-key export, file key versions.
    SettingSpec("KMS_MASTER_KEYS", "", "JSON map of KEK id -> base64 32-byte AES-256 KEK, for KEK rotation (one Key Vault secret in Azure); KMS_MASTER_KEY joins it under its derived id", secret=True),
    SettingSpec("KMS_ACTIVE_KEK", "", "id of the KEK new wraps use; required when more than one KEK is configured"),
    # Binding expression of the rewrap timer: like PURGE_SCHEDULE, the host resolves it from app settings only.
    SettingSpec("KMS_REWRAP_SCHEDULE", "0 */10 * * * *", "six-field NCRONTAB schedule of the timer that rewraps file keys under older KEKs (UTC)"),
    SettingSpec("KMS_REWRAP_BATCH_SIZE", "100", "file keys the rewrap timer reads and rewraps per batch"),
    SettingSpec("KMS_REWRAP_MAX_BATCHES", "10", "batches per rewrap timer run (the next run continues)"),
    SettingSpec("KMS_EXPORT_PRIVATE_KEYS", "true", "serve file private keys on POST /get_private_key (seed API); false = 403 export_disabled, /unwrap_key only"),
    SettingSpec("KMS_UNWRAP_RATE_LIMIT_PER_MINUTE", "600", "POST /unwrap_key calls per user and minute (429 beyond)"),
    SettingSpec("KMS_MAX_KEY_VERSIONS", "8", "live (not retired) key versions a file key may have; /rotate_file_key answers 409 beyond"),
)

_SPECS = {spec.name: spec for spec in SETTINGS}


@dataclass(frozen=True)
class Settings:
    """Parsed settings. Durations are seconds, sizes bytes, keys raw bytes."""

    cosmos_endpoint: str
    cosmos_key: str
    cosmos_database: str
    cosmos_verify_tls: bool
    storage_connection_string: str
    storage_blob_url: str
    azure_client_id: str
    storage_timeout_seconds: int
    uploads_container: str
    device_token_pepper: bytes
    challenge_ttl_seconds: int
    max_upload_bytes: int
    allowed_content_types: frozenset[str]
    files_page_size: int
    session_idle_timeout_seconds: int
    session_absolute_timeout_seconds: int
    password_pepper: bytes
    bcrypt_cost: int
    kms_master_key: str
    kms_rsa_key_bits: int
    encrypted_files_container: str
    datastore_max_file_bytes: int
    # optional settings whose value was an unresolved "@Microsoft.KeyVault(...)" reference (read as
    # their default), so the feature that needs one can say why it is unavailable
    unresolved_references: frozenset[str]
    token_expiration_seconds: int
    token_max_ttl_seconds: int
    token_ip_allow: tuple[IPNetwork, ...]
    token_ip_deny: tuple[IPNetwork, ...]
    trusted_proxy_hops: int
    token_rate_limit_per_minute: int
    token_verify_failure_burst: int
    rate_limit_lease_units: int
    purge_schedule: str
    password_min_score: int
    otp_pepper: bytes
    otp_ttl_seconds: int
    smtp_host: str
    smtp_port: int
    smtp_username: str
    smtp_password: str
    smtp_sender: str
    smtp_starttls: bool
    smtp_timeout_seconds: int
    jwt_secret: bytes
    jwt_ttl_seconds: int
    jwt_issuer: str
    jwt_audience: str
    max_message_bytes: int
    messages_container: str
    messages_page_size: int
    play_integrity_mode: str
    play_integrity_package_name: str
    play_integrity_credentials: str
    play_integrity_api_base: str
    play_integrity_decryption_key: str
    play_integrity_verification_key: str
    play_integrity_max_age_seconds: int
    play_integrity_cert_digests: frozenset[str]
    play_integrity_min_device: str
    play_integrity_require_licensed: bool
    play_integrity_timeout_seconds: int
    require_integrity_for_upload: bool
    login_rate_limit_per_minute: int
    login_client_rate_limit_per_minute: int
    mail_rate_limit_per_hour: int
    # devices: hardware attestation and the newer Play Integrity checks
    min_device_trust: str
    attestation_test_roots: str
    android_attestation_packages: frozenset[str]
    android_attestation_signature_digests: frozenset[str]
    android_allow_unlocked: bool
    android_min_patch_level: int | None
    android_attestation_status_url: str
    android_attestation_status_max_age_seconds: int
    android_attestation_status_timeout_seconds: int
    android_attestation_status_schedule: str
    app_attest_app_ids: frozenset[str]
    app_attest_environment: str
    play_integrity_min_version_code: int
    play_integrity_require_play_protect: bool
    play_integrity_refuse_risky_apps: bool
    play_integrity_max_activity_level: str
    play_integrity_allow_testing: bool
    # audit
    audit_container: str
    audit_signing_key: bytes
    audit_salt: bytes
    audit_environment: str
    audit_checkpoint_seconds: int
    audit_checkpoint_entries: int
    # direct-to-blob uploads
    upload_staging_container: str
    max_direct_upload_bytes: int
    upload_sas_ttl_seconds: int
    upload_grant_ttl_seconds: int
    max_pending_uploads_per_device: int
    # abuse resistance
    rate_limit_ipv6_prefix: int
    kms_keys_per_hour: int
    # device and account lifecycle
    attestation_revocation_action: str
    # KMS key service
    kms_master_keys: str
    kms_active_kek: str
    kms_rewrap_schedule: str
    kms_rewrap_batch_size: int
    kms_rewrap_max_batches: int
    kms_export_private_keys: bool
    kms_unwrap_rate_limit_per_minute: int
    kms_max_key_versions: int


def local_settings_values() -> dict[str, str]:
    """The ``Values`` of ``local.settings.json`` (or ``TRUSTGATE_LOCAL_SETTINGS``); ``{}`` if absent.

    Raises :class:`ConfigError` when the file exists but is not JSON.
    """
    path = Path(os.environ.get("TRUSTGATE_LOCAL_SETTINGS", PROJECT_ROOT / "local.settings.json"))
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError("local.settings.json", f"cannot be read as JSON ({exc.__class__.__name__})") from exc
    values = document.get("Values", {}) if isinstance(document, dict) else {}
    return {str(k): str(v) for k, v in values.items()}


_UNRESOLVED_KEY_VAULT_REFERENCE = "@Microsoft.KeyVault("


class _Reader:
    def __init__(self, sources: Mapping[str, str]) -> None:
        self._sources = sources

    def raw(self, name: str) -> str:
        spec = _SPECS[name]
        value = self._sources.get(name)
        if value is not None and value.startswith(_UNRESOLVED_KEY_VAULT_REFERENCE):
            # In Azure an app setting that is still "@Microsoft.KeyVault(...)" is a reference the
            # platform could not resolve (secret not created yet, or no access): treat it as unset.
            if spec.default is None:
                raise ConfigError(name, "is a Key Vault reference that did not resolve (secret missing or no access)")
            return spec.default
        if value is None or value == "":
            if spec.default is None:
                raise ConfigError(name, "is required but not set")
            return spec.default
        return value

    def text(self, name: str) -> str:
        return self.raw(name).strip()

    def integer(self, name: str, minimum: int = 0, maximum: int | None = None) -> int:
        value = self.text(name)
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(name, "must be an integer") from None
        if number < minimum or (maximum is not None and number > maximum):
            raise ConfigError(name, f"must be between {minimum} and {maximum if maximum is not None else 'inf'}")
        return number

    def boolean(self, name: str) -> bool:
        value = self.text(name).lower()
        if value in {"1", "true", "yes", "on"}:
            return True
        if value in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(name, "must be true or false")

    def key(self, name: str, min_bytes: int) -> bytes:
        try:
            key = base64.b64decode(self.text(name), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(name, "must be base64") from None
        if len(key) < min_bytes:
            raise ConfigError(name, f"must decode to at least {min_bytes} bytes")
        return key

    def choice(self, name: str, allowed: tuple[str, ...], normalise: Callable[[str], str] = str) -> str:
        value = normalise(self.text(name))
        if value not in allowed:
            raise ConfigError(name, f"must be one of {', '.join(allowed)}")
        return value

    def csv(self, name: str, transform: Callable[[str], str] = str.strip) -> frozenset[str]:
        return frozenset(transform(item) for item in self.text(name).split(",") if item.strip())

    def networks(self, name: str) -> tuple[IPNetwork, ...]:
        """Comma-separated IPv4/IPv6 addresses and CIDR ranges (host bits ignored)."""
        try:
            return tuple(ipaddress.ip_network(item, strict=False) for item in sorted(self.csv(name)))
        except ValueError:
            raise ConfigError(name, "must be comma-separated IP addresses or CIDR ranges") from None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Parse settings from ``environ`` (default ``os.environ``) over ``local.settings.json``.

    Raises :class:`ConfigError` for the first missing or malformed setting.
    """
    sources = {**local_settings_values(), **(os.environ if environ is None else environ)}
    r = _Reader(sources)
    return Settings(
        cosmos_endpoint=r.text("COSMOS_ENDPOINT"),
        cosmos_key=r.text("COSMOS_KEY"),
        cosmos_database=r.text("COSMOS_DATABASE"),
        cosmos_verify_tls=r.boolean("COSMOS_VERIFY_TLS"),
        storage_connection_string=r.text("STORAGE"),
        storage_blob_url=r.text("STORAGE__blobServiceUri"),
        azure_client_id=r.text("AZURE_CLIENT_ID"),
        storage_timeout_seconds=r.integer("STORAGE_TIMEOUT_SECONDS", 1, 300),
        uploads_container=r.text("UPLOADS_CONTAINER"),
        device_token_pepper=r.key("DEVICE_TOKEN_PEPPER", 32),
        challenge_ttl_seconds=r.integer("CHALLENGE_TTL_SECONDS", 10, 86400),
        max_upload_bytes=r.integer("MAX_UPLOAD_BYTES", 1, 1 << 31),
        allowed_content_types=r.csv("ALLOWED_CONTENT_TYPES", lambda s: s.strip().lower()),
        files_page_size=r.integer("FILES_PAGE_SIZE", 1, 200),
        session_idle_timeout_seconds=r.integer("SESSION_IDLE_TIMEOUT_SECONDS", 60, 86400),
        session_absolute_timeout_seconds=r.integer("SESSION_ABSOLUTE_TIMEOUT_SECONDS", 60, 30 * 86400),
        password_pepper=r.key("PASSWORD_PEPPER", 32),
        bcrypt_cost=r.integer("BCRYPT_COST", 12, 16),
        kms_master_key=r.text("KMS_MASTER_KEY"),
        kms_rsa_key_bits=_rsa_key_bits(r),
        encrypted_files_container=r.text("ENCRYPTED_FILES_CONTAINER"),
        datastore_max_file_bytes=r.integer("DATASTORE_MAX_FILE_BYTES", 1, 256 * 1024 * 1024),
        unresolved_references=frozenset(
            name for name, value in sources.items()
            if name in _SPECS and str(value).startswith(_UNRESOLVED_KEY_VAULT_REFERENCE)
        ),
        token_expiration_seconds=r.integer("TOKEN_EXPIRATION_TIME", 1, 30 * 86400),
        token_max_ttl_seconds=r.integer("TOKEN_MAX_TTL_SECONDS", 1, 365 * 86400),
        token_ip_allow=r.networks("TOKEN_IP_ALLOW"),
        token_ip_deny=r.networks("TOKEN_IP_DENY"),
        trusted_proxy_hops=r.integer("TRUSTED_PROXY_HOPS", 0, 10),
        token_rate_limit_per_minute=r.integer("TOKEN_RATE_LIMIT_PER_MINUTE", 1, 1_000_000),
        token_verify_failure_burst=r.integer("TOKEN_VERIFY_FAILURE_BURST", 1, 1_000_000),
        rate_limit_lease_units=r.integer("RATE_LIMIT_LEASE_UNITS", 1, 1000),
        purge_schedule=r.text("PURGE_SCHEDULE"),
        password_min_score=r.integer("PASSWORD_MIN_SCORE", 0, 4),
        otp_pepper=r.key("OTP_PEPPER", 32),
        otp_ttl_seconds=r.integer("OTP_TTL_SECONDS", 60, 3600),
        smtp_host=r.text("SMTP_HOST"),
        smtp_port=r.integer("SMTP_PORT", 1, 65535),
        smtp_username=r.text("SMTP_USERNAME"),
        smtp_password=r.raw("SMTP_PASSWORD"),
        smtp_sender=r.text("SMTP_SENDER"),
        smtp_starttls=r.boolean("SMTP_STARTTLS"),
        smtp_timeout_seconds=r.integer("SMTP_TIMEOUT_SECONDS", 1, 120),
        jwt_secret=r.key("JWT_SECRET", 32),
        jwt_ttl_seconds=r.integer("JWT_TTL_SECONDS", 30, 86400),
        jwt_issuer=r.text("JWT_ISSUER"),
        jwt_audience=r.text("JWT_AUDIENCE"),
        max_message_bytes=r.integer("MAX_MESSAGE_BYTES", 1, 1 << 20),
        messages_container=r.text("MESSAGES_CONTAINER"),
        messages_page_size=r.integer("MESSAGES_PAGE_SIZE", 1, 1000),
        play_integrity_mode=r.choice("PLAY_INTEGRITY_MODE", ("google", "local"), str.lower),
        play_integrity_package_name=r.text("PLAY_INTEGRITY_PACKAGE_NAME"),
        play_integrity_credentials=r.text("PLAY_INTEGRITY_CREDENTIALS"),
        play_integrity_api_base=r.text("PLAY_INTEGRITY_API_BASE").rstrip("/"),
        play_integrity_decryption_key=r.text("PLAY_INTEGRITY_DECRYPTION_KEY"),
        play_integrity_verification_key=r.text("PLAY_INTEGRITY_VERIFICATION_KEY"),
        play_integrity_max_age_seconds=r.integer("PLAY_INTEGRITY_MAX_AGE_SECONDS", 10, 86400),
        play_integrity_cert_digests=r.csv("PLAY_INTEGRITY_CERT_DIGESTS", lambda s: s.strip().rstrip("=")),
        play_integrity_min_device=r.choice("PLAY_INTEGRITY_MIN_DEVICE", ("BASIC", "DEVICE", "STRONG"), str.upper),
        play_integrity_require_licensed=r.boolean("PLAY_INTEGRITY_REQUIRE_LICENSED"),
        play_integrity_timeout_seconds=r.integer("PLAY_INTEGRITY_TIMEOUT_SECONDS", 1, 60),
        require_integrity_for_upload=r.boolean("REQUIRE_INTEGRITY_FOR_UPLOAD"),
        login_rate_limit_per_minute=r.integer("LOGIN_RATE_LIMIT_PER_MINUTE", 1, 1_000_000),
        login_client_rate_limit_per_minute=r.integer("LOGIN_CLIENT_RATE_LIMIT_PER_MINUTE", 1, 1_000_000),
        mail_rate_limit_per_hour=r.integer("MAIL_RATE_LIMIT_PER_HOUR", 1, 1_000_000),
        # devices: hardware attestation and the newer Play Integrity checks
        min_device_trust=r.choice("MIN_DEVICE_TRUST", ("software", "hardware", "strongbox"), str.lower),
        attestation_test_roots=r.raw("ATTESTATION_TEST_ROOTS").strip(),
        android_attestation_packages=r.csv("ANDROID_ATTESTATION_PACKAGES"),
        android_attestation_signature_digests=r.csv("ANDROID_ATTESTATION_SIGNATURE_DIGESTS"),
        android_allow_unlocked=r.boolean("ANDROID_ALLOW_UNLOCKED"),
        android_min_patch_level=_patch_level(r),
        android_attestation_status_url=r.text("ANDROID_ATTESTATION_STATUS_URL"),
        android_attestation_status_max_age_seconds=r.integer("ANDROID_ATTESTATION_STATUS_MAX_AGE_SECONDS", 60, 30 * 86400),
        android_attestation_status_timeout_seconds=r.integer("ANDROID_ATTESTATION_STATUS_TIMEOUT_SECONDS", 1, 60),
        android_attestation_status_schedule=r.text("ANDROID_ATTESTATION_STATUS_SCHEDULE"),
        app_attest_app_ids=r.csv("APP_ATTEST_APP_IDS"),
        app_attest_environment=r.choice("APP_ATTEST_ENVIRONMENT", ("production", "development"), str.lower),
        play_integrity_min_version_code=r.integer("PLAY_INTEGRITY_MIN_VERSION_CODE", 0, 1 << 62),
        play_integrity_require_play_protect=r.boolean("PLAY_INTEGRITY_REQUIRE_PLAY_PROTECT"),
        play_integrity_refuse_risky_apps=r.boolean("PLAY_INTEGRITY_REFUSE_RISKY_APPS"),
        play_integrity_max_activity_level=_activity_level(r),
        play_integrity_allow_testing=r.boolean("PLAY_INTEGRITY_ALLOW_TESTING"),
        # audit
        audit_container=r.text("AUDIT_CONTAINER"),
        audit_signing_key=r.key("AUDIT_SIGNING_KEY", 32) if r.text("AUDIT_SIGNING_KEY") else b"",
        audit_salt=r.key("AUDIT_SALT", 32) if r.text("AUDIT_SALT") else b"",
        audit_environment=_audit_environment(r),
        audit_checkpoint_seconds=r.integer("AUDIT_CHECKPOINT_SECONDS", 60, 86400),
        audit_checkpoint_entries=r.integer("AUDIT_CHECKPOINT_ENTRIES", 1, 1_000_000),
        # direct-to-blob uploads: at most 50,000 blocks of at most 4000 MiB (Put Block), capped at 4 TiB
        upload_staging_container=r.text("UPLOAD_STAGING_CONTAINER"),
        max_direct_upload_bytes=r.integer("MAX_DIRECT_UPLOAD_BYTES", 1, 1 << 42),
        upload_sas_ttl_seconds=r.integer("UPLOAD_SAS_TTL_SECONDS", 60, 86400),
        upload_grant_ttl_seconds=r.integer("UPLOAD_GRANT_TTL_SECONDS", 300, 86400),
        max_pending_uploads_per_device=r.integer("MAX_PENDING_UPLOADS_PER_DEVICE", 1, 100),
        # abuse resistance
        rate_limit_ipv6_prefix=r.integer("RATE_LIMIT_IPV6_PREFIX", 32, 128),
        kms_keys_per_hour=r.integer("KMS_KEYS_PER_HOUR", 1, 1_000_000),
        # device and account lifecycle
        attestation_revocation_action=r.choice("ATTESTATION_REVOCATION_ACTION", ("downgrade", "revoke"), str.lower),
        # KMS key service
        kms_master_keys=r.text("KMS_MASTER_KEYS"),
        kms_active_kek=r.text("KMS_ACTIVE_KEK"),
        kms_rewrap_schedule=r.text("KMS_REWRAP_SCHEDULE"),
        kms_rewrap_batch_size=r.integer("KMS_REWRAP_BATCH_SIZE", 1, 1000),
        kms_rewrap_max_batches=r.integer("KMS_REWRAP_MAX_BATCHES", 1, 1000),
        kms_export_private_keys=r.boolean("KMS_EXPORT_PRIVATE_KEYS"),
        kms_unwrap_rate_limit_per_minute=r.integer("KMS_UNWRAP_RATE_LIMIT_PER_MINUTE", 1, 1_000_000),
        kms_max_key_versions=r.integer("KMS_MAX_KEY_VERSIONS", 2, 64),
    )


KMS_RSA_KEY_SIZES = (2048, 3072, 4096)


def _rsa_key_bits(r: _Reader) -> int:
    bits = r.integer("KMS_RSA_KEY_BITS", 2048, 4096)
    if bits not in KMS_RSA_KEY_SIZES:
        raise ConfigError("KMS_RSA_KEY_BITS", "must be 2048, 3072 or 4096")
    return bits


def _patch_level(r: _Reader) -> int | None:
    """``ANDROID_MIN_PATCH_LEVEL``: ``yyyymm`` (month 01-12) or empty."""
    value = r.text("ANDROID_MIN_PATCH_LEVEL")
    if not value:
        return None
    if len(value) != 6 or not value.isdigit() or not 1 <= int(value[4:]) <= 12:
        raise ConfigError("ANDROID_MIN_PATCH_LEVEL", "must be yyyymm, e.g. 202401")
    return int(value)


ACTIVITY_LEVELS = ("LEVEL_1", "LEVEL_2", "LEVEL_3", "LEVEL_4")


def _activity_level(r: _Reader) -> str:
    value = r.text("PLAY_INTEGRITY_MAX_ACTIVITY_LEVEL").upper()
    if value and value not in ACTIVITY_LEVELS:
        raise ConfigError("PLAY_INTEGRITY_MAX_ACTIVITY_LEVEL", f"must be empty or one of {', '.join(ACTIVITY_LEVELS)}")
    return value


def _audit_environment(r: _Reader) -> str:
    # c2sp.org/signed-note: the origin is also the key name, which has no spaces and no "+".
    value = r.text("AUDIT_ENVIRONMENT")
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", value):
        raise ConfigError("AUDIT_ENVIRONMENT", "must be 1-64 of A-Z a-z 0-9 . _ -")
    return value


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, parsed on first use. Raises :class:`ConfigError`."""
    return load_settings()


def reset_settings() -> None:
    """Forget the cached settings (tests and the devhost call this after changing the environment)."""
    get_settings.cache_clear()
