"""Evidence in a hash chain: every altered, missing, edited or removed item is found, in the
store and in an exported bundle checked on its own; bad input stores nothing."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import zipfile
import zlib
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from factories import make_tenant
from memberlab.core.app_state import AppState
from memberlab.core.errors import Conflict, NotFound
from memberlab.engagement import evidence
from memberlab.engagement.definition import content_hash, parse_definition_text
from memberlab.engagement.evidence import (
    GENESIS,
    EvidenceBroken,
    InvalidEvidence,
    Status,
    VerificationReport,
    add_evidence,
    chain_hash,
    export_bundle,
    iso_instant,
    safe_file_name,
    verify,
    verify_bundle,
)
from memberlab.engagement.models import Engagement, EngagementVersion, EvidenceItem

SAMPLE = (
    Path(__file__).parents[2]
    / "src"
    / "memberlab"
    / "engagement"
    / "samples"
    / "membership_consulting.yaml"
)
DEFINITION = parse_definition_text(SAMPLE.read_text(encoding="utf-8"))
FILES = {
    1: ("deliverable", "客户体验诊断报告", "诊断报告 v1.pdf", b"%PDF-1.4 diagnosis report\n"),
    2: ("acceptance", "Design acceptance", "acceptance.pdf", b"signed: design accepted\n"),
    3: ("attendance", "培训签到表", "签到表.xlsx", b"trainee,signature\n"),
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Case:
    """One tenant's engagement with its evidence folder."""

    state: AppState
    tenant_id: int
    engagement_pk: int
    root: Path

    def session(self) -> Any:
        return self.state.database.session(tenant_id=self.tenant_id)

    def add(self, seq: int, **overrides: Any) -> EvidenceItem:
        kind, title, name, data = FILES[seq]
        arguments: dict[str, Any] = {
            "kind": kind,
            "title": title,
            "file_name": name,
            "data": data,
            "uploaded_by": "chen.xiao",
            "now": self.state.clock() + timedelta(days=seq, microseconds=seq),
        }
        arguments.update(overrides)
        with self.session() as session:
            return add_evidence(session, self.root, engagement_pk=self.engagement_pk, **arguments)

    def add_all(self) -> list[EvidenceItem]:
        return [self.add(seq) for seq in FILES]

    def verify(self, **kwargs: Any) -> VerificationReport:
        with self.session() as session:
            return verify(session, self.root, self.engagement_pk, **kwargs)

    def export(self, out: Path, **kwargs: Any) -> Path:
        kwargs.setdefault("lang", "en")
        with self.session() as session:
            return export_bundle(session, self.root, self.engagement_pk, out, **kwargs)

    def path(self, item: EvidenceItem) -> Path:
        return self.root / item.stored_path

    def stored_files(self) -> list[Path]:
        return sorted(p for p in self.root.rglob("*") if p.is_file()) if self.root.exists() else []

    def rows(self) -> int:
        with self.session() as session:
            return session.scalar(select(func.count()).select_from(EvidenceItem)) or 0


@pytest.fixture
def case(state: AppState) -> Case:
    tenant = make_tenant(state).tenant
    now = state.clock()
    with state.database.session(tenant_id=tenant.id) as session:
        engagement = Engagement(
            contract_number=DEFINITION.contract_number,
            status="signed",
            current_version=1,
            created_at=now,
            created_by="test",
        )
        session.add(engagement)
        session.flush()
        session.add(
            EngagementVersion(
                engagement_pk=engagement.id,
                version=1,
                definition=DEFINITION.model_dump(mode="json"),
                content_hash=content_hash(DEFINITION),
                reason="original",
                change_code=None,
                created_at=now,
                created_by="test",
            )
        )
    return Case(state, tenant.id, engagement.id, state.settings.data_dir / "evidence")


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


# --- the chain -------------------------------------------------------------------------------


def test_items_are_numbered_stored_and_chained(case: Case, tmp_path: Path) -> None:
    source = tmp_path / "training plan (final).docx"
    source.write_bytes(b"training plan")
    first, second = case.add(1), case.add(2)
    third = case.add(3, source_path=source, data=None, file_name=None)

    assert [first.seq, second.seq, third.seq] == [1, 2, 3]
    assert first.previous_hash == GENESIS
    assert second.previous_hash == first.chain_hash
    assert third.previous_hash == second.chain_hash
    assert (third.file_name, third.sha256, third.size) == (
        "training plan (final).docx",
        sha(b"training plan"),
        13,
    )
    assert first.stored_path == f"{case.tenant_id}/{case.engagement_pk}/0001-诊断报告_v1.pdf"
    assert case.path(first).read_bytes() == FILES[1][3]
    assert case.path(third).name == "0003-training_plan_(final).docx"
    record = {
        "seq": 2,
        "kind": "acceptance",
        "title": "Design acceptance",
        "file_name": "acceptance.pdf",
        "sha256": sha(FILES[2][3]),
        "size": len(FILES[2][3]),
        "uploaded_at": iso_instant(second.uploaded_at),
        "uploaded_by": "chen.xiao",
    }
    assert second.chain_hash == chain_hash(first.chain_hash, record)
    assert iso_instant(second.uploaded_at) == "2026-11-27T08:00:00.000002+00:00"

    report = case.verify()

    assert report.ok, report.render("en")
    assert [item.status for item in report.items] == [Status.OK] * 3
    assert report.final_chain_hash == third.chain_hash
    assert report.render("en").startswith("All 3 evidence items verified")
    assert case.verify(expected_final_hash=third.chain_hash.upper()).ok
    assert [p.name for p in case.stored_files()] == [
        "0001-诊断报告_v1.pdf",
        "0002-acceptance.pdf",
        "0003-training_plan_(final).docx",
    ]


def test_an_altered_evidence_file_is_detected(case: Case, out: Path) -> None:
    # Worked example: three items are stored; afterwards one byte of the acceptance (item 2)
    # is changed on disk ("accepted" -> "acceptEd"). Verification names item 2, with the hash
    # recorded at upload and the hash of what is there now; items 1 and 3 are fine.
    _, acceptance, _ = case.add_all()
    original = case.path(acceptance).read_bytes()
    altered = original.replace(b"accepted", b"acceptEd")
    case.path(acceptance).write_bytes(altered)

    report = case.verify()

    assert not report.ok
    assert [item.seq for item in report.failed] == [2]
    check = report.failed[0]
    assert check.problems == (Status.FILE_ALTERED,)
    assert check.expected_sha256 == sha(original) == acceptance.sha256
    assert check.actual_sha256 == sha(altered)
    text = report.render("en")
    assert "1 of 3 evidence items failed verification" in text
    assert (
        "#2 Design acceptance (acceptance.pdf): the file has changed: "
        f"expected SHA-256 {sha(original)}, found {sha(altered)}"
    ) in text
    assert "文件已被改动" in report.render("zh-CN")

    # and nothing is exported while it stays that way
    with pytest.raises(EvidenceBroken) as caught:
        case.export(out / "bundle.zip")
    assert "(#2)" in str(caught.value)
    assert caught.value.report.failed[0].seq == 2
    assert list(out.iterdir()) == []


def test_a_deleted_file_is_detected(case: Case) -> None:
    first, _, _ = case.add_all()
    case.path(first).unlink()

    report = case.verify()

    assert [(item.seq, item.problems) for item in report.failed] == [(1, (Status.FILE_MISSING,))]
    assert report.failed[0].actual_sha256 is None
    assert first.stored_path in report.render("en")


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("title", "Design acceptance (revised)"),
        ("kind", "deliverable"),
        ("uploaded_by", "someone.else"),
        ("size", 1),
    ],
)
def test_an_edited_row_breaks_the_chain_at_that_item(case: Case, column: str, value: Any) -> None:
    case.add_all()
    with case.session() as session:
        session.execute(update(EvidenceItem).where(EvidenceItem.seq == 2).values({column: value}))

    report = case.verify()

    assert [(item.seq, item.problems) for item in report.failed] == [(2, (Status.CHAIN_BROKEN,))]
    assert "no longer matches its chain hash" in report.render("en")


def test_a_row_rewritten_to_match_a_swapped_file_is_still_caught(case: Case) -> None:
    first, _, _ = case.add_all()
    forged = b"%PDF-1.4 a better-looking report\n"
    case.path(first).write_bytes(forged)
    with case.session() as session:
        session.execute(
            update(EvidenceItem)
            .where(EvidenceItem.seq == 1)
            .values(sha256=sha(forged), size=len(forged))
        )

    report = case.verify()

    assert [(item.seq, item.problems) for item in report.failed] == [(1, (Status.CHAIN_BROKEN,))]


def test_an_edited_hash_is_reported_as_both_file_and_chain(case: Case) -> None:
    case.add_all()
    with case.session() as session:
        session.execute(update(EvidenceItem).where(EvidenceItem.seq == 3).values(sha256="0" * 64))

    (check,) = case.verify().failed

    assert check.seq == 3
    assert check.problems == (Status.FILE_ALTERED, Status.CHAIN_BROKEN)


def test_an_item_removed_from_the_middle_is_detected(case: Case) -> None:
    case.add_all()
    with case.session() as session:
        session.execute(delete(EvidenceItem).where(EvidenceItem.seq == 2))

    report = case.verify()

    assert [(item.seq, item.problems) for item in report.failed] == [(3, (Status.CHAIN_BROKEN,))]
    assert [f.key for f in report.failed[0].findings] == [
        "engagement.evidence.check.seq",
        "engagement.evidence.check.link",
    ]
    assert "expected item #2 here, found #3" in report.render("en")


def test_the_last_item_removed_is_caught_against_a_recorded_final_hash(case: Case) -> None:
    *_, last = case.add_all()
    with case.session() as session:
        session.execute(delete(EvidenceItem).where(EvidenceItem.seq == 3))

    assert case.verify().ok  # the chain alone cannot know that it once was longer
    report = case.verify(expected_final_hash=last.chain_hash)

    assert not report.ok
    assert [f.key for f in report.findings] == ["engagement.evidence.check.final"]


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "loc", "key"),
    [
        ({"data": b""}, "file", "engagement.evidence.v.empty"),
        ({"kind": "invoice"}, "kind", "core.v.choice"),
        ({"title": "  "}, "title", "core.v.text_empty"),
        ({"title": "x" * 301}, "title", "core.v.text_too_long"),
        ({"uploaded_by": ""}, "uploaded_by", "core.v.text_empty"),
        ({"file_name": "folder/"}, "file_name", "core.v.text_empty"),
        ({"data": None}, "file", "engagement.evidence.v.one_source"),
        ({"source_path": Path("/nonexistent/x.pdf"), "data": None}, "source_path",
         "engagement.evidence.v.unreadable"),
    ],
)  # fmt: skip
def test_bad_input_stores_nothing(
    case: Case, overrides: dict[str, Any], loc: str, key: str
) -> None:
    with pytest.raises(InvalidEvidence) as caught:
        case.add(1, **overrides)

    assert (loc, key) in [(e.loc, e.key) for e in caught.value.errors]
    assert case.rows() == 0
    assert case.stored_files() == []


def test_empty_and_oversized_source_files_store_nothing(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(evidence, "MAX_FILE_BYTES", 10)
    empty, big = tmp_path / "empty.pdf", tmp_path / "big.pdf"
    empty.write_bytes(b"")
    big.write_bytes(b"x" * 11)

    for path, key in ((empty, "engagement.evidence.v.empty"), (big, "v.too_large")):
        with pytest.raises(InvalidEvidence) as caught:
            case.add(1, source_path=path, data=None, file_name=None)
        assert caught.value.errors[0].key.endswith(key)
    assert case.rows() == 0
    assert case.stored_files() == []


def test_a_failed_insert_or_a_rollback_leaves_no_file(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: Session, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the database is gone")

    with monkeypatch.context() as patch:
        patch.setattr(Session, "flush", refuse)
        with pytest.raises(RuntimeError):
            case.add(1)
    assert case.stored_files() == []

    def upload_then_fail() -> None:
        with case.session() as session:
            add_evidence(
                session,
                case.root,
                engagement_pk=case.engagement_pk,
                kind="other",
                title="never committed",
                data=b"x",
                file_name="x.txt",
                uploaded_by="chen.xiao",
                now=case.state.clock(),
            )
            assert len(case.stored_files()) == 1
            raise RuntimeError("something after the upload fails")

    with pytest.raises(RuntimeError, match="after the upload"):
        upload_then_fail()
    assert case.stored_files() == []
    assert case.rows() == 0

    case.add(1)  # committed: kept, and numbered 1 since nothing else was committed
    assert [p.name for p in case.stored_files()] == ["0001-诊断报告_v1.pdf"]


def test_another_tenants_engagement_is_not_found(case: Case) -> None:
    other = make_tenant(case.state, slug="other").tenant
    with pytest.raises(NotFound), case.state.database.session(tenant_id=other.id) as session:
        add_evidence(
            session,
            case.root,
            engagement_pk=case.engagement_pk,
            kind="other",
            title="x",
            data=b"x",
            file_name="x.txt",
            uploaded_by="x",
            now=case.state.clock(),
        )
    assert case.stored_files() == []


def test_file_names_are_made_safe() -> None:
    assert safe_file_name("../../etc/passwd") == "passwd"
    assert safe_file_name("C:\\Users\\王\\验收单 (签字).pdf") == "验收单_(签字).pdf"
    assert safe_file_name(".hidden") == "hidden"
    assert safe_file_name("???") == "file"
    assert safe_file_name("a" * 300 + ".pdf") == "a" * 116 + ".pdf"


# --- the bundle ------------------------------------------------------------------------------


def pdf_text(pdf: bytes) -> str:
    """The text a reportlab PDF shows, line by line: each page stream (ASCII85 and Flate) is
    decoded, and each string is read in its font (``/F2``, the CJK font, is UCS-2)."""
    lines = []
    for raw in re.findall(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        content = zlib.decompress(base64.a85decode(raw.strip().removesuffix(b"~>")))
        font = b""
        for token in re.finditer(rb"/(F\d+) [\d.]+ Tf|\(((?:\\.|[^\\()])*)\) Tj", content, re.S):
            if token.group(1):
                font = token.group(1)
                continue
            text = re.sub(
                rb"\\([0-7]{1,3}|.)",
                lambda m: bytes([int(m[1], 8)]) if m[1][:1].isdigit() else m[1],
                token.group(2),
                flags=re.S,
            )
            lines.append(text.decode("utf-16-be" if font == b"F2" else "latin-1"))
    return "\n".join(lines)


@pytest.mark.parametrize(("name", "lang"), [("bundle.zip", "en"), ("bundle", "zh-CN")])
def test_an_exported_bundle_verifies_on_its_own(
    case: Case, out: Path, name: str, lang: Any
) -> None:
    items = case.add_all()

    bundle = case.export(out / name, lang=lang, definition=DEFINITION, now=case.state.clock())

    report = verify_bundle(bundle)
    assert report.ok, report.render("en")
    assert report.final_chain_hash == items[-1].chain_hash
    assert [i.path for i in report.items] == [
        "files/0001-诊断报告_v1.pdf",
        "files/0002-acceptance.pdf",
        "files/0003-签到表.xlsx",
    ]
    if bundle.suffix == ".zip":
        with zipfile.ZipFile(bundle) as archive:
            manifest = json.loads(archive.read("manifest.json"))
            pdf = archive.read("index.pdf")
            assert archive.read("files/0002-acceptance.pdf") == FILES[2][3]
    else:
        manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
        pdf = (bundle / "index.pdf").read_bytes()
        assert (bundle / "files" / "0002-acceptance.pdf").read_bytes() == FILES[2][3]
    assert manifest["final_chain_hash"] == items[-1].chain_hash
    assert manifest["verified"] is True
    assert manifest["generated_at"] == "2026-11-25T08:00:00.000000+00:00"
    assert manifest["engagement"]["client"]["legal_name"] == "茶语咖啡（上海）有限公司"
    assert [(i["seq"], i["sha256"], i["chain_hash"]) for i in manifest["items"]] == [
        (i.seq, i.sha256, i.chain_hash) for i in items
    ]
    assert [p.name for p in out.iterdir()] == [name]  # no temporary left behind

    assert pdf.startswith(b"%PDF")
    assert pdf.rstrip().endswith(b"%%EOF")
    text = pdf_text(pdf)
    assert ("履约证明材料" if lang == "zh-CN" else "Proof of performance") in text.splitlines()
    assert DEFINITION.contract_number in text
    assert "明德会员咨询（深圳）有限公司 (91440300MA5G2K9T0G)" in text  # the provider
    assert items[-1].chain_hash in text  # the final chain hash, in full
    assert f"{items[0].sha256[:16]}..." in text  # each item's, shortened
    assert "客户体验诊断报告" in text
    assert ("校验方法" if lang == "zh-CN" else "How to verify") in text


def tamper_zip(bundle: Path, name: str, content: bytes) -> None:
    """Rewrite one member of a ZIP (what someone editing the bundle would do)."""
    with zipfile.ZipFile(bundle) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    members[name] = content
    with zipfile.ZipFile(bundle, "w") as archive:
        for member, data in members.items():
            archive.writestr(member, data)


def test_a_file_altered_in_the_bundle_is_named(case: Case, out: Path) -> None:
    case.add_all()
    bundle = case.export(out / "bundle.zip")
    forged = b"signed: design accepted with no reservations\n"

    tamper_zip(bundle, "files/0002-acceptance.pdf", forged)

    report = verify_bundle(bundle)
    assert [(i.seq, i.problems) for i in report.failed] == [(2, (Status.FILE_ALTERED,))]
    assert report.failed[0].actual_sha256 == sha(forged)
    assert "files/0002-acceptance.pdf" not in report.render("en")  # named by seq and title
    assert "#2 Design acceptance (acceptance.pdf): the file has changed" in report.render("en")

    # fixing the manifest to match does not help: the chain no longer holds
    with zipfile.ZipFile(bundle) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    manifest["items"][1]["sha256"] = sha(forged)
    tamper_zip(bundle, "manifest.json", json.dumps(manifest).encode())

    report = verify_bundle(bundle)
    assert [(i.seq, i.problems) for i in report.failed] == [(2, (Status.CHAIN_BROKEN,))]


def test_a_bundle_folder_with_missing_or_extra_files_fails(case: Case, out: Path) -> None:
    case.add_all()
    bundle = case.export(out / "bundle")
    (bundle / "files" / "0001-诊断报告_v1.pdf").unlink()
    (bundle / "files" / "0004-extra.pdf").write_bytes(b"slipped in")

    report = verify_bundle(bundle)

    assert [(i.seq, i.problems) for i in report.failed] == [(1, (Status.FILE_MISSING,))]
    assert [f.params for f in report.findings] == [{"path": "files/0004-extra.pdf"}]


def test_a_broken_set_exports_only_when_allowed_and_marked(case: Case, out: Path) -> None:
    case.add_all()
    with case.session() as session:
        session.execute(update(EvidenceItem).where(EvidenceItem.seq == 1).values(title="Edited"))

    bundle = case.export(out / "bundle", allow_broken=True)

    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["verified"] is False
    assert [(p["seq"], p["status"]) for p in manifest["problems"]] == [(1, "chain_broken")]
    assert [i.seq for i in verify_bundle(bundle).failed] == [1]
    text = pdf_text((bundle / "index.pdf").read_bytes())
    assert "WARNING: verification FAILED for items #1." in text
    assert "[CHAIN BROKEN]" in text


def test_export_refuses_to_overwrite(case: Case, out: Path) -> None:
    case.add_all()
    (out / "bundle.zip").write_bytes(b"an earlier bundle")

    with pytest.raises(Conflict):
        case.export(out / "bundle.zip")
    assert (out / "bundle.zip").read_bytes() == b"an earlier bundle"


def test_something_else_is_not_a_bundle(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty").mkdir()

    for path in (tmp_path / "notes.txt", tmp_path / "empty"):
        with pytest.raises(InvalidEvidence):
            verify_bundle(path)
    with pytest.raises(NotFound):
        verify_bundle(tmp_path / "nowhere.zip")


def test_a_leftover_file_at_the_next_number_is_kept_aside(case: Case) -> None:
    folder = case.root / str(case.tenant_id) / str(case.engagement_pk)
    folder.mkdir(parents=True)
    (folder / "0001-诊断报告_v1.pdf").write_bytes(b"left by a crashed upload")

    item = case.add(1)

    assert case.path(item).read_bytes() == FILES[1][3]
    (kept,) = [p for p in case.stored_files() if p.name.endswith(".displaced")]
    assert kept.read_bytes() == b"left by a crashed upload"
    assert case.verify().ok


def test_the_terms_of_another_contract_are_refused(case: Case, out: Path) -> None:
    case.add(1)
    other = DEFINITION.model_copy(update={"contract_number": "ML-2026-999"})

    with pytest.raises(InvalidEvidence, match="ML-2026-999, not of ML-2026-001"):
        case.export(out / "bundle.zip", definition=other)
    assert list(out.iterdir()) == []


def test_bytes_patched_inside_the_zip_are_named(case: Case, out: Path) -> None:
    case.add_all()
    bundle = case.export(out / "bundle.zip")
    with zipfile.ZipFile(bundle) as archive:
        entry = archive.getinfo("files/0003-签到表.xlsx")
    content = bytearray(bundle.read_bytes())
    header = entry.header_offset
    name_length = int.from_bytes(content[header + 26 : header + 28], "little")
    extra_length = int.from_bytes(content[header + 28 : header + 30], "little")
    start = header + 30 + name_length + extra_length
    content[start + entry.compress_size // 2] ^= 0x01  # one bit of the stored data
    bundle.write_bytes(bytes(content))

    report = verify_bundle(bundle)

    assert [(i.seq, i.problems) for i in report.failed] == [(3, (Status.FILE_ALTERED,))]
    assert report.failed[0].actual_sha256 == evidence.DAMAGED
