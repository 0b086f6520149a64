"""The one secrets store (the :class:`orderflow.ports.Secrets` port): JSON secrets by name. Channels',
suppliers' and carrier accounts' credentials are kept here (FBA uses its Amazon channel's); each slice keeps
its own pydantic model and its own place (:class:`SliceSecrets` at a :class:`SecretsHome`: a name prefix in
Secrets Manager, or the local stack's file).

- **AWS Secrets Manager** (:class:`SecretsManagerSecrets`): the secret ``<prefix><name>``, a JSON string.
  Reads go through Powertools Parameters' ``SecretsProvider`` and its cache (a minute); writes and deletes
  use boto3 and drop that secret from the cache, so this process reads what it wrote. The provider is one
  per boto3 client, so every store of a process shares the cache (on the local stack, the API's put is seen
  by the import function at once). boto3 honours ``AWS_ENDPOINT_URL``: the local stack's embedded endpoint
  serves the same API.
- **A file** (:class:`FileSecrets`): the local stack's stand-in, ``{name: secret}`` in one JSON file that
  is readable by its owner only, written whole through :func:`orderflow.private_files.write_private` on
  every change (put and delete alike: 0600 from the first byte, the same ``<file>.tmp`` renamed into
  place). It is read on every get: nothing to invalidate.

A secret scheduled for deletion (a disconnected channel's) reads as none, and a put brings it back.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import ClientError

from orderflow.adapters.aws import client
from orderflow.private_files import write_private

if TYPE_CHECKING:
    from orderflow.ports import Secrets

#: How long a value read from Secrets Manager is used before it is read again (per process).
CACHE_SECONDS = 60
#: Secrets Manager keeps a deleted secret this many days (a put in that time restores it).
RECOVERY_DAYS = 7

_TRANSFORM = "json"


def _code(err: ClientError) -> str:
    return err.response.get("Error", {}).get("Code", "")


def _marked_deleted(err: ClientError) -> bool:
    """Secrets Manager's answer for a secret scheduled for deletion."""
    return _code(err) == "InvalidRequestException" and "marked deleted" in err.response["Error"].get("Message", "")


def _absent(err: ClientError) -> bool:
    return _code(err) == "ResourceNotFoundException" or _marked_deleted(err)


_providers: dict[int, tuple[Any, Any]] = {}
_providers_lock = threading.Lock()


def _provider(sm: Any) -> Any:
    """The Powertools ``SecretsProvider`` (and so the cache) of this boto3 client: one per process, a new
    one when the clients are reset (tests that move the endpoint)."""
    with _providers_lock:
        entry = _providers.get(id(sm))
        if entry is None or entry[0] is not sm:
            # imported on first use: functions that never read a secret do not pay for it at cold start
            from aws_lambda_powertools.utilities.parameters import SecretsProvider

            entry = _providers[id(sm)] = (sm, SecretsProvider(boto3_client=sm))
        return entry[1]


class SecretsManagerSecrets:
    """Secrets in AWS Secrets Manager, ``<prefix><name>``."""

    def __init__(self, prefix: str, *, cache_seconds: int = CACHE_SECONDS, sm_client: Any = None) -> None:
        self.prefix = prefix
        self.cache_seconds = cache_seconds
        self._client = sm_client

    def _sm(self) -> Any:
        return self._client if self._client is not None else client("secretsmanager")

    def secret_id(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def ref(self, name: str) -> str:
        return f"secretsmanager:{self.secret_id(name)}"

    def get(self, name: str) -> dict[str, Any] | None:
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        failure: ClientError | None = None
        try:
            value = _provider(self._sm()).get(self.secret_id(name), max_age=self.cache_seconds,
                                              transform=_TRANSFORM, force_fetch=not self.cache_seconds)
        except GetParameterError as err:
            # Powertools wraps every error of the read; the service's own answer is the one raised inside
            cause = err.__context__
            if not isinstance(cause, ClientError):
                raise
            if _absent(cause):
                return None
            failure = cause
        if failure is not None:
            raise failure
        # a copy: the cached value stays as it was read, whatever the caller does with this one
        return copy.deepcopy(value) if isinstance(value, dict) and value else None

    def put(self, name: str, value: dict[str, Any], *, description: str = "") -> str:
        try:
            _write(self._sm(), self.secret_id(name), json.dumps(value), description)
        finally:
            self.forget(name)
        return self.ref(name)

    def delete(self, name: str) -> None:
        """Schedule the secret's deletion (Secrets Manager keeps it :data:`RECOVERY_DAYS` days)."""
        try:
            self._sm().delete_secret(SecretId=self.secret_id(name), RecoveryWindowInDays=RECOVERY_DAYS)
        except ClientError as err:
            if not _absent(err):
                raise
        finally:
            self.forget(name)

    def forget(self, name: str) -> None:
        """Drop the secret from this process's cache: the next read asks Secrets Manager."""
        provider = _provider(self._sm())
        provider.store.pop(provider._build_cache_key(name=self.secret_id(name), transform=_TRANSFORM), None)


def _write(sm: Any, secret_id: str, text: str, description: str) -> None:
    """A new version of the secret; created if it is new, restored first if it was deleted a while ago."""
    try:
        sm.put_secret_value(SecretId=secret_id, SecretString=text)
        return
    except ClientError as err:
        if _marked_deleted(err):
            sm.restore_secret(SecretId=secret_id)
        elif _code(err) != "ResourceNotFoundException":
            raise
        else:
            try:
                sm.create_secret(Name=secret_id, SecretString=text,
                                 **({"Description": description} if description else {}))
                return
            except ClientError as exists:
                if _code(exists) != "ResourceExistsException":  # else another writer created it just now
                    raise
    sm.put_secret_value(SecretId=secret_id, SecretString=text)


_file_locks: dict[Path, threading.Lock] = {}
_file_locks_lock = threading.Lock()


def _lock_of(path: Path) -> threading.Lock:
    """One lock per file, shared by every store over it in this process (the local stack runs its
    functions in threads, each building its own store)."""
    with _file_locks_lock:
        return _file_locks.setdefault(path.resolve(), threading.Lock())


class FileSecrets:
    """Secrets in one JSON file ``{name: secret}``, readable by its owner only (the local stack's)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def ref(self, name: str) -> str:
        return f"file:{self.path.name}#{name}"

    def _read(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}

    def _write(self, data: dict[str, Any]) -> None:
        write_private(self.path, json.dumps(data, indent=2))

    def get(self, name: str) -> dict[str, Any] | None:
        with _lock_of(self.path):
            value = self._read().get(name)
        return value if isinstance(value, dict) and value else None

    def put(self, name: str, value: dict[str, Any], *, description: str = "") -> str:
        with _lock_of(self.path):
            data = self._read()
            data[name] = value
            self._write(data)
        return self.ref(name)

    def delete(self, name: str) -> None:
        with _lock_of(self.path):
            data = self._read()
            if data.pop(name, None) is not None:
                self._write(data)


@dataclass(frozen=True)
class SecretsHome:
    """Where one slice keeps its secrets: the file named by ``file_env`` when it is set (the local stack),
    else Secrets Manager under the prefix ``prefix_env`` names (default ``default_prefix``)."""

    file_env: str
    prefix_env: str
    default_prefix: str
    #: How long a warm function may use a secret it read (0: read it at every use).
    cache_seconds: int = CACHE_SECONDS

    def aws(self, prefix: str | None = None, *, cache_seconds: int | None = None) -> SecretsManagerSecrets:
        return SecretsManagerSecrets(prefix or os.environ.get(self.prefix_env) or self.default_prefix,
                                     cache_seconds=self.cache_seconds if cache_seconds is None else cache_seconds)

    def store(self) -> Secrets:
        """Chosen per call, from the environment as it is now (the local stack sets it after import)."""
        path = os.environ.get(self.file_env)
        return FileSecrets(path) if path else self.aws()


class SliceSecrets:
    """The base of a slice's credentials store (channels, suppliers, carrier accounts): its own model over
    the one secrets store, at its own :class:`SecretsHome`. Named by the slice's id (channel, warehouse,
    carrier account)."""

    home: ClassVar[SecretsHome]

    def __init__(self, secrets: Secrets | None = None) -> None:
        self.secrets = secrets if secrets is not None else self.home.store()

    @classmethod
    def in_secrets_manager(cls, prefix: str | None = None, cache_seconds: int | None = None) -> Any:
        """In Secrets Manager, under ``prefix`` (default: the slice's)."""
        return cls(cls.home.aws(prefix, cache_seconds=cache_seconds))

    @classmethod
    def in_file(cls, path: Path | str) -> Any:
        """In the local stack's 0600 file."""
        return cls(FileSecrets(path))

    def ref(self, name: str) -> str:
        return self.secrets.ref(name)

    def delete(self, name: str) -> None:
        self.secrets.delete(name)
