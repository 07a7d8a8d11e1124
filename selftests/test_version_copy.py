"""drill/version_copy.py and ``CloudflareApi.version_content``: how the drill makes a real worker's test
change without its repository. Against the embedded staging on a real socket: the copy is the source's
code byte for byte and its bindings (variables, resources, secrets with their values), with only the
asked variables changed, and it is not deployed; refusals are errors, nothing is deployed. The
comparison that guards the deploy is checked on constructed versions, since a faithful API never
gives it a difference to find."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Any, TypeVar

import httpx
import pytest

from bookstrack_rollback.clients.cloudflare import CloudflareApi, Module, VersionInfo, WorkerCode, _parse_worker_code
from bookstrack_rollback.clients.errors import ApiRefused, BadAnswer, NotFound
from bookstrack_rollback.config.secret import Secret
from bookstrack_rollback.drill.version_copy import CopyMismatch, copy_differences, copy_version, upload_bindings
from bookstrack_rollback.staging import RunningStaging

T = TypeVar("T")
MODULES = {"index.js": b'import "./lib/x.js";\nexport default {}', "lib/x.js": b"\r\n--a--\r\n", "raw.bin": bytes(range(256))}
BINDINGS = [
    {"type": "plain_text", "name": "ENVIRONMENT", "text": "staging"},
    {"type": "json", "name": "LIMITS", "json": {"batch": 10}},
    {"type": "kv_namespace", "name": "KV", "namespace_id": "0f2ac74b498b48028cb68387c421e279"},
    {"type": "secret_text", "name": "API_KEY", "text": "key-4c3b2a19"},
]


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


def api_for(live: RunningStaging) -> CloudflareApi:
    config = live.config
    return CloudflareApi(live.cloudflare_api_url, account_id=config.account_id, token=Secret(config.token),
                         worker=config.worker_name)


def release(live: RunningStaging, *, deploy: bool = True) -> str:
    """A worker release with several modules and every kind of binding, over HTTP."""
    config = live.config
    script = f"{live.cloudflare_api_url}/accounts/{config.account_id}/workers/scripts/{config.worker_name}"
    metadata = {"main_module": "index.js", "bindings": BINDINGS, "compatibility_date": "2025-10-08",
                "compatibility_flags": ["nodejs_compat"], "annotations": {"workers/tag": "2.1.0"}}
    files: list[Any] = [("metadata", (None, json.dumps(metadata).encode(), "application/json"))]
    files += [(n, (n, c, "application/octet-stream")) for n, c in MODULES.items()]
    with httpx.Client(headers={"Authorization": f"Bearer {config.token}"}, timeout=10, trust_env=False) as http:
        version_id = http.post(f"{script}/versions", files=files).json()["result"]["id"]
        if deploy:
            http.post(f"{script}/deployments", json={"strategy": "percentage",
                                                     "versions": [{"version_id": version_id, "percentage": 100}]})
    return version_id


async def copy_of(live: RunningStaging, version_id: str, set_vars: dict[str, str | None]) -> tuple[VersionInfo, VersionInfo]:
    async with api_for(live) as api:
        source = await api.version(version_id)
        return source, await copy_version(api, source, set_vars=set_vars, tag="2.1.0+drill", message="drill")


def test_content_is_the_uploaded_code_byte_for_byte(live: RunningStaging):
    version_id = release(live)

    async def read() -> WorkerCode:
        async with api_for(live) as api:
            return await api.version_content(version_id)

    code = run(read())
    assert code.main_module == "index.js"
    assert {m.name: m.content for m in code.modules} == MODULES
    assert {m.name: m.content_type for m in code.modules}["index.js"] == "application/javascript+module"


def test_content_of_an_unknown_version_names_it(live: RunningStaging):
    async def read() -> None:
        async with api_for(live) as api:
            await api.version_content("00000000-0000-4000-8000-000000000000")

    with pytest.raises(NotFound, match="get the code of version 00000000-0000-4000-8000-000000000000: HTTP 404"):
        run(read())


def test_a_copy_with_fault_profile_is_the_source_plus_that_variable_and_is_not_deployed(live: RunningStaging):
    version_id = release(live)
    serving = live.staging.workers.serving_deployment()
    source, copy = run(copy_of(live, version_id, {"FAULT_PROFILE": '{"error_rate": 0.3}'}))
    stored = live.staging.workers.get_version(copy.id)
    original = live.staging.workers.get_version(version_id)
    assert stored is not None and original is not None
    assert stored.modules == MODULES and stored.main_module == "index.js"
    assert stored.bindings == [*BINDINGS, {"type": "plain_text", "name": "FAULT_PROFILE", "text": '{"error_rate": 0.3}'}]
    assert stored.secrets() == {"API_KEY": "key-4c3b2a19"}, "the secret keeps its value through inherit"
    assert (stored.compatibility_date, stored.compatibility_flags) == ("2025-10-08", ("nodejs_compat",))
    assert copy.tag == "2.1.0+drill" and copy.var("FAULT_PROFILE") == '{"error_rate": 0.3}'
    assert live.staging.workers.serving_deployment() == serving, "a copy is uploaded, not deployed"
    assert original.bindings == BINDINGS


def test_a_copy_can_drop_a_variable_and_inherits_from_the_source_not_the_latest(live: RunningStaging):
    version_id = release(live)
    release(live, deploy=False)  # a newer version: inherit must still read the source's bindings
    _, copy = run(copy_of(live, version_id, {"ENVIRONMENT": None}))
    stored = live.staging.workers.get_version(copy.id)
    assert stored is not None and [b["name"] for b in stored.bindings] == ["LIMITS", "KV", "API_KEY"]


def test_the_upload_asks_strict_inherit_so_nothing_is_dropped_silently(live: RunningStaging):
    source = VersionInfo(id="00000000-0000-4000-8000-000000000000", number=None, created_on="", tag="x", message=None,
                         triggered_by=None, bindings=({"type": "kv_namespace", "name": "KV", "namespace_id": "n"},))
    (inherit,) = upload_bindings(source, {})
    assert inherit == {"type": "inherit", "name": "KV", "version_id": source.id}

    async def upload() -> None:
        async with api_for(live) as api:
            await api.upload_version(main_module="index.js", modules={"index.js": b"export default {}"},
                                     bindings=[inherit], annotations={}, strict_inherit=True)

    before = len(live.staging.workers.versions)
    with pytest.raises(ApiRefused, match="binding 'KV' inherits from version '00000000-0000-4000-8000-000000000000', which does not exist"):
        run(upload())
    assert len(live.staging.workers.versions) == before


SOURCE = VersionInfo(id="a", number=1, created_on="", tag="2.1.0", message=None, triggered_by=None,
                     bindings=tuple(BINDINGS), compatibility_date="2025-10-08", compatibility_flags=("nodejs_compat",))
CODE = WorkerCode("index.js", tuple(Module(n, "application/javascript+module", c) for n, c in MODULES.items()))
FAULT = {"FAULT_PROFILE": "{}"}
FAULTY_BINDINGS = (*BINDINGS, {"type": "plain_text", "name": "FAULT_PROFILE", "text": "{}"})


def copied(**changes: Any) -> VersionInfo:
    fields = {"id": "b", "number": 2, "created_on": "", "tag": "2.1.0+drill", "message": None, "triggered_by": None,
              "bindings": FAULTY_BINDINGS, "compatibility_date": "2025-10-08", "compatibility_flags": ("nodejs_compat",)}
    return VersionInfo(**{**fields, **changes})


def test_a_faithful_copy_has_no_difference_and_a_secret_is_compared_by_name():
    shown = tuple({k: v for k, v in b.items() if k != "text"} if b["type"] == "secret_text" else b
                  for b in FAULTY_BINDINGS)  # the API never shows a secret's text
    assert copy_differences(SOURCE, FAULT, CODE, copied(bindings=shown), CODE) == []


@pytest.mark.parametrize("copy, code, phrase", [
    (copied(), WorkerCode("index.js", CODE.modules[:2]), "module 'raw.bin' only in the first"),
    (copied(), WorkerCode("index.js", (*CODE.modules[:2], Module("raw.bin", "x", b"!"))), "module 'raw.bin' differs"),
    (copied(), WorkerCode("lib/x.js", CODE.modules), "main module 'index.js' vs 'lib/x.js'"),
    (copied(bindings=FAULTY_BINDINGS[:2] + FAULTY_BINDINGS[3:]), CODE, "binding 'KV' is None, expected"),
    (copied(bindings=BINDINGS), CODE, "binding 'FAULT_PROFILE' is None, expected"),
    (copied(bindings=(*FAULTY_BINDINGS, {"type": "plain_text", "name": "X", "text": ""})), CODE, "binding 'X' is"),
    (copied(compatibility_date="2024-01-01"), CODE, "compatibility date '2024-01-01', expected '2025-10-08'"),
    (copied(compatibility_flags=()), CODE, "compatibility flags [], expected ['nodejs_compat']"),
], ids=["module-missing", "module-changed", "entrypoint", "binding-lost", "fault-lost", "binding-added", "date", "flags"])
def test_every_difference_of_a_copy_is_named(copy: VersionInfo, code: WorkerCode, phrase: str):
    problems = copy_differences(SOURCE, FAULT, CODE, copy, code)
    assert len(problems) == 1 and phrase in problems[0], problems
    message = str(CopyMismatch(f"not a copy: {'; '.join(problems)}", copy=copy))
    assert phrase in message


def test_content_answers_that_are_not_modules_are_read_or_refused():
    script = _parse_worker_code("get code", "application/javascript", None, b"addEventListener('fetch', f)")
    assert script.main_module == "index.js" and script.modules[0].content == b"addEventListener('fetch', f)"
    with pytest.raises(BadAnswer, match="without a cf-entrypoint header"):
        _parse_worker_code("get code", "multipart/form-data; boundary=b", None, b"--b--\r\n")
    body = b'--b\r\nContent-Disposition: form-data; name="a.js"\r\n\r\nx\r\n--b--\r\n'
    with pytest.raises(BadAnswer, match="the entrypoint 'index.js' is not among the parts \\['a.js'\\]"):
        _parse_worker_code("get code", "multipart/form-data; boundary=b", "index.js", body)
