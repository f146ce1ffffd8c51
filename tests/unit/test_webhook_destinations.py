"""Where a webhook may point: https to public hosts; loopback and private networks only when
allowed; never link-local (the cloud's metadata service) nor odd addresses (SSRF)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from services.webhooks.destinations import DestinationPolicy, RefusedDestination

STRICT = DestinationPolicy()
LOCAL = DestinationPolicy(allow_loopback=True)
ON_PREMISE = DestinationPolicy(allow_private=True)


def resolving_to(*addresses: str) -> DestinationPolicy:
    async def resolver(_: str) -> Sequence[str]:
        return addresses

    return DestinationPolicy(resolver=resolver)


@pytest.mark.parametrize(
    "url",
    [
        "https://203.0.113.7/hook",  # TEST-NET: not public
        "https://10.0.0.5/hook",
        "https://172.16.3.4/hook",
        "https://192.168.1.1/hook",
        "https://100.64.0.1/hook",  # carrier-grade NAT
        "https://[fd00::1]/hook",
        "https://169.254.169.254/latest/meta-data/",  # the metadata service
        "https://[fe80::1]/hook",
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",  # IPv4-mapped loopback
        "https://0.0.0.0/hook",
        "https://224.0.0.1/hook",
        "https://240.0.0.1/hook",
        "http://93.184.215.14/hook",  # plain http to a public host
        "ftp://93.184.215.14/hook",
        "https://user:pw@93.184.215.14/hook",
        "https:///hook",
        "https://93.184.215.14:99999/hook",
        "https://93.184.215.14/hook#part",
        "https://93.184.215.14/" + "a" * 2048,
    ],
)
async def test_the_strict_policy_refuses(url: str) -> None:
    with pytest.raises(RefusedDestination):
        await STRICT.check(url)


async def test_a_public_https_url_is_accepted() -> None:
    await STRICT.check("https://93.184.215.14:8443/hooks/sw?x=1")
    await STRICT.check("https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/hook")


async def test_a_name_is_judged_by_every_address_it_resolves_to() -> None:
    await resolving_to("93.184.215.14").check("https://hooks.example.com/sw")
    with pytest.raises(RefusedDestination, match="private"):
        await resolving_to("93.184.215.14", "10.1.2.3").check("https://hooks.example.com/sw")
    with pytest.raises(RefusedDestination, match="link-local"):
        await resolving_to("169.254.169.254").check("https://rebound.example.com/sw")
    with pytest.raises(RefusedDestination, match="does not resolve"):
        await resolving_to().check("https://nothing.example.com/sw")


async def test_loopback_and_plain_http_to_it_only_when_allowed() -> None:
    for url in ("http://127.0.0.1:8080/hook", "http://localhost:9/x", "http://[::1]:80/"):
        await LOCAL.check(url)
        with pytest.raises(RefusedDestination):
            await STRICT.check(url)
    with pytest.raises(RefusedDestination, match="https"):
        await LOCAL.check("http://93.184.215.14/hook")  # loopback allowed is not http anywhere
    with pytest.raises(RefusedDestination):
        await LOCAL.check("https://10.0.0.5/hook")


async def test_private_networks_only_when_allowed_and_link_local_never() -> None:
    await ON_PREMISE.check("https://10.0.0.5/hook")
    await ON_PREMISE.check("https://[fd00::1]/hook")
    everything = DestinationPolicy(allow_loopback=True, allow_private=True)
    for url in ("https://169.254.169.254/", "https://[fe80::1]/", "https://0.0.0.0/"):
        with pytest.raises(RefusedDestination):
            await everything.check(url)
