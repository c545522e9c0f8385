from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from tests.documents_net.conftest import RunDoc, WebServer, steps

from kiln.documents.actions import web_download
from kiln.documents.validate import DocumentInvalid


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(web_download, "BACKOFF", 0.01)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".kiln-part"))


def test_downloads_files_folders_redirects_and_chains(run_doc: RunDoc, web: WebServer, tmp_path: Path) -> None:
    body = b"payload \x00\x01" * 1000
    web.files["/pkg/tool.tar.gz"] = body
    web.files["/notes%20v1.txt"] = b"notes"
    web.redirects["/latest"] = "/pkg/tool.tar.gz"
    sha = hashlib.sha256(body).hexdigest()
    out = tmp_path / "out"
    execution = run_doc(f"""
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Fetch
                action: WebDownload
                inputs:
                  - source: {web.url('/pkg/tool.tar.gz')}
                    destination: {out}/deep/er/tool.tgz
                    checksum: {sha.upper()}
                    algorithm: sha256
                  - source: {web.url('/notes%20v1.txt')}
                    destination: {out}/docs/
                  - source: {web.url('/latest')}
                    destination: {out}/latest.bin
              - name: One
                action: WebDownload
                inputs:
                  - source: {web.url('/latest')}
                    destination: {out}/one/
              - name: Again
                action: WebDownload
                inputs:
                  - source: {web.url('/pkg/tool.tar.gz')}
                    destination: '{{{{ build.One.outputs.destination }}}}.copy'
                    checksum: {hashlib.md5(body).hexdigest()}
                    algorithm: MD5
    """)
    by_name = steps(execution)
    assert execution.status == "success", [s.failure_message for s in execution.steps()]
    assert (out / "deep/er/tool.tgz").read_bytes() == body
    assert (out / "docs/notes v1.txt").read_bytes() == b"notes"
    assert (out / "latest.bin").read_bytes() == body
    assert by_name["Fetch"].outputs == [{"destination": f"{out}/deep/er/tool.tgz\n{out}/docs/notes v1.txt\n"
                                                        f"{out}/latest.bin"}]
    assert by_name["One"].outputs == [{"destination": f"{out}/one/latest"}]
    assert (out / "one/latest").read_bytes() == body
    assert (out / "one/latest.copy").read_bytes() == body
    assert sorted(p.name for p in out.iterdir()) == ["deep", "docs", "latest.bin", "one"]
    assert (out / "deep/er/tool.tgz").stat().st_mode & 0o777 == 0o644
    assert leftovers(out / "deep/er") == []


def test_checksum_mismatch_fails_and_leaves_nothing(run_doc: RunDoc, web: WebServer, tmp_path: Path) -> None:
    web.files["/a"] = b"real content"
    target = tmp_path / "a.bin"
    execution = run_doc(f"""
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Fetch
                action: WebDownload
                inputs:
                  - source: {web.url('/a')}
                    destination: {target}
                    checksum: {hashlib.sha1(b'other content').hexdigest()}
                    algorithm: SHA1
    """)
    record = steps(execution)["Fetch"]
    assert execution.status == "failed"
    assert "SHA1 checksum mismatch" in record.failure_message
    assert hashlib.sha1(b"real content").hexdigest() in record.failure_message
    assert not target.exists()
    assert leftovers(tmp_path) == []


def test_mismatch_keeps_the_existing_file_untouched(run_doc: RunDoc, web: WebServer, tmp_path: Path) -> None:
    web.files["/a"] = b"new"
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    execution = run_doc(f"""
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Fetch
                action: WebDownload
                inputs:
                  - source: {web.url('/a')}
                    destination: {target}
                    checksum: {hashlib.sha512(b'something else').hexdigest()}
                    algorithm: SHA512
    """)
    assert execution.status == "failed"
    assert target.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


def test_overwrite_rules(run_doc: RunDoc, web: WebServer, tmp_path: Path) -> None:
    web.files["/a"] = b"fresh"
    existing = tmp_path / "existing"
    existing.write_bytes(b"stale")
    existing.chmod(0o600)
    matching = tmp_path / "matching"
    matching.write_bytes(b"fresh")
    template = """
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Fetch
                action: WebDownload
                inputs:
                  - {item}
    """
    refused = run_doc(template.format(item=f"{{source: '{web.url('/a')}', destination: '{existing}', "
                                           f"overwrite: false}}"))
    assert refused.status == "failed"
    assert 'already exists and "overwrite" is set to false' in steps(refused)["Fetch"].failure_message
    assert existing.read_bytes() == b"stale"
    assert web.hits.get("/a", 0) == 0

    replaced = run_doc(template.format(item=f"{{source: '{web.url('/a')}', destination: '{existing}'}}"))
    assert replaced.status == "success"
    assert existing.read_bytes() == b"fresh"
    assert existing.stat().st_mode & 0o777 == 0o600  # the replaced file keeps its mode
    assert web.hits["/a"] == 1

    md5 = hashlib.md5(b"fresh").hexdigest()
    skipped = run_doc(template.format(item=f"{{source: '{web.url('/a')}', destination: '{matching}', "
                                           f"checksum: '{md5}', algorithm: MD5}}"))
    assert skipped.status == "success"
    assert web.hits["/a"] == 1  # already matching: not downloaded again
    assert steps(skipped)["Fetch"].outputs == [{"destination": str(matching)}]


def test_http_errors_and_retries(run_doc: RunDoc, web: WebServer, tmp_path: Path) -> None:
    web.files["/flaky"] = b"eventually"
    web.flaky["/flaky"] = 2
    web.files["/down"] = b"never"
    web.flaky["/down"] = 100
    template = """
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Fetch
                action: WebDownload
                inputs:
                  - source: {url}
                    destination: {dest}
    """
    ok = run_doc(template.format(url=web.url("/flaky"), dest=tmp_path / "flaky"))
    assert ok.status == "success"
    assert (tmp_path / "flaky").read_bytes() == b"eventually"
    assert web.hits["/flaky"] == 3

    missing = run_doc(template.format(url=web.url("/missing"), dest=tmp_path / "missing"))
    assert missing.status == "failed"
    assert "HTTP status 404" in steps(missing)["Fetch"].failure_message
    assert web.hits["/missing"] == 1  # a 404 is final
    assert not (tmp_path / "missing").exists()

    down = run_doc(template.format(url=web.url("/down"), dest=tmp_path / "down"))
    assert down.status == "failed"
    assert "HTTP status 503" in steps(down)["Fetch"].failure_message
    assert f"after {web_download.ATTEMPTS} attempts" in steps(down)["Fetch"].failure_message
    assert web.hits["/down"] == web_download.ATTEMPTS
    assert leftovers(tmp_path) == []


def test_connection_refused_fails(run_doc: RunDoc, web: WebServer, tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    execution = run_doc(f"""
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Fetch
                action: WebDownload
                inputs:
                  - source: http://127.0.0.1:{port}/x
                    destination: {tmp_path}/x
    """)
    assert execution.status == "failed"
    assert "after 5 attempts" in steps(execution)["Fetch"].failure_message
    assert not (tmp_path / "x").exists()


def test_first_failing_element_stops_the_step(run_doc: RunDoc, web: WebServer, tmp_path: Path) -> None:
    web.files["/one"] = b"1"
    web.files["/three"] = b"3"
    execution = run_doc(f"""
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Fetch
                action: WebDownload
                inputs:
                  - {{source: '{web.url('/one')}', destination: '{tmp_path}/one'}}
                  - {{source: '{web.url('/two')}', destination: '{tmp_path}/two'}}
                  - {{source: '{web.url('/three')}', destination: '{tmp_path}/three'}}
    """)
    assert execution.status == "failed"
    assert (tmp_path / "one").read_bytes() == b"1"  # earlier elements are not rolled back
    assert not (tmp_path / "three").exists()


def test_folder_destination_rules(run_doc: RunDoc, web: WebServer, tmp_path: Path) -> None:
    web.files["/"] = b"index"
    (tmp_path / "dir").mkdir()
    template = """
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Fetch
                action: WebDownload
                inputs:
                  - {{source: '{url}', destination: '{dest}'}}
    """
    is_folder = run_doc(template.format(url=web.url("/"), dest=tmp_path / "dir"))
    assert "is a folder" in steps(is_folder)["Fetch"].failure_message
    no_name = run_doc(template.format(url=web.url("/"), dest=f"{tmp_path}/dir/"))
    assert "names no file" in steps(no_name)["Fetch"].failure_message
    assert list((tmp_path / "dir").iterdir()) == []


@pytest.mark.parametrize(("item", "message"), [
    ("{source: 'ftp://example.invalid/x', destination: /tmp/x}", "http:// or https://"),
    ("{source: 'http://127.0.0.1/x', destination: /tmp/x, algorithm: CRC32, checksum: ab}", "must be one of"),
    ("{source: 'http://127.0.0.1/x', destination: /tmp/x, checksum: ab}", "together"),
    ("{source: 'http://127.0.0.1/x', destination: /tmp/x, maxRetries: 3}", "unknown input"),
    ("{source: 'http://127.0.0.1/x'}", "missing required input"),
])
def test_invalid_inputs_are_rejected_before_running(run_doc: RunDoc, item: str, message: str) -> None:
    with pytest.raises(DocumentInvalid, match=message):
        run_doc(f"""
            schemaVersion: 1.0
            phases:
              - name: build
                steps:
                  - name: Fetch
                    action: WebDownload
                    inputs:
                      - {item}
        """)


def test_truncated_download_is_retried_then_fails(run_doc: RunDoc, web: WebServer, tmp_path: Path) -> None:
    web.files["/short"] = b"half"
    web.truncated.add("/short")
    execution = run_doc(f"""
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Fetch
                action: WebDownload
                inputs:
                  - {{source: '{web.url('/short')}', destination: '{tmp_path}/short'}}
    """)
    assert execution.status == "failed"
    assert "download interrupted" in steps(execution)["Fetch"].failure_message
    assert web.hits["/short"] == web_download.ATTEMPTS
    assert not (tmp_path / "short").exists()
    assert leftovers(tmp_path) == []


def test_https_certificate_checks(run_doc: RunDoc, tls_web: WebServer, tmp_path: Path) -> None:
    tls_web.files["/secure"] = b"over tls"
    template = """
        schemaVersion: 1.0
        phases:
          - name: build
            steps:
              - name: Fetch
                action: WebDownload
                inputs:
                  - {{source: '{url}', destination: '{dest}', ignoreCertificateErrors: {ignore}}}
    """
    url = tls_web.url("/secure")
    refused = run_doc(template.format(url=url, dest=tmp_path / "refused", ignore="false"))
    assert refused.status == "failed"
    assert "TLS error" in steps(refused)["Fetch"].failure_message
    assert "/secure" not in tls_web.hits  # the handshake failed: no request was made
    assert not (tmp_path / "refused").exists()
    accepted = run_doc(template.format(url=url, dest=tmp_path / "accepted", ignore="true"))
    assert accepted.status == "success"
    assert (tmp_path / "accepted").read_bytes() == b"over tls"
