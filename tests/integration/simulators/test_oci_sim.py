"""The OCI simulator on its own, over plain httpx: it refuses what OCI refuses (unsigned or badly
signed requests, bad parameters, the wrong path) with OCI's error shape, and pages like OCI."""

from __future__ import annotations

import base64
import email.utils
from urllib.parse import urlencode

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from syncd.simulators.oci import OciSimulator, fingerprint, oci_fault
from tests.integration.conftest import OCI_TENANCY

TENANCY = OCI_TENANCY
USER = "ocid1.user.oc1..aaaaaaaauser"
CHILD = "ocid1.compartment.oc1..aaaaaaaachild"
GRANDCHILD = "ocid1.compartment.oc1..aaaaaaaagrandchild"
GONE = "ocid1.compartment.oc1..aaaaaaaagone"
ASHBURN = "us-ashburn-1"
PHOENIX = "us-phoenix-1"
FRANKFURT = "eu-frankfurt-1"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KEY_ID = f"{TENANCY}/{USER}/{fingerprint(KEY.public_key())}"


@pytest.fixture(scope="module")
def sim(oci_server: OciSimulator) -> OciSimulator:
    server = oci_server
    server.add_region(ASHBURN, "IAD")
    server.add_region(PHOENIX, "PHX")
    server.add_region(FRANKFURT, "FRA")
    server.subscribe(TENANCY, ASHBURN)
    server.subscribe(TENANCY, PHOENIX)
    server.add_compartment(CHILD, TENANCY)
    server.add_compartment(GRANDCHILD, CHILD)
    server.add_compartment(GONE, CHILD, "DELETED")
    for i in range(5):
        server.add_public_ip(ASHBURN, CHILD, f"192.0.2.{i}")
    subnet = server.add_subnet(ASHBURN, CHILD, ["2001:db8::/64"])
    server.add_ipv6(ASHBURN, subnet, "2001:db8::1")
    server.add_api_key(
        KEY_ID,
        KEY.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )
    return server


def get(
    sim: OciSimulator,
    path: str,
    params: list[tuple[str, str]] | None = None,
    *,
    key: rsa.RSAPrivateKey = KEY,
    key_id: str = KEY_ID,
    date: str | None = None,
    signed_target: str | None = None,
) -> httpx.Response:
    """A GET signed as the OCI SDK signs it (draft-cavage, rsa-sha256)."""
    target = path + ("?" + urlencode(params) if params else "")
    host = f"127.0.0.1:{sim.port}"
    date = date or email.utils.formatdate(usegmt=True)
    message = f"date: {date}\n(request-target): get {signed_target or target}\nhost: {host}"
    signature = base64.b64encode(
        key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())
    ).decode()
    authorization = (
        f'Signature version="1",keyId="{key_id}",algorithm="rsa-sha256",'
        f'headers="date (request-target) host",signature="{signature}"'
    )
    headers = {"date": date, "host": host, "authorization": authorization}
    return httpx.get(sim.url + target, headers=headers)


def api(region: str, rest: str) -> str:
    return f"/{region}/20160918{rest}"


def public_ips(sim: OciSimulator, *extra: tuple[str, str], region: str = ASHBURN) -> httpx.Response:
    params = [("scope", "REGION"), ("compartmentId", CHILD), *extra]
    return get(sim, api(region, "/publicIps"), params)


def code(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert {"code", "message"} == set(body)
    return response.status_code, body["code"]


def test_a_signed_request_is_answered(sim: OciSimulator):
    response = public_ips(sim)
    assert 200 == response.status_code
    assert ["192.0.2.0", "192.0.2.1"] == [ip["ipAddress"] for ip in response.json()]
    assert response.headers["opc-request-id"]


def test_an_unsigned_request_is_401(sim: OciSimulator):
    response = httpx.get(sim.url + api(ASHBURN, "/publicIps?scope=REGION&compartmentId=x"))
    assert (401, "NotAuthenticated") == code(response)


def test_a_signature_by_another_key_is_401(sim: OciSimulator):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    response = get(sim, api(ASHBURN, "/subnets"), [("compartmentId", CHILD)], key=other)
    assert (401, "NotAuthenticated") == code(response)


def test_a_signature_over_another_target_is_401(sim: OciSimulator):
    path = api(ASHBURN, "/subnets")
    response = get(
        sim, path, [("compartmentId", CHILD)], signed_target=f"{path}?compartmentId={TENANCY}"
    )
    assert (401, "NotAuthenticated") == code(response)


def test_an_unregistered_key_is_401(sim: OciSimulator):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_id = f"{TENANCY}/{USER}/{fingerprint(other.public_key())}"
    response = get(
        sim, api(ASHBURN, "/subnets"), [("compartmentId", CHILD)], key=other, key_id=key_id
    )
    assert (401, "NotAuthenticated") == code(response)


def test_a_stale_date_is_401(sim: OciSimulator):
    stale = email.utils.formatdate(0, usegmt=True)
    response = get(sim, api(ASHBURN, "/subnets"), [("compartmentId", CHILD)], date=stale)
    assert (401, "NotAuthenticated") == code(response)


def test_a_key_id_must_carry_the_keys_fingerprint(sim: OciSimulator):
    pem = KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ValueError, match="fingerprint"):
        sim.add_api_key(f"{TENANCY}/{USER}/00:11", pem)


def test_lists_page_with_opc_next_page(sim: OciSimulator):
    seen: list[str] = []
    pages = 0
    page: tuple[tuple[str, str], ...] = ()
    while True:
        response = public_ips(sim, ("limit", "2"), *page)
        assert 200 == response.status_code
        seen += [ip["ipAddress"] for ip in response.json()]
        pages += 1
        token = response.headers.get("opc-next-page")
        if token is None:
            break
        page = (("page", token),)
    assert ([f"192.0.2.{i}" for i in range(5)], 3) == (seen, pages)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([("limit", "0")], (400, "InvalidParameter")),
        ([("limit", "1001")], (400, "InvalidParameter")),
        ([("page", "not-a-token")], (400, "InvalidParameter")),
        ([("lifetime", "FOREVER")], (400, "InvalidParameter")),
        ([("availabilityDomain", "Uocm:US-ASHBURN-AD-1")], (400, "InvalidParameter")),
    ],
)
def test_public_ip_parameters_are_checked(sim: OciSimulator, params, expected):
    assert expected == code(public_ips(sim, *params))


def test_public_ips_need_a_scope_and_a_compartment(sim: OciSimulator):
    path = api(ASHBURN, "/publicIps")
    assert (400, "MissingParameter") == code(get(sim, path, [("compartmentId", CHILD)]))
    assert (400, "MissingParameter") == code(get(sim, path, [("scope", "REGION")]))
    ad_scope = [("scope", "AVAILABILITY_DOMAIN"), ("compartmentId", CHILD)]
    assert (400, "InvalidParameter") == code(get(sim, path, ad_scope))


def test_ipv6_path_is_singular(sim: OciSimulator):
    subnet = get(sim, api(ASHBURN, "/subnets"), [("compartmentId", CHILD)]).json()[0]["id"]
    assert (404, "NotAuthorizedOrNotFound") == code(
        get(sim, api(ASHBURN, "/ipv6s"), [("subnetId", subnet)])
    )
    assert (400, "InvalidParameter") == code(get(sim, api(ASHBURN, "/ipv6"), []))
    response = get(sim, api(ASHBURN, "/ipv6"), [("subnetId", subnet)])
    assert ["2001:db8::1"] == [v["ipAddress"] for v in response.json()]


def test_regions_are_told_apart_by_path_prefix(sim: OciSimulator):
    assert [] == public_ips(sim, region=PHOENIX).json()
    assert (401, "NotAuthenticated") == code(public_ips(sim, region=FRANKFURT))  # unsubscribed
    assert (404, "NotAuthorizedOrNotFound") == code(public_ips(sim, region="mars-north-1"))
    assert (404, "NotAuthorizedOrNotFound") == code(
        get(sim, "/20160918/publicIps", [("scope", "REGION"), ("compartmentId", CHILD)])
    )


def test_compartment_subtree_is_listed_from_the_tenancy_only(sim: OciSimulator):
    path = api(PHOENIX, "/compartments")
    subtree = [
        ("compartmentId", TENANCY),
        ("compartmentIdInSubtree", "true"),
        ("accessLevel", "ACCESSIBLE"),
        ("lifecycleState", "ACTIVE"),
    ]
    assert [CHILD, GRANDCHILD] == [c["id"] for c in get(sim, path, subtree).json()]
    below_child = [("compartmentId", CHILD), ("compartmentIdInSubtree", "true")]
    assert (400, "InvalidParameter") == code(get(sim, path, below_child))
    assert (400, "InvalidParameter") == code(
        get(sim, path, [("compartmentId", TENANCY), ("accessLevel", "SOME")])
    )


def test_region_subscriptions_and_availability_domains(sim: OciSimulator):
    subs = get(sim, api(ASHBURN, f"/tenancies/{TENANCY}/regionSubscriptions")).json()
    assert [(ASHBURN, "IAD", True), (PHOENIX, "PHX", False)] == [
        (s["regionName"], s["regionKey"], s["isHomeRegion"]) for s in subs
    ]
    other = get(sim, api(ASHBURN, "/tenancies/ocid1.tenancy.oc1..other/regionSubscriptions"))
    assert (404, "NotAuthorizedOrNotFound") == code(other)
    ads = get(sim, api(PHOENIX, "/availabilityDomains"), [("compartmentId", TENANCY)]).json()
    assert ["Uocm:US-PHOENIX-AD-1", "Uocm:US-PHOENIX-AD-2", "Uocm:US-PHOENIX-AD-3"] == [
        ad["name"] for ad in ads
    ]


def test_a_denied_compartment_answers_like_a_missing_policy(sim: OciSimulator):
    sim.deny_compartment(CHILD)
    try:
        assert (404, "NotAuthorizedOrNotFound") == code(public_ips(sim))
    finally:
        sim.allow_compartment(CHILD)
    assert 200 == public_ips(sim).status_code


def test_faults_answer_in_ocis_error_shape_and_are_logged(sim: OciSimulator):
    sim.clear_requests()
    sim.inject(oci_fault(429, "TooManyRequests", path="/publicIps$"))
    assert (429, "TooManyRequests") == code(public_ips(sim))
    assert 200 == public_ips(sim).status_code
    assert [429, 200] == [r.status for r in sim.requests_matching(path="/publicIps$")]
