"""What the supplier code needs besides :class:`orderflow.ports.Ports`: the store, the credentials, and a
way to connect (tests and the sandbox pass their own), plus one SFTP connection per supplier per run."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from orderflow.ports import Ports
from orderflow.suppliers.config import SftpSettings, SupplierConfig, SupplierCredentials
from orderflow.suppliers.credentials import CredentialStore, default_credentials
from orderflow.suppliers.sftp import SftpClient, SupplierUnavailable, connect
from orderflow.suppliers.store import SupplierStore

log = logging.getLogger(__name__)

Connector = Callable[[SftpSettings, SupplierCredentials], SftpClient]


@dataclass
class Suppliers:
    store: SupplierStore
    credentials: CredentialStore
    connector: Connector = field(default=connect)


def default_suppliers(ports: Ports) -> Suppliers:
    """The supplier side over the ports' stores (orderflow.wiring picks them)."""
    return Suppliers(store=SupplierStore(ports.settings, ports.documents), credentials=default_credentials())


class Connections:
    """One connection per supplier for a batch or a poll. A supplier that could not be reached fails
    the rest of the batch at once instead of waiting for its timeout again."""

    def __init__(self, suppliers: Suppliers) -> None:
        self.suppliers = suppliers
        self._open: dict[str, SftpClient] = {}
        self._failed: dict[str, SupplierUnavailable] = {}

    def get(self, config: SupplierConfig) -> SftpClient:
        wid = config.warehouse_id
        if wid in self._failed:
            raise self._failed[wid]
        if wid in self._open:
            return self._open[wid]
        credentials = self.suppliers.credentials.get(wid)
        try:
            if credentials is None:
                raise SupplierUnavailable("no SFTP credentials are stored for this supplier (PUT /suppliers/"
                                          f"{wid} with credentials)")
            sftp = self.suppliers.connector(config.sftp, credentials)
        except SupplierUnavailable as err:
            self._failed[wid] = err
            raise
        self._open[wid] = sftp
        return sftp

    def drop(self, warehouse_id: str) -> None:
        """Forget a connection after an error (the next use reconnects)."""
        sftp = self._open.pop(warehouse_id, None)
        if sftp is not None:
            sftp.close()

    def close(self) -> None:
        for wid in list(self._open):
            self.drop(wid)
        self._failed.clear()

    def __enter__(self) -> Connections:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
