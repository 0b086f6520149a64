"""The one secrets store (orderflow.adapters.secrets): Secrets Manager through Powertools' cached provider
with explicit invalidation, the local stack's 0600 file, and the slices' credentials on top of both, in the
names and formats already stored. A fake Secrets Manager client: no AWS, no moto, no waiting."""

from __future__ import annotations

import json
import os
import stat

import pytest
from botocore.exceptions import ClientError
from pydantic import SecretStr

from orderflow.adapters import channel_store
from orderflow.adapters.secrets import FileSecrets, SecretsHome, SecretsManagerSecrets
from orderflow.carriers import accounts
from orderflow.channels.config import ShopifyCredentials
from orderflow.suppliers import credentials as supplier_credentials
from orderflow.suppliers.config import SupplierCredentials


def _error(code: str, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "op")


class FakeSecretsManager:
    """Secrets Manager's answers for the calls the store makes; ``calls`` counts them by name."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.deleted: set[str] = set()
        self.descriptions: dict[str, str] = {}
        self.calls: dict[str, int] = {}
        self.refuse: str | None = None

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        if self.refuse:
            raise _error(self.refuse, "not allowed")

    def _check(self, secret_id: str) -> None:
        if secret_id in self.deleted:
            raise _error("InvalidRequestException", "You can't perform this operation on the secret because it "
                                                    "was marked deleted.")
        if secret_id not in self.secrets:
            raise _error("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")

    def get_secret_value(self, SecretId):  # noqa: N803 - boto3's names
        self._count("get")
        self._check(SecretId)
        return {"Name": SecretId, "SecretString": self.secrets[SecretId]}

    def put_secret_value(self, SecretId, SecretString):  # noqa: N803
        self._count("put")
        self._check(SecretId)
        self.secrets[SecretId] = SecretString

    def create_secret(self, Name, SecretString, Description=None):  # noqa: N803
        self._count("create")
        if Name in self.secrets:
            raise _error("ResourceExistsException")
        self.secrets[Name] = SecretString
        self.descriptions[Name] = Description

    def restore_secret(self, SecretId):  # noqa: N803
        self._count("restore")
        self.deleted.discard(SecretId)

    def delete_secret(self, SecretId, RecoveryWindowInDays):  # noqa: N803
        self._count("delete")
        self._check(SecretId)
        assert RecoveryWindowInDays == 7
        self.deleted.add(SecretId)


@pytest.fixture
def sm() -> FakeSecretsManager:
    return FakeSecretsManager()


def test_secrets_manager_round_trip_under_the_prefix(sm):
    store = SecretsManagerSecrets("orderflow/channels/", sm_client=sm)
    assert store.get("shop") is None
    ref = store.put("shop", {"access_token": "shpat_1"}, description="orderflow channel shop credentials")
    assert ref == store.ref("shop") == "secretsmanager:orderflow/channels/shop"
    assert json.loads(sm.secrets["orderflow/channels/shop"]) == {"access_token": "shpat_1"}
    assert sm.descriptions["orderflow/channels/shop"] == "orderflow channel shop credentials"
    assert store.get("shop") == {"access_token": "shpat_1"}


def test_reads_are_cached_and_a_put_or_delete_invalidates_them(sm):
    store = SecretsManagerSecrets("p/", sm_client=sm)
    store.put("a", {"k": "1"})
    for _ in range(3):
        assert store.get("a") == {"k": "1"}
    assert sm.calls["get"] == 1  # Powertools' cache answered the others

    sm.secrets["p/a"] = json.dumps({"k": "changed elsewhere"})  # another container's write: seen after max_age
    assert store.get("a") == {"k": "1"}

    store.put("a", {"k": "2"})
    assert store.get("a") == {"k": "2"} and sm.calls["get"] == 2
    other = SecretsManagerSecrets("p/", sm_client=sm)  # the process's other stores share the cache
    other.put("a", {"k": "3"})
    assert store.get("a") == {"k": "3"}
    store.delete("a")
    assert store.get("a") is None and other.get("a") is None


def test_a_cached_value_is_not_changed_by_its_reader(sm):
    store = SecretsManagerSecrets("p/", sm_client=sm)
    store.put("a", {"k": "1"})
    store.get("a")["k"] = "scribbled"
    assert store.get("a") == {"k": "1"}


def test_no_cache_reads_every_time(sm):
    store = SecretsManagerSecrets("p/", sm_client=sm, cache_seconds=0)
    store.put("a", {"k": "1"})
    store.get("a")
    store.get("a")
    assert sm.calls["get"] == 2


def test_a_deleted_secret_reads_as_none_and_a_put_restores_it(sm):
    store = SecretsManagerSecrets("p/", sm_client=sm)
    store.put("a", {"k": "1"})
    store.delete("a")
    assert "p/a" in sm.deleted and store.get("a") is None
    store.delete("a")  # again: nothing to do
    store.delete("never")  # absent: nothing to do
    store.put("a", {"k": "2"})
    assert sm.calls["restore"] == 1 and "p/a" not in sm.deleted
    assert store.get("a") == {"k": "2"}


def test_a_secret_created_by_another_writer_meanwhile_is_written_again(sm):
    store = SecretsManagerSecrets("p/", sm_client=sm)
    real_create = sm.create_secret

    def racing_create(**kwargs):
        sm.secrets[kwargs["Name"]] = json.dumps({"k": "theirs"})  # the other writer was first
        return real_create(**kwargs)

    sm.create_secret = racing_create
    store.put("a", {"k": "ours"})
    assert json.loads(sm.secrets["p/a"]) == {"k": "ours"}


def test_secrets_managers_other_refusals_are_raised_as_they_are(sm):
    store = SecretsManagerSecrets("p/", sm_client=sm)
    sm.refuse = "AccessDeniedException"
    for call in (lambda: store.get("a"), lambda: store.put("a", {"k": "1"}), lambda: store.delete("a")):
        with pytest.raises(ClientError) as err:
            call()
        assert err.value.response["Error"]["Code"] == "AccessDeniedException"


def test_the_file_is_private_after_every_write_and_round_trips(tmp_path):
    path = tmp_path / "state" / "creds.json"
    store = FileSecrets(path)
    assert store.get("a") is None
    store.delete("a")
    assert not path.exists()  # nothing to forget: nothing written
    assert store.put("a", {"k": "1"}) == store.ref("a") == "file:creds.json#a"
    store.put("b", {"k": "2"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    os.chmod(path, 0o644)  # widened by hand: the next write, a delete too, makes it private again
    store.delete("a")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"b": {"k": "2"}}
    assert FileSecrets(path).get("b") == {"k": "2"} and store.get("a") is None
    assert sorted(p.name for p in path.parent.iterdir()) == ["creds.json"]  # creds.json.tmp renamed into place


def test_each_slice_chooses_the_file_or_secrets_manager_under_its_own_prefix(tmp_path, monkeypatch):
    homes = [(channel_store.ChannelCredentials.home, "orderflow/channels/"),
             (supplier_credentials.SupplierSecrets.home, "orderflow/suppliers/"),
             (accounts.CarrierKeys.home, "orderflow/carriers/")]
    for home, prefix in homes:
        monkeypatch.delenv(home.file_env, raising=False)
        monkeypatch.delenv(home.prefix_env, raising=False)
        aws = home.store()
        assert isinstance(aws, SecretsManagerSecrets) and aws.prefix == prefix
        monkeypatch.setenv(home.prefix_env, "test-1/")
        assert home.store().prefix == "test-1/"
        monkeypatch.setenv(home.file_env, str(tmp_path / "x.json"))
        assert isinstance(home.store(), FileSecrets)
    assert isinstance(channel_store.default_credentials().secrets, FileSecrets)
    assert isinstance(supplier_credentials.default_credentials().secrets, FileSecrets)
    assert isinstance(accounts.default_keys().store.secrets, FileSecrets)
    monkeypatch.delenv(accounts.CREDENTIALS_FILE_ENV)
    monkeypatch.delenv(accounts.SECRET_PREFIX_ENV)
    carrier_store = accounts.default_keys().store.secrets
    assert isinstance(carrier_store, SecretsManagerSecrets) and carrier_store.prefix == "orderflow/carriers/"
    assert accounts.SecretsManagerKeys(prefix="test-2/").ref("ep") == "secretsmanager:test-2/ep"
    assert SecretsHome("A", "B", "c/").aws("given/").prefix == "given/"


def test_stored_credentials_keep_their_names_and_format(tmp_path, sm):
    """What earlier releases wrote is read as it is: one object per id in the local files, one secret per id
    (``<prefix><id>``, the model's JSON) in Secrets Manager."""
    (tmp_path / "channel-credentials.json").write_text(json.dumps({"shop": {"access_token": "shpat_old"}}))
    (tmp_path / "carrier-credentials.json").write_text(json.dumps({"ep": {"api_key": "EZTK_old"}}))
    (tmp_path / "supplier-credentials.json").write_text(json.dumps({"wh": {"password": "pw"}}))
    channel = channel_store.FileCredentials(tmp_path / "channel-credentials.json").get("shop", "shopify")
    assert channel.access_token.get_secret_value() == "shpat_old"
    assert accounts.FileKeys(tmp_path / "carrier-credentials.json").get("ep").get_secret_value() == "EZTK_old"
    supplier = supplier_credentials.FileCredentials(tmp_path / "supplier-credentials.json").get("wh")
    assert supplier.reveal()["password"] == "pw"

    sm.secrets["orderflow/carriers/ep"] = json.dumps({"api_key": "EZTK_sm"})
    sm.secrets["orderflow/channels/shop"] = json.dumps({"access_token": "shpat_sm"})
    keys = accounts.CarrierKeys(SecretsManagerSecrets("orderflow/carriers/", sm_client=sm))
    assert keys.get("ep").get_secret_value() == "EZTK_sm" and keys.ref("ep") == "secretsmanager:orderflow/carriers/ep"
    channels = channel_store.ChannelCredentials(SecretsManagerSecrets("orderflow/channels/", sm_client=sm))
    assert channels.get("shop", "shopify").access_token.get_secret_value() == "shpat_sm"

    channels.put("new", ShopifyCredentials(access_token="shpat_new"))
    assert json.loads(sm.secrets["orderflow/channels/new"])["access_token"] == "shpat_new"
    keys.put("ep2", SecretStr("EZTK_2"))
    assert json.loads(sm.secrets["orderflow/carriers/ep2"]) == {"api_key": "EZTK_2"}
    suppliers = supplier_credentials.SupplierSecrets(SecretsManagerSecrets("orderflow/suppliers/", sm_client=sm))
    assert suppliers.put("wh", SupplierCredentials(password="pw")) == (
        "secretsmanager:orderflow/suppliers/wh")
    assert suppliers.get("wh").reveal() == {"password": "pw"}
    assert sm.descriptions["orderflow/suppliers/wh"] == "orderflow supplier wh: SFTP credentials"


def test_a_carrier_secret_without_a_key_is_no_key(sm):
    sm.secrets["orderflow/carriers/ep"] = json.dumps({"note": "no key here"})
    assert accounts.CarrierKeys(SecretsManagerSecrets("orderflow/carriers/", sm_client=sm)).get("ep") is None


def test_channel_credentials_are_read_at_every_use(sm, monkeypatch):
    """A channel's base URL changes only together with new credentials (issue 11): a warm function must not
    pair the new URL, read from the configuration, with the old credentials from a cache. Supplier and
    carrier secrets keep the one-minute cache they had."""
    home = channel_store.ChannelCredentials.home
    assert home.cache_seconds == 0
    monkeypatch.delenv(home.file_env, raising=False)
    channels = channel_store.ChannelCredentials(home.aws())
    channels.secrets._client = sm
    channels.put("shop", ShopifyCredentials(access_token="shpat_1"))
    assert channels.get("shop", "shopify").access_token.get_secret_value() == "shpat_1"
    # the API of another function (another container) stores new credentials with a new base URL
    sm.secrets[channels.secrets.secret_id("shop")] = json.dumps({"access_token": "shpat_elsewhere"})
    assert channels.get("shop", "shopify").access_token.get_secret_value() == "shpat_elsewhere"
    assert supplier_credentials.SupplierSecrets.home.cache_seconds == accounts.CarrierKeys.home.cache_seconds == 60
