"""TLS for the ``xsock`` commands: contexts from files, and certificates made for a run.

``xsock bench --tls`` needs a certificate that its clients trust and nothing
at run time beyond gevent, so it makes one in a temporary folder: with
``trustme`` when it is installed (the test extra has it), else with the
``openssl`` command.  Either way the certificate names ``127.0.0.1`` and
``localhost``, and only this run trusts it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Iterator

__all__ = ["client_context", "run_contexts", "server_context"]


def server_context(cert: str, key: str | None) -> ssl.SSLContext:
    """A server context with ``cert`` and ``key`` (``key`` may be in ``cert``).

    Raises ``OSError`` with a readable reason when the files do not load.
    """
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror or str(exc)
        raise OSError(f"cannot load the TLS certificate {cert!r}: {reason}") from None
    return ctx


def client_context(cafile: str | None) -> ssl.SSLContext:
    """The default client context, trusting ``cafile`` instead of the system's CAs if given."""
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror or str(exc)
        raise OSError(f"cannot load the CA file {cafile!r}: {reason}") from None


def check_args(args: argparse.Namespace, error: argparse.ArgumentParser) -> None:
    """Usage errors of the TLS flags (one line, exit status 2)."""
    if getattr(args, "tls_key", None) and not getattr(args, "tls_cert", None):
        error.error("--tls-key needs --tls-cert")
    if getattr(args, "cafile", None) and not getattr(args, "tls", False):
        error.error("--cafile needs --tls")
    uses_tls = getattr(args, "tls_cert", None) or getattr(args, "tls", False)
    transport = getattr(args, "transport", None) or args.endpoint.transport
    if uses_tls and transport == "udp":
        error.error("TLS needs --tcp or --unix (there is no TLS over UDP here)")


def _make_files(folder: str) -> tuple[str, str]:
    """A self-signed certificate and key for 127.0.0.1 and localhost; (cert, key) paths."""
    cert = os.path.join(folder, "cert.pem")
    key = os.path.join(folder, "key.pem")
    try:
        import trustme
    except ImportError:
        pass
    else:
        ca = trustme.CA()
        leaf = ca.issue_cert("127.0.0.1", "localhost")
        leaf.private_key_pem.write_to_path(key)
        leaf.cert_chain_pems[0].write_to_path(cert)
        ca.cert_pem.write_to_path(os.path.join(folder, "ca.pem"))
        return cert, key
    openssl = shutil.which("openssl")
    if openssl is None:
        raise OSError(
            "--tls needs a certificate made for the run: install trustme "
            "(pip install trustme) or the openssl command"
        )
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout", key, "-out", cert,
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    shutil.copyfile(cert, os.path.join(folder, "ca.pem"))
    return cert, key


@contextlib.contextmanager
def run_contexts() -> Iterator[tuple[ssl.SSLContext, ssl.SSLContext]]:
    """(server, client) contexts with a certificate made for this run and trusted by it."""
    folder = tempfile.mkdtemp(prefix="xsock-tls-")
    try:
        try:
            cert, key = _make_files(folder)
        except subprocess.CalledProcessError as exc:
            why = exc.stderr.decode(errors="replace").strip()
            raise OSError(f"openssl could not make a certificate: {why}") from None
        yield server_context(cert, key), client_context(os.path.join(folder, "ca.pem"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
