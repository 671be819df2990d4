"""Checks of the Devo X.509 credentials before connecting: PEM parses, key fits, dates, chain issued the cert."""

import datetime
import logging
import os
import re
import shutil
import sys
import tempfile

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from tq_conn_common.config import Param
from tq_conn_common.lock import alive

log = logging.getLogger(__name__)

WARN_DAYS = 30
_WARNED = set()   # certificates whose coming expiry this process (one run) has told
_PEM_HELP = ("Copy & paste the PEM text (or give the path of the file) from Administration -> Credentials -> "
             "X.509 Certificates in Devo.")
CERT = Param("devo_cert", "Devo X.509 Certificate", multiline=True, help=_PEM_HELP)
KEY = Param("devo_key", "Devo X.509 Private Key", secret=True, multiline=True, help=_PEM_HELP)
CHAIN = Param("devo_chain", "Devo X.509 Chain CA", multiline=True, help=_PEM_HELP)
PEM = (CERT, KEY, CHAIN)
_LABELS = {p.key: p.named for p in PEM}
_FROM_DEVO = "download it again from Devo (Administration -> Credentials -> X.509 Certificates)"


_FOLDER = "tq-conn-devo-"
_OURS = re.compile(re.escape(_FOLDER) + r"(\d+)-")


def in_memory(name, data, opened):
    """Return a path by which data can be opened without being on disk (a Linux memfd as /proc/self/fd/N), its
    descriptor appended to opened (close it when done); None where the platform has no such file."""
    if not hasattr(os, "memfd_create") or not sys.platform.startswith("linux"):
        return None
    try:
        fd = os.memfd_create(f"tq-conn-devo-{name}", os.MFD_CLOEXEC)
    except OSError:
        return None
    opened.append(fd)
    os.write(fd, data)
    path = f"/proc/self/fd/{fd}"
    return path if os.path.exists(path) else None


def private_folder():
    """Return a new 0700 folder for credential files, named after this process so that sweep() knows its owner."""
    sweep()
    return tempfile.mkdtemp(prefix=f"{_FOLDER}{os.getpid()}-")


def sweep(directory=None):
    """Remove the credential folders that runs which no longer live left in the temporary folder (a SIGKILL)."""
    directory = directory or tempfile.gettempdir()
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        match = _OURS.match(name)
        path = os.path.join(directory, name)
        if not match or alive(int(match.group(1))):
            continue
        try:
            if os.lstat(path).st_uid != os.getuid():
                continue
        except OSError:
            continue
        shutil.rmtree(path, ignore_errors=True)
        log.info("Removed the credential files %s left by a run that was killed.", path)


def is_pem_text(value):
    """Return whether a setting holds pasted PEM text (rather than a file path)."""
    return "-----BEGIN" in str(value)


def read(value, label):
    """Return the PEM bytes of a setting (pasted text, or the file it names); raise ValueError with the fix.

    label: how messages name the setting.
    """
    value = str(value).strip()
    if is_pem_text(value):
        return value.encode("utf-8") + b"\n"
    if "\n" in value or len(value) > 1024:
        raise ValueError(f"{label} holds text without a -----BEGIN line; paste the whole PEM text including "
                         "its BEGIN and END lines, or give the path of the file.")
    path = os.path.expanduser(value)
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise ValueError(f"{label} is neither PEM text nor an existing file ({value}); paste the PEM text "
                         "including its BEGIN and END lines, or give the path of the file.") from None
    except OSError as exc:
        raise ValueError(f"{label}: the file {value} cannot be read ({exc.strerror}); make it readable by "
                         "this user.") from None


def check(values, now=None):
    """Return the problems (one line each, naming the parameter and the fix) of cert, key and chain values:
    {devo_cert, devo_key, devo_chain: the setting's value}."""
    labels = _LABELS
    problems, data = [], {}
    for key in ("devo_cert", "devo_key", "devo_chain"):
        try:
            data[key] = read(values[key], labels[key])
        except ValueError as exc:
            problems.append(str(exc))
    cert = key = chain = None
    if "devo_cert" in data:
        cert, problem = _certificate(data["devo_cert"], labels)
        if problem:
            problems.append(problem)
    if "devo_key" in data:
        key, problem = _private_key(data["devo_key"], labels)
        if problem:
            problems.append(problem)
    if "devo_chain" in data:
        chain, problem = _chain(data["devo_chain"], labels)
        if problem:
            problems.append(problem)
    if cert is not None and key is not None and not _same_key(cert, key):
        problems.append(f"{labels['devo_key']} does not belong to {labels['devo_cert']}; paste the private key "
                        "downloaded with this certificate (both from the same X.509 credential in Devo).")
    if cert is not None:
        problems.extend(_dates(cert, labels, now))
    if cert is not None and chain and not any(_issued_by(cert, ca) for ca in chain):
        problems.append(f"{labels['devo_chain']} did not issue {labels['devo_cert']} (issuer "
                        f"{cert.issuer.rfc4514_string()}); paste the chain.crt of the same Devo domain and region.")
    return problems


def _certificate(data, labels):
    if b"PRIVATE KEY-----" in data and b"CERTIFICATE-----" not in data:
        return None, (f"{labels['devo_cert']} holds a private key, not a certificate; paste the certificate "
                      f"(<domain>.crt) here and the key into {labels['devo_key']}.")
    try:
        return x509.load_pem_x509_certificate(data), None
    except ValueError:
        return None, (f"{labels['devo_cert']} is not a PEM certificate; paste the whole certificate including the "
                      f"-----BEGIN CERTIFICATE----- and -----END CERTIFICATE----- lines, or {_FROM_DEVO}.")


def _private_key(data, labels):
    if b"PRIVATE KEY-----" not in data:
        return None, (f"{labels['devo_key']} is not a PEM private key; paste the whole key (<domain>.key) including "
                      "its -----BEGIN ... PRIVATE KEY----- and -----END ... PRIVATE KEY----- lines.")
    try:
        return serialization.load_pem_private_key(data, password=None), None
    except TypeError:
        return None, (f"{labels['devo_key']} is protected by a passphrase; export it without one "
                      "(openssl pkey -in encrypted.key -out plain.key) and paste that.")
    except (ValueError, UnsupportedAlgorithm):
        return None, (f"{labels['devo_key']} cannot be read as a private key; paste the whole key including its "
                      f"BEGIN and END lines, or {_FROM_DEVO}.")


def _chain(data, labels):
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        certs = []
    if not certs:
        return None, (f"{labels['devo_chain']} is not a PEM certificate chain; paste the whole chain.crt including "
                      f"its BEGIN CERTIFICATE and END CERTIFICATE lines, or {_FROM_DEVO}.")
    return certs, None


def _same_key(cert, key):
    form = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert.public_key().public_bytes(*form) == key.public_key().public_bytes(*form)


def _dates(cert, labels, now=None):
    now = now or datetime.datetime.now(datetime.timezone.utc)
    after, before = cert.not_valid_after_utc, cert.not_valid_before_utc
    if after <= now:
        return [f"{labels['devo_cert']} expired on {after:%Y-%m-%d}; create a new X.509 certificate in Devo "
                "(Administration -> Credentials -> X.509 Certificates) and set it with its key and chain."]
    if before > now:
        return [f"{labels['devo_cert']} is not valid before {before:%Y-%m-%d %H:%M} UTC; check the clock of this "
                "host, or wait until then."]
    days = (after - now).days
    if days < WARN_DAYS and cert.serial_number not in _WARNED:   # told once a run, however often it is checked
        _WARNED.add(cert.serial_number)
        log.warning("%s expires on %s (in %d days); create a new one in Devo and set it before then.",
                    labels["devo_cert"], f"{after:%Y-%m-%d}", days)
    return []


def _issued_by(cert, ca):
    if cert.issuer != ca.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


__all__ = ["check", "read", "is_pem_text", "in_memory", "private_folder", "sweep", "WARN_DAYS", "CERT", "KEY", "CHAIN",
           "PEM"]
