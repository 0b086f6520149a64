"""The paramiko client against the sandbox asyncssh server: real SSH and SFTP on loopback."""

from __future__ import annotations

import asyncssh
import pytest

from orderflow.suppliers.config import (
    OrderColumn,
    OrderFileFormat,
    SftpSettings,
    SupplierCredentials,
    TrackingFileFormat,
)
from orderflow.suppliers.files import read_tracking_file
from orderflow.suppliers.sftp import HostKeyMismatch, SftpClient, SupplierUnavailable
from orderflow_local.sandbox.sftp import SandboxSftpServer, SandboxSupplier


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with SandboxSftpServer(tmp_path_factory.mktemp("sftp")) as srv:
        srv.add_account("acme", "s3cret")
        srv.add_account("other", "pw")
        yield srv


def settings(server, **extra) -> SftpSettings:
    return SftpSettings(**{"host": server.host, "port": server.port, "username": "acme",
                           "host_key_fingerprint": server.fingerprint, **extra})


def test_upload_is_atomic_and_replaces_an_earlier_copy(server):
    folder = server.folder("acme")
    with SftpClient(settings(server), SupplierCredentials(password="s3cret")) as sftp:
        assert sftp.write_atomic("/in", "ORD_1.csv", b"one") == "/in/ORD_1.csv"
        sftp.write_atomic("/in", "ORD_1.csv", b"two")
        assert sftp.read("/in/ORD_1.csv", 100) == b"two"
        assert [f.name for f in sftp.listdir("/in")] == ["ORD_1.csv"]  # no .tmp left behind
        sftp.makedirs("/archive/2026/11/26")
        sftp.rename("/in/ORD_1.csv", "/archive/2026/11/26/ORD_1.csv")
        assert sftp.stat("/in/ORD_1.csv") is None
    assert (folder / "archive/2026/11/26/ORD_1.csv").read_bytes() == b"two"


def test_each_account_is_chrooted_to_its_own_folder(server):
    (server.folder("other") / "in" / "secret.csv").write_text("x")
    with SftpClient(settings(server), SupplierCredentials(password="s3cret")) as sftp:
        assert sorted(f.name for f in sftp.listdir("/")) == ["archive", "error", "in", "out"]
        assert sftp.stat("/../other/in/secret.csv") is None
        assert sftp.stat("/../../../../etc/passwd") is None


def test_a_host_key_other_than_the_pinned_one_is_refused(server):
    other = asyncssh.generate_private_key("ssh-ed25519").get_fingerprint("sha256")
    with pytest.raises(HostKeyMismatch, match="does not match"):
        SftpClient(settings(server, host_key_fingerprint=other), SupplierCredentials(password="s3cret")).connect()


def test_an_unknown_host_key_is_accepted_only_when_the_sandbox_config_says_so(server):
    sandbox = settings(server, host_key_fingerprint=None, accept_unknown_host_key=True)
    with SftpClient(sandbox, SupplierCredentials(password="s3cret")) as sftp:
        assert sftp.server_fingerprint == server.fingerprint


def test_wrong_credentials_and_a_server_that_is_down_are_unavailable_without_naming_the_host(server):
    with pytest.raises(SupplierUnavailable, match="refused our credentials") as bad:
        SftpClient(settings(server), SupplierCredentials(password="nope")).connect()
    assert server.host not in str(bad.value) and "acme" not in str(bad.value)
    connected = SftpClient(settings(server), SupplierCredentials(password="s3cret")).connect()
    server.go_down()
    try:
        with pytest.raises(SupplierUnavailable, match="refused the connection"):
            SftpClient(settings(server), SupplierCredentials(password="s3cret")).connect()
        with pytest.raises(SupplierUnavailable, match="connection dropped"):
            connected.listdir("/in")
    finally:
        connected.close()
        server.come_back()
    with SftpClient(settings(server), SupplierCredentials(password="s3cret")) as sftp:  # same port again
        assert sftp.listdir("/out") == []


def test_private_key_authentication(tmp_path):
    key, other = asyncssh.generate_private_key("ssh-ed25519"), asyncssh.generate_private_key("ssh-ed25519")
    with SandboxSftpServer(tmp_path) as srv:
        srv.add_account("k", public_key=key.export_public_key("openssh").decode())
        settings = SftpSettings(host=srv.host, port=srv.port, username="k", host_key_fingerprint=srv.fingerprint)
        creds = SupplierCredentials(private_key=key.export_private_key("openssh", passphrase="pp").decode(),
                                    private_key_passphrase="pp")
        with SftpClient(settings, creds) as sftp:
            assert sorted(f.name for f in sftp.listdir("/")) == ["archive", "error", "in", "out"]
        wrong = SupplierCredentials(private_key=other.export_private_key("openssh").decode())
        with pytest.raises(SupplierUnavailable, match="refused our credentials"):
            SftpClient(settings, wrong).connect()
        with pytest.raises(SupplierUnavailable, match="cannot be read"):
            SftpClient(settings, SupplierCredentials(private_key="not a key")).connect()


def test_the_sandbox_supplier_ships_what_it_picks_up_and_skips_what_is_cancelled(tmp_path):
    order_format = OrderFileFormat(delimiter=";", columns=[
        OrderColumn(header="PO", field="po_number"), OrderColumn(header="Ref", field="order_number"),
        OrderColumn(header="Item", field="sku"), OrderColumn(header="Qty", field="quantity")])
    tracking_format = TrackingFileFormat(delimiter=";", tracking_separators="|", columns={
        "po_number": "PO", "sku": "Item", "quantity": "Qty", "carrier": "Carrier", "tracking_number": "Tracking"})
    for name in ("in", "out"):
        (tmp_path / name).mkdir()
    supplier = SandboxSupplier(tmp_path, order_format=order_format, tracking_format=tracking_format,
                               delay_seconds=5, parcels=2, carrier="FedEx")
    (tmp_path / "in" / "A.csv").write_text("PO;Ref;Item;Qty\r\nord_1-1;ord_1;LAMP;2\r\nord_1-1;ord_1;BULB;1\r\n")
    (tmp_path / "in" / "B.csv").write_text("PO;Ref;Item;Qty\r\nord_2-1;ord_2;LAMP;1\r\n")
    (tmp_path / "in" / "C.csv.tmp").write_text("half")
    supplier.step(now=1000)
    assert sorted(p.name for p in (tmp_path / "picked").iterdir()) == ["A.csv", "B.csv"]
    assert list((tmp_path / "out").iterdir()) == []  # not before the delay
    (tmp_path / "in" / "X.csv").write_text("po_number;order_number;action;reason;cancelled_at\r\n"
                                           "ord_2-1;ord_2;CANCEL;changed mind;2026-11-26\r\n")
    supplier.step(now=1010)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["SHIP_ord_1-1.csv"]
    assert supplier.cancelled == ["ord_2-1"] and supplier.shipped == ["ord_1-1"]
    parsed = read_tracking_file((tmp_path / "out" / "SHIP_ord_1-1.csv").read_bytes(), tracking_format)
    assert [(r.po_number, r.sku, r.quantity, r.carrier.value, len(r.tracking_numbers)) for r in parsed.rows] == [
        ("ord_1-1", "LAMP", 2, "FEDEX", 2), ("ord_1-1", "BULB", 1, "FEDEX", 2)]
    assert parsed.bad == []
