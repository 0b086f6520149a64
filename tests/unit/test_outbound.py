"""Where a token, key or password may be sent: public https hosts; loopback only on the local stack;
never private, link-local or reserved addresses; label files only from the carrier's label hosts."""

from __future__ import annotations

import httpx
import pytest

from orderflow import outbound
from orderflow.carriers.base import CarrierRejected
from orderflow.carriers.http import CarrierHttp


@pytest.fixture
def on_aws(monkeypatch):
    monkeypatch.delenv(outbound.LOOPBACK_ENV, raising=False)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9001/2018-06-01/runtime", "https://localhost/x",
                                 "https://127.0.0.2", "https://[::1]:8443"])
def test_loopback_is_refused_on_aws(on_aws, url):
    with pytest.raises(ValueError, match="loopback"):
        outbound.check_base_url(url)


def test_loopback_is_the_local_stacks_sandboxes(monkeypatch):
    monkeypatch.setenv(outbound.LOOPBACK_ENV, "1")
    assert outbound.check_base_url("http://127.0.0.1:8080/") == "http://127.0.0.1:8080"


@pytest.mark.parametrize("url", ["https://169.254.169.254/latest/meta-data", "https://10.0.0.5", "https://192.168.1.1",
                                 "https://172.16.0.1", "https://[fe80::1]", "https://[fd00::1]", "https://0.0.0.0",
                                 "https://[::ffff:127.0.0.1]", "https://224.0.0.1"])
@pytest.mark.parametrize("local", [True, False])
def test_private_link_local_and_reserved_addresses_are_refused_everywhere(monkeypatch, url, local):
    if local:
        monkeypatch.setenv(outbound.LOOPBACK_ENV, "1")
    else:
        monkeypatch.delenv(outbound.LOOPBACK_ENV, raising=False)
    with pytest.raises(ValueError):
        outbound.check_base_url(url)


def test_public_https_hosts_pass_and_plain_http_does_not(on_aws):
    assert outbound.check_base_url("https://shop.myshopify.com/") == "https://shop.myshopify.com"
    assert outbound.check_base_url("https://8.8.8.8") == "https://8.8.8.8"
    with pytest.raises(ValueError, match="https"):
        outbound.check_base_url("http://shop.example.com")


def test_every_kind_of_configuration_uses_the_policy(on_aws):
    from pydantic import ValidationError

    from orderflow.carriers.accounts import CarrierAccountIn
    from orderflow.channels.config import ShopifyConfig
    from orderflow.suppliers.config import SftpSettings

    refusals = [
        lambda: ShopifyConfig(channel_id="s", base_url="http://127.0.0.1:9001"),
        lambda: CarrierAccountIn(type="easypost", base_url="https://169.254.169.254"),
        lambda: SftpSettings(host="127.0.0.1", username="u", accept_unknown_host_key=True),
        lambda: SftpSettings(host="10.1.2.3", username="u", host_key_fingerprint="SHA256:" + "A" * 43)]
    for refused in refusals:
        with pytest.raises(ValidationError, match="loopback|private"):
            refused()


def _http(handler, label_hosts="easypost"):
    return CarrierHttp("EasyPost", "https://api.easypost.com", transport=httpx.MockTransport(handler),
                       label_hosts=label_hosts)


def test_label_files_come_only_from_the_carriers_label_hosts(on_aws):
    fetched = []

    def serve(request):
        fetched.append(str(request.url))
        return httpx.Response(200, content=b"%PDF-1.4 label")

    http = _http(serve)
    url = "https://easypost-files.s3-us-west-2.amazonaws.com/files/postage_label/1.pdf"
    assert http.download(url) == b"%PDF-1.4 label"
    for bad in ("https://attacker.example/label.pdf", "http://easypost-files.s3-us-west-2.amazonaws.com/x.pdf",
                "https://169.254.169.254/latest/meta-data/", "http://127.0.0.1:9001/2018-06-01/runtime/invocation/next"):
        with pytest.raises(CarrierRejected):
            http.download(bad)
    assert fetched == [url]  # nothing else was even asked


def test_each_redirect_of_a_label_file_is_checked_again(on_aws):
    fetched = []

    def serve(request):
        fetched.append(request.url.host)
        if request.url.host == "files.easypost.com":
            return httpx.Response(302, headers={"Location": "https://169.254.169.254/latest/meta-data/"})
        return httpx.Response(200, content=b"secret")

    with pytest.raises(CarrierRejected):
        _http(serve).download("https://files.easypost.com/label.pdf")
    assert fetched == ["files.easypost.com"]
