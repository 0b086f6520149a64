"""Where suppliers' SFTP credentials live: never in the settings table, in the secrets store
(orderflow.adapters.secrets) under the supplier's warehouse id.

- AWS: one Secrets Manager secret per supplier, ``<prefix><warehouse id>`` (prefix
  ``orderflow/suppliers/`` unless ``ORDERFLOW_SUPPLIER_SECRET_PREFIX`` says otherwise), a JSON object.
  moto serves the same API, so the local stack could use it too.
- Local stack: ``ORDERFLOW_SUPPLIER_CREDENTIALS_FILE`` (set by ``orderflow local`` to
  ``<state dir>/supplier-credentials.json``), one JSON file readable by its owner only.
"""

from __future__ import annotations

from typing import Protocol

from orderflow import config
from orderflow.adapters.secrets import SecretsHome, SliceSecrets
from orderflow.suppliers.config import SupplierCredentials

SECRET_PREFIX_ENV = config.SUPPLIER_SECRET_PREFIX.name
CREDENTIALS_FILE_ENV = config.SUPPLIER_CREDENTIALS_FILE.name
DEFAULT_SECRET_PREFIX = "orderflow/suppliers/"


class CredentialStore(Protocol):
    def put(self, warehouse_id: str, credentials: SupplierCredentials) -> str: ...

    def get(self, warehouse_id: str) -> SupplierCredentials | None: ...


class SupplierSecrets(SliceSecrets):
    """A supplier's SFTP credentials in the secrets store, named by the warehouse id: the JSON of
    :class:`SupplierCredentials`."""

    home = SecretsHome(file_env=CREDENTIALS_FILE_ENV, prefix_env=SECRET_PREFIX_ENV,
                       default_prefix=DEFAULT_SECRET_PREFIX)

    def put(self, warehouse_id: str, credentials: SupplierCredentials) -> str:
        return self.secrets.put(warehouse_id, credentials.reveal(),
                                description=f"orderflow supplier {warehouse_id}: SFTP credentials")

    def get(self, warehouse_id: str) -> SupplierCredentials | None:
        data = self.secrets.get(warehouse_id)
        return SupplierCredentials.model_validate(data) if data else None


#: One secret per supplier, ``<prefix><warehouse id>``; values read are cached a minute per process.
SecretsManagerCredentials = SupplierSecrets.in_secrets_manager
#: The local stack's supplier credentials: one JSON file, mode 0600.
FileCredentials = SupplierSecrets.in_file


def default_credentials() -> CredentialStore:
    """The credentials file when ``ORDERFLOW_SUPPLIER_CREDENTIALS_FILE`` is set, else Secrets Manager."""
    return SupplierSecrets()
