"""ThreatQ login (reference section 2): the password or client-credentials grant, renewal, and the token cache."""

import logging
import time
from datetime import datetime, timezone
from urllib.parse import urlsplit

import yaml

from tq_conn_common import logs
from tq_conn_common.config import read_file, reveal
from tq_conn_common.errors import AuthError, ConfigError, Declared
from tq_conn_common.files import write_private
from tq_conn_common.service import reason
from tq_conn_common.threatq.settings import CLIENT_ID, CLIENT_SECRET, PASSWORD, TOKEN_KEY, USERNAME

log = logging.getLogger(__name__)

LOGIN_REFUSED = Declared(AuthError, "ThreatQ at {host} refused the login (HTTP {status}{said}).",
                         "check {who} in the config file, then run again.")
_DEFAULT_LIFETIME = 1800      # the vendor SDK renews after 30 minutes when expires_in is absent (reference 2)


class TokenCache:
    """The token of the last login, kept in the instance's config file under threatq_token with its expiry."""

    def __init__(self, path, key=TOKEN_KEY):
        self.path = path
        self.key = key

    def load(self, identity):
        """Return the cached token for this identity (host, client id, user), or None."""
        try:
            cached = read_file(self.path).get(self.key)
        except ConfigError as exc:
            log.warning("Cannot read the cached ThreatQ token: %s", exc.message)
            return None
        if not isinstance(cached, dict) or cached.get("identity") != identity or not cached.get("access_token"):
            return None
        return cached

    def save(self, token):
        """Write the token into the config file (atomically, mode 0600); every other line stays as it is."""
        try:
            with open(self.path, encoding="utf-8") as fh:
                lines = fh.read().splitlines(keepends=True)
        except FileNotFoundError:
            lines = []
        except OSError as exc:
            log.warning("Cannot read %s to cache the ThreatQ token (%s); the next run logs in again.",
                        self.path, exc.strerror)
            return
        block = yaml.safe_dump({self.key: token}, sort_keys=False, allow_unicode=True)
        out, at, skipping = [], None, False
        for line in lines:
            if line.startswith(f"{self.key}:"):
                at, skipping = len(out), True
                continue
            if skipping and line[:1] in (" ", "\t"):
                continue
            skipping = False
            out.append(line)
        if at is None:
            if out and not out[-1].endswith("\n"):
                out[-1] += "\n"
            at = len(out)
        out.insert(at, block)
        try:
            write_private(self.path, "".join(out))
        except ConfigError as exc:
            log.warning("Cannot cache the ThreatQ token in %s (%s); the next run logs in again.", self.path,
                        exc.message)


class Login:
    """The token of one ThreatQ identity: logs in, renews before expiry, and keeps it in the cache."""

    def __init__(self, http, client_id, username, password, *, client_secret=None, login_encoding="query",
                 cache=None, clock=time.time):
        self.http = http
        self.client_id = client_id
        self.username = username
        self.password = password
        self.client_secret = client_secret
        self.login_encoding = login_encoding
        self.cache = cache
        self.clock = clock
        self.identity = {"api": http.base_url, "client_id": client_id,
                         "user": username if not client_secret else None}
        self._token = cache.load(self.identity) if cache else None
        if self._token:
            logs.add_secrets([self._token.get("access_token"), self._token.get("refresh_token")])
            log.debug("Using the cached ThreatQ token (valid until %s).", self._token.get("expires_at"))

    def access_token(self):
        """Return a valid access token, logging in or renewing it when it is missing or about to expire."""
        token = self._token
        if token:
            lifetime = token.get("expires_in") or _DEFAULT_LIFETIME
            margin = min(60.0, lifetime * 0.1)
            if self.clock() < _epoch(token.get("expires_at")) - margin:
                return token["access_token"]
            log.info("The ThreatQ token expires at %s; renewing it.", token.get("expires_at"))
        return self.renew()

    def renew(self):
        """Get a new token: with the refresh token if there is one, else (or if refused) by logging in again."""
        token = None
        if self._token and self._token.get("refresh_token"):
            token = self._refresh(self._token)
        if token is None:
            token = self._login()
        self._token = token
        if self.cache:
            self.cache.save(token)
        return token["access_token"]

    def _login(self):
        if self.client_secret:
            auth = (self.client_id, reveal(self.client_secret))
            response = self.http.request("POST", "token", params={"grant_type": "client_credentials"},
                                         data={"grant_type": "client_credentials"}, auth=auth, expect=None)
            who = f"{CLIENT_ID.label} ({CLIENT_ID.key}) and {CLIENT_SECRET.label} ({CLIENT_SECRET.key})"
        else:
            fields = {"email": self.username, "password": reveal(self.password)}
            full = {**fields, "grant_type": "password", "client_id": self.client_id}
            if self.login_encoding == "json":
                kwargs = {"json": full}
            elif self.login_encoding == "form":
                kwargs = {"data": full}
            else:
                kwargs = {"params": {"grant_type": "password", "client_id": self.client_id}, "json": fields}
            response = self.http.request("POST", "token", expect=None, **kwargs)
            who = (f"{CLIENT_ID.label} ({CLIENT_ID.key}), {USERNAME.label} ({USERNAME.key}) and "
                   f"{PASSWORD.label} ({PASSWORD.key})")
        body = _json_or_none(response)
        if response.status_code in (400, 401, 403) or (response.status_code == 200 and not _has_token(body)):
            detail = reason(response.text[:2000]) if body is not None else ""
            raise LOGIN_REFUSED(host=_host(self.http.base_url), status=response.status_code,
                                said=f": {detail}" if detail else "", who=who)
        if response.status_code != 200 or body is None:
            raise self.http.error(response, context={"message": f"ThreatQ at {_host(self.http.base_url)} could not "
                                                                f"issue a token (HTTP {response.status_code})."})
        log.info("Logged in to ThreatQ at %s.", _host(self.http.base_url))
        return self._token_record(body)

    def _refresh(self, old):
        auth = (self.client_id, reveal(self.client_secret)) if self.client_secret else None
        headers = {"Authorization": f"Bearer {old['access_token']}"} if not auth else {}
        response = self.http.request("POST", "token", expect=None, auth=auth, headers=headers,
                                     params={"grant_type": "refresh_token", "refresh_token": old["refresh_token"]})
        body = _json_or_none(response)
        if response.status_code != 200 or not _has_token(body):
            log.info("ThreatQ refused the refresh token (HTTP %s); logging in again.", response.status_code)
            return None
        log.info("Renewed the ThreatQ token with the refresh token.")
        return self._token_record(body, old.get("refresh_token"))

    def _token_record(self, body, old_refresh=None):
        try:
            lifetime = float(body.get("expires_in") or _DEFAULT_LIFETIME)
        except (TypeError, ValueError):
            lifetime = _DEFAULT_LIFETIME
        lifetime = int(lifetime) if float(lifetime).is_integer() else lifetime
        record = {"identity": self.identity, "access_token": str(body["access_token"]),
                  "refresh_token": body.get("refresh_token") or old_refresh,
                  "expires_in": lifetime, "expires_at": _iso(self.clock() + lifetime)}
        logs.add_secrets([record["access_token"], record["refresh_token"]])
        return record

    def expire(self):
        """Forget that the token is valid (ThreatQ refused it): the next access_token() renews it."""
        if self._token:
            self._token = {**self._token, "expires_at": _iso(0)}


def _has_token(body):
    return isinstance(body, dict) and bool(body.get("access_token"))


def _json_or_none(response):
    try:
        return response.json()
    except ValueError:
        return None


def _host(url):
    return urlsplit(url).netloc or url


def _iso(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(text):
    try:
        return datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return 0.0


__all__ = ["Login", "TokenCache"]
