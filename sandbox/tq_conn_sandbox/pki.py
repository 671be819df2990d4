"""A throwaway certificate authority for the stand-ins: CA, server and client certificates made with cryptography."""

import datetime
import ipaddress
import os
import ssl
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAY = datetime.timedelta(days=1)


def new_key(kind="ec"):
    """Return a new private key: "ec" (P-256, fast) or "rsa" (2048 bits)."""
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def cert_pem(cert):
    """Return the PEM text of a certificate."""
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def key_pem(key):
    """Return the PEM text (PKCS#8, unencrypted) of a private key."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


def _name(common_name, organization="tq-conn sandbox"):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


class Issued:
    """A certificate and its private key, with PEM texts."""

    def __init__(self, cert, key):
        self.cert, self.key = cert, key

    @property
    def cert_pem(self):
        return cert_pem(self.cert)

    @property
    def key_pem(self):
        return key_pem(self.key)


class Authority:
    """A self-signed CA that issues server and client certificates."""

    def __init__(self, common_name="tq-conn sandbox CA", days=3650, kind="ec"):
        self.key = new_key(kind)
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder()
                     .subject_name(_name(common_name)).issuer_name(_name(common_name))
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - DAY).not_valid_after(now + days * DAY)
                     .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                  content_commitment=False, key_encipherment=False,
                                                  data_encipherment=False, key_agreement=False,
                                                  encipher_only=False, decipher_only=False), critical=True)
                     .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
                     .sign(self.key, hashes.SHA256()))

    @property
    def cert_pem(self):
        return cert_pem(self.cert)

    def issue(self, common_name, *, server=False, hosts=(), days=365, not_before=None, not_after=None,
              key=None, kind="ec"):
        """Return an Issued server (with hosts as DNS/IP names) or client certificate signed by this CA."""
        key = key or new_key(kind)
        now = datetime.datetime.now(datetime.timezone.utc)
        not_before = not_before or now - DAY
        not_after = not_after or now + days * DAY
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (x509.CertificateBuilder()
                   .subject_name(_name(common_name)).issuer_name(self.cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(not_before).not_valid_after(not_after)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                                  critical=False))
        if hosts:
            names = []
            for host in hosts:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    names.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return Issued(builder.sign(self.key, hashes.SHA256()), key)

    def server_context(self, issued, require_client_cert=True):
        """Return a server-side SSLContext presenting issued and (optionally) requiring client certs of this CA."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        with tempfile.TemporaryDirectory(prefix="tq-conn-pki-") as folder:
            cert_file, key_file = os.path.join(folder, "server.crt"), os.path.join(folder, "server.key")
            _write(cert_file, issued.cert_pem + self.cert_pem)
            _write(key_file, issued.key_pem)
            context.load_cert_chain(cert_file, key_file)
        if require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cadata=self.cert_pem)
        return context

    def write_client(self, directory, common_name, *, prefix=None, **options):
        """Write <prefix>.crt, <prefix>.key (0600) and chain.crt into directory; return their paths as a dict."""
        os.makedirs(directory, exist_ok=True)
        issued = self.issue(common_name, **options)
        prefix = prefix or common_name
        paths = {"cert": os.path.join(directory, f"{prefix}.crt"), "key": os.path.join(directory, f"{prefix}.key"),
                 "chain": os.path.join(directory, "chain.crt")}
        _write(paths["cert"], issued.cert_pem)
        _write(paths["key"], issued.key_pem)
        _write(paths["chain"], self.cert_pem)
        return paths


def _write(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(text)


__all__ = ["Authority", "Issued", "new_key", "cert_pem", "key_pem"]
