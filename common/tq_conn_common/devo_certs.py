"""Checks of the Devo X.509 credentials before connecting: PEM parses, key fits, dates, chain issued the cert."""

import datetime
import logging
import os

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

log = logging.getLogger(__name__)

WARN_DAYS = 30
LABELS = {"devo_cert": "'Devo X.509 Certificate' (devo_cert)", "devo_key": "'Devo X.509 Private Key' (devo_key)",
          "devo_chain": "'Devo X.509 Chain CA' (devo_chain)"}
_FROM_DEVO = "download it again from Devo (Administration -> Credentials -> X.509 Certificates)"


def is_pem_text(value):
    """Return whether a setting holds pasted PEM text (rather than a file path)."""
    return "-----BEGIN" in str(value)


def read(value, key):
    """Return the PEM bytes of a setting (pasted text, or the file it names); raise ValueError with the fix."""
    value = str(value).strip()
    if is_pem_text(value):
        return value.encode("utf-8") + b"\n"
    if "\n" in value or len(value) > 1024:
        raise ValueError(f"{LABELS[key]} holds text without a -----BEGIN line; paste the whole PEM text including "
                         "its BEGIN and END lines, or give the path of the file.")
    path = os.path.expanduser(value)
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise ValueError(f"{LABELS[key]} is neither PEM text nor an existing file ({value}); paste the PEM text "
                         "including its BEGIN and END lines, or give the path of the file.") from None
    except OSError as exc:
        raise ValueError(f"{LABELS[key]}: the file {value} cannot be read ({exc.strerror}); make it readable by "
                         "this user.") from None


def check(values, now=None):
    """Return the problems (one line each, naming the parameter and the fix) of cert, key and chain values."""
    problems, data = [], {}
    for key in ("devo_cert", "devo_key", "devo_chain"):
        try:
            data[key] = read(values[key], key)
        except ValueError as exc:
            problems.append(str(exc))
    cert = key = chain = None
    if "devo_cert" in data:
        cert, problem = _certificate(data["devo_cert"])
        if problem:
            problems.append(problem)
    if "devo_key" in data:
        key, problem = _private_key(data["devo_key"])
        if problem:
            problems.append(problem)
    if "devo_chain" in data:
        chain, problem = _chain(data["devo_chain"])
        if problem:
            problems.append(problem)
    if cert is not None and key is not None and not _same_key(cert, key):
        problems.append(f"{LABELS['devo_key']} does not belong to {LABELS['devo_cert']}; paste the private key "
                        "downloaded with this certificate (both from the same X.509 credential in Devo).")
    if cert is not None:
        problems.extend(_dates(cert, now))
    if cert is not None and chain and not any(_issued_by(cert, ca) for ca in chain):
        problems.append(f"{LABELS['devo_chain']} did not issue {LABELS['devo_cert']} (issuer "
                        f"{cert.issuer.rfc4514_string()}); paste the chain.crt of the same Devo domain and region.")
    return problems


def _certificate(data):
    if b"PRIVATE KEY-----" in data and b"CERTIFICATE-----" not in data:
        return None, (f"{LABELS['devo_cert']} holds a private key, not a certificate; paste the certificate "
                      f"(<domain>.crt) here and the key into {LABELS['devo_key']}.")
    try:
        return x509.load_pem_x509_certificate(data), None
    except ValueError:
        return None, (f"{LABELS['devo_cert']} is not a PEM certificate; paste the whole certificate including the "
                      f"-----BEGIN CERTIFICATE----- and -----END CERTIFICATE----- lines, or {_FROM_DEVO}.")


def _private_key(data):
    if b"PRIVATE KEY-----" not in data:
        return None, (f"{LABELS['devo_key']} is not a PEM private key; paste the whole key (<domain>.key) including "
                      "its -----BEGIN ... PRIVATE KEY----- and -----END ... PRIVATE KEY----- lines.")
    try:
        return serialization.load_pem_private_key(data, password=None), None
    except TypeError:
        return None, (f"{LABELS['devo_key']} is protected by a passphrase; export it without one "
                      "(openssl pkey -in encrypted.key -out plain.key) and paste that.")
    except (ValueError, UnsupportedAlgorithm):
        return None, (f"{LABELS['devo_key']} cannot be read as a private key; paste the whole key including its "
                      f"BEGIN and END lines, or {_FROM_DEVO}.")


def _chain(data):
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        certs = []
    if not certs:
        return None, (f"{LABELS['devo_chain']} is not a PEM certificate chain; paste the whole chain.crt including "
                      f"its BEGIN CERTIFICATE and END CERTIFICATE lines, or {_FROM_DEVO}.")
    return certs, None


def _same_key(cert, key):
    form = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert.public_key().public_bytes(*form) == key.public_key().public_bytes(*form)


def _dates(cert, now=None):
    now = now or datetime.datetime.now(datetime.timezone.utc)
    after, before = cert.not_valid_after_utc, cert.not_valid_before_utc
    if after <= now:
        return [f"{LABELS['devo_cert']} expired on {after:%Y-%m-%d}; create a new X.509 certificate in Devo "
                "(Administration -> Credentials -> X.509 Certificates) and set it with its key and chain."]
    if before > now:
        return [f"{LABELS['devo_cert']} is not valid before {before:%Y-%m-%d %H:%M} UTC; check the clock of this "
                "host, or wait until then."]
    days = (after - now).days
    if days < WARN_DAYS:
        log.warning("%s expires on %s (in %d days); create a new one in Devo and set it before then.",
                    LABELS["devo_cert"], f"{after:%Y-%m-%d}", days)
    return []


def _issued_by(cert, ca):
    if cert.issuer != ca.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


__all__ = ["check", "read", "is_pem_text", "WARN_DAYS"]
