"""A small SFTP client over paramiko, verifying the server's host key against the pinned fingerprint.

Connection problems (refused, timed out, authentication, a host key that does not match) raise
:class:`SupplierUnavailable` with a message that names neither the host nor the user, so it can go
to logs and to the order's events as it is. paramiko is imported on first use (it is slow to import
and the Lambda handlers that do not connect should not pay for it).
"""

from __future__ import annotations

import io
import logging
import posixpath
import socket
import stat
from dataclasses import dataclass
from typing import Any

from orderflow.errors import TransientError
from orderflow.suppliers.config import SftpSettings, SupplierCredentials

log = logging.getLogger(__name__)
# paramiko logs the peer's address at INFO ("Connected (version ...)"); addresses stay out of our logs.
logging.getLogger("paramiko").setLevel(logging.WARNING)


class SupplierUnavailable(TransientError):
    """The supplier's SFTP server cannot be used right now (down, refused, auth, host key)."""

    code = "supplier_unavailable"


class HostKeyMismatch(SupplierUnavailable):
    code = "supplier_host_key_mismatch"


class SftpOperationError(TransientError):
    """A file operation failed on a connected server (permission, missing folder, full disk)."""

    code = "supplier_sftp_error"


@dataclass(frozen=True)
class RemoteFile:
    name: str
    size: int
    mtime: float
    is_file: bool


def _load_private_key(text: str, passphrase: str | None) -> Any:
    import paramiko

    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key(io.StringIO(text), password=passphrase)
        except (paramiko.SSHException, ValueError):
            continue
    raise SupplierUnavailable("the configured private key cannot be read (Ed25519, ECDSA or RSA expected)")


class SftpClient:
    """``with SftpClient(settings, credentials) as sftp: ...``"""

    def __init__(self, settings: SftpSettings, credentials: SupplierCredentials) -> None:
        self.settings = settings
        self.credentials = credentials
        self._transport: Any = None
        self._sftp: Any = None
        #: The fingerprint the server presented (reported when the config accepts unknown keys).
        self.server_fingerprint: str | None = None

    # -- connection ------------------------------------------------------------------------------

    def connect(self) -> SftpClient:
        import paramiko

        s = self.settings
        try:
            sock = socket.create_connection((s.host, s.port), timeout=s.timeout_seconds)
        except ConnectionRefusedError as err:
            raise SupplierUnavailable("the SFTP server refused the connection (is it down?)") from err
        except TimeoutError as err:
            raise SupplierUnavailable("connecting to the SFTP server timed out") from err
        except socket.gaierror as err:
            raise SupplierUnavailable("the SFTP server's host name does not resolve") from err
        except OSError as err:
            raise SupplierUnavailable(f"cannot reach the SFTP server ({type(err).__name__})") from err
        try:
            transport = paramiko.Transport(sock)
        except Exception:
            sock.close()
            raise
        transport.banner_timeout = s.timeout_seconds
        transport.auth_timeout = s.timeout_seconds
        self._transport = transport
        try:
            transport.start_client(timeout=s.timeout_seconds)
            key = transport.get_remote_server_key()
            self.server_fingerprint = key.fingerprint
            if s.host_key_fingerprint:
                if key.fingerprint.rstrip("=") != s.host_key_fingerprint.rstrip("="):
                    log.warning("SFTP host key mismatch: the server's key is not the pinned one")
                    raise HostKeyMismatch("the SFTP server's host key does not match the configured "
                                          "host_key_fingerprint (refusing to connect)")
            elif not s.accept_unknown_host_key:
                raise HostKeyMismatch("no host_key_fingerprint is configured (refusing to connect)")
            if self.credentials.private_key is not None:
                passphrase = self.credentials.private_key_passphrase
                pkey = _load_private_key(self.credentials.private_key.get_secret_value(),
                                         passphrase.get_secret_value() if passphrase else None)
                transport.auth_publickey(s.username, pkey)
            else:
                assert self.credentials.password is not None
                transport.auth_password(s.username, self.credentials.password.get_secret_value())
            self._sftp = paramiko.SFTPClient.from_transport(transport)
            self._sftp.get_channel().settimeout(s.timeout_seconds)
        except SupplierUnavailable:
            self.close()
            raise
        except paramiko.AuthenticationException as err:
            self.close()
            raise SupplierUnavailable("the SFTP server refused our credentials") from err
        except (paramiko.SSHException, EOFError, OSError) as err:
            self.close()
            raise SupplierUnavailable(f"the SSH session failed ({type(err).__name__})") from err
        return self

    def close(self) -> None:
        for thing in (self._sftp, self._transport):
            if thing is not None:
                try:
                    thing.close()
                except Exception:  # noqa: BLE001 - closing a broken connection
                    pass
        self._sftp = self._transport = None

    def __enter__(self) -> SftpClient:
        return self.connect() if self._sftp is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def sftp(self) -> Any:
        if self._sftp is None:
            raise SupplierUnavailable("not connected")
        return self._sftp

    def _op(self, what: str, fn, *args):  # noqa: ANN001, ANN202
        import paramiko

        try:
            return fn(*args)
        except FileNotFoundError:
            raise
        except PermissionError as err:
            raise SftpOperationError(f"{what}: permission denied") from err
        except (EOFError, ConnectionError, TimeoutError, paramiko.SSHException) as err:
            raise SupplierUnavailable(f"{what}: the connection dropped ({type(err).__name__})") from err
        except OSError as err:
            if "socket is closed" in str(err).lower():
                raise SupplierUnavailable(f"{what}: the connection dropped") from err
            raise SftpOperationError(f"{what}: {err.strerror or err.args[0] if err.args else type(err).__name__}") from err

    # -- files -----------------------------------------------------------------------------------

    def listdir(self, folder: str) -> list[RemoteFile]:
        entries = self._op("listing a folder", self.sftp.listdir_attr, folder)
        return [RemoteFile(name=e.filename, size=e.st_size or 0, mtime=float(e.st_mtime or 0),
                           is_file=stat.S_ISREG(e.st_mode or 0)) for e in entries]

    def stat(self, path: str) -> RemoteFile | None:
        try:
            attrs = self._op("reading a file's size", self.sftp.stat, path)
        except FileNotFoundError:
            return None
        return RemoteFile(name=posixpath.basename(path), size=attrs.st_size or 0, mtime=float(attrs.st_mtime or 0),
                          is_file=stat.S_ISREG(attrs.st_mode or 0))

    def exists(self, path: str) -> bool:
        return self.stat(path) is not None

    def read(self, path: str, max_bytes: int) -> bytes:
        def get() -> bytes:
            with self.sftp.open(path, "rb") as handle:
                data = handle.read(max_bytes + 1)
            return data

        data = self._op("reading a file", get)
        if len(data) > max_bytes:
            raise SftpOperationError(f"the file is larger than {max_bytes} bytes")
        return data

    def put(self, path: str, data: bytes) -> None:
        def write() -> None:
            with self.sftp.open(path, "wb") as handle:
                handle.set_pipelined(True)
                handle.write(data)

        self._op("uploading a file", write)

    def rename(self, src: str, dst: str) -> None:
        """Rename, replacing ``dst`` if it exists: posix-rename where the server has it (OpenSSH,
        asyncssh), else remove-then-rename."""

        def replace() -> None:
            try:
                self.sftp.posix_rename(src, dst)
                return
            except (TimeoutError, FileNotFoundError, PermissionError, EOFError, ConnectionError):
                raise
            except OSError:
                pass  # no posix-rename extension: plain SFTP rename refuses to replace
            try:
                self.sftp.remove(dst)
            except FileNotFoundError:
                pass
            self.sftp.rename(src, dst)

        self._op("renaming a file", replace)

    def write_atomic(self, folder: str, name: str, data: bytes) -> str:
        """Upload as ``name.tmp`` and rename to ``name``: readers never see half a file."""
        final = posixpath.join(folder, name)
        tmp = final + ".tmp"
        self.put(tmp, data)
        self.rename(tmp, final)
        return final

    def remove(self, path: str) -> None:
        try:
            self._op("deleting a file", self.sftp.remove, path)
        except FileNotFoundError:
            pass

    def makedirs(self, folder: str) -> None:
        path = "/" if folder.startswith("/") else ""
        for part in [p for p in folder.split("/") if p]:
            path = posixpath.join(path, part) if path else part
            if self.stat(path) is None:
                try:
                    self._op("creating a folder", self.sftp.mkdir, path)
                except SftpOperationError:
                    if self.stat(path) is None:
                        raise


def connect(settings: SftpSettings, credentials: SupplierCredentials) -> SftpClient:
    return SftpClient(settings, credentials).connect()
