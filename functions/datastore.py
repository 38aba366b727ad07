"""Encrypted store API (seed 002 "data server"): upload, download and list encrypted files.

Every call needs a live session in the ``sid`` header (403 ``invalid_session``). Handlers only
parse, call :mod:`shared_code.filestore.datastore` / :mod:`shared_code.filestore.kms`, and respond.
"""

import azure.functions as func

from shared_code.accounts.sessions import session_email
from shared_code.filestore import datastore, key_versions, kms
from shared_code.platform.client_address import caller_label
from shared_code.platform.http import handle_errors, json_response, read_json_object

datastore_bp = func.Blueprint()


@datastore_bp.route(route="upload", methods=["POST"])
@handle_errors
def upload(req: func.HttpRequest) -> func.HttpResponse:
    """POST /upload {file_name, encrypted_data, encrypted_aes_key, encrypted_aes_initial_vector, key_version?}
    (If-Match: etag to replace) → 200 {key_version, etag} / 400 / 403 / 409 file_exists / 412 / 413."""
    email = session_email(req)
    body = read_json_object(req, max_bytes=datastore.max_body_bytes())
    file_name = kms.validate_file_name(body.get("file_name"))
    version = key_versions.parse_version(body.get("key_version"))
    version, etag = datastore.store(email, file_name, datastore.parse_envelope(body), key_version=version,
                                    if_match=req.headers.get("if-match") or None, client_address=caller_label(req.headers))
    return json_response(200, "upload_success", headers={"ETag": etag}, file_name=file_name, key_version=version, etag=etag)


@datastore_bp.route(route="download", methods=["GET"])
@handle_errors
def download(req: func.HttpRequest) -> func.HttpResponse:
    """GET /download?file_name=… → 200 {the envelope fields, key_version, etag} / 404 file_not_found / 403."""
    email = session_email(req)
    file_name = kms.validate_file_name(req.params.get("file_name"))
    stored = datastore.fetch(email, file_name, client_address=caller_label(req.headers))
    return json_response(200, "download_success", headers={"ETag": stored.etag}, file_name=file_name,
                         **stored.envelope.to_json(), key_version=stored.key_version, etag=stored.etag)


@datastore_bp.route(route="list_files", methods=["GET"])
@handle_errors
def list_files_of_user(req: func.HttpRequest) -> func.HttpResponse:
    """GET /list_files → 200 {files: [names], entries: [{file_name, role, owner}]} / 403."""
    entries = kms.accessible_files(session_email(req))
    return json_response(200, "list_files_success", files=[e["file_name"] for e in entries], entries=entries)
