"""Dossier packages for tests: a sample dossier sealed in a court's stack, its package, and the
tools to take a package apart and put a (changed) one together again."""

from __future__ import annotations

import hashlib
import io
import tarfile

from dossier.package import plan_package
from evidence.package import EVENTS, TAGMANIFEST
from tests.dossier_fixtures import Stack, pdf_bytes

CASE = "（2026）京0105民初123号"
ACT = {"actor": "clerk:1", "role": "clerk"}
HIGHER = "1101-0200"


def sample_dossier(low: Stack, *, transfer: bool = True, files: int = 4) -> str:
    app = low.app
    d = app.open_dossier(case_number_text=CASE, case_type="民事", actor="clerk:1", role="clerk",
                         parties=[{"role": "原告", "name": "张三", "id_number": "110101199001011234"},
                                  {"role": "被告", "kind": "legal", "name": "北京某某科技有限公司"}])  # fmt: skip
    for i in range(files):
        app.upload(d, io.BytesIO(pdf_bytes(i + 1)), name=f"证据材料{i} 借款合同.pdf", media_type="application/pdf",
                   source="court", doc_type=None, **ACT)  # fmt: skip
    app.upload(d, io.BytesIO("判决如下：…".encode()), name="判决书.txt", media_type="text/plain", source="court",
               doc_type="判决书", **ACT)  # fmt: skip
    app.submit_evidence(d, sha256="ab" * 32, size=10, name="聊天记录", submitter={"role": "原告", "name": "张三"},
                        description="微信聊天记录", **ACT)  # fmt: skip
    if transfer:
        app.transfer(d, to_court=HIGHER, kind="上诉", reason="被告不服一审判决", **ACT)
    low.sealer.seal()
    return str(d)


def package_bytes(low: Stack, d: str) -> bytes:
    plan = plan_package(low.sealer, d, court_name="北京市朝阳区人民法院", purpose="上诉")
    data = b"".join(plan.stream(low.app.blobs))
    assert len(data) == plan.size
    return data


def tar_members(data: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        return [(m, t.extractfile(m).read()) for m in t.getmembers()]  # type: ignore[union-attr]


def rebuild(members: list[tuple[tarfile.TarInfo, bytes]], *, fix_tags: bool = True) -> bytes:
    """A package from (possibly changed) members; ``fix_tags``: recompute the tag manifest, as a
    careful forger would, so only the deeper checks can catch the change."""
    tags = {m.name: d for m, d in members if not m.name.startswith("data/")}
    if fix_tags:
        lines = "".join(f"{hashlib.sha256(d).hexdigest()} {n}\n" for n, d in tags.items() if n != TAGMANIFEST)
        tags[TAGMANIFEST] = lines.encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as t:
        for m, d in members:
            data = tags.get(m.name, d)
            m.size = len(data)
            t.addfile(m, io.BytesIO(data))
    return out.getvalue()


def event_lines(members: list[tuple[tarfile.TarInfo, bytes]]) -> list[bytes]:
    return next(d for m, d in members if m.name == EVENTS).splitlines(keepends=True)


def with_events(members: list[tuple[tarfile.TarInfo, bytes]], lines: list[bytes]) -> bytes:
    return rebuild([(m, b"".join(lines) if m.name == EVENTS else d) for m, d in members])
