"""Stock etcdctl (Debian's etcd-client, 3.4) against a 3-server KubeKV cluster.

Run:  python -m pytest tests/service/test_etcdctl.py -q      (needs etcdctl: apt-get install etcd-client)

Without etcdctl the tests are skipped, saying what to install; under CI (CI set) they fail instead,
since .ci/run installs it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid

import pytest

from kubekv.cluster import LocalCluster

pytestmark = pytest.mark.timeout(300)


def _need_etcdctl() -> str:
    path = shutil.which("etcdctl")
    if path is None:
        msg = "etcdctl not found: install Debian's etcd-client (apt-get install etcd-client)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    _need_etcdctl()
    c = LocalCluster(3, str(tmp_path_factory.mktemp("etcd") / "data"))
    c.start()
    try:
        c.wait_for_leader()
        yield c
    finally:
        c.stop()


def etcdctl(cluster: LocalCluster, *args: str, stdin: str | None = None, endpoints: list[str] | None = None,
            check: bool = True) -> str:
    eps = ",".join(endpoints or cluster.endpoints)
    r = subprocess.run(["etcdctl", f"--endpoints={eps}", "--command-timeout=10s", *args], input=stdin,
                       capture_output=True, text=True, timeout=60, env=dict(os.environ, ETCDCTL_API="3"))
    if check:
        assert r.returncode == 0, f"etcdctl {' '.join(args)}: exit {r.returncode}\n{r.stderr}"
    return r.stdout if check else r.stdout + r.stderr


def TestEtcdctlPutGetDelete(cluster: LocalCluster) -> None:
    assert etcdctl(cluster, "put", "/a/1", "one") == "OK\n"
    assert etcdctl(cluster, "put", "/a/2", "two") == "OK\n"
    assert etcdctl(cluster, "put", "/b", "three") == "OK\n"
    assert etcdctl(cluster, "get", "/a/1") == "/a/1\none\n"
    assert etcdctl(cluster, "get", "--prefix", "/a/") == "/a/1\none\n/a/2\ntwo\n"
    assert etcdctl(cluster, "get", "--prefix", "/a/", "--limit=1") == "/a/1\none\n"
    assert etcdctl(cluster, "get", "--prefix", "/a/", "--keys-only") == "/a/1\n\n/a/2\n\n"
    assert etcdctl(cluster, "get", "/a/", "/a/3") == "/a/1\none\n/a/2\ntwo\n"   # a range
    # Every member answers, leader or not (followers forward writes and confirm reads).
    for ep in cluster.endpoints:
        assert etcdctl(cluster, "get", "/b", endpoints=[ep]) == "/b\nthree\n"
        assert etcdctl(cluster, "get", "/b", "--consistency=s", endpoints=[ep]) == "/b\nthree\n"
    out = etcdctl(cluster, "get", "/a/1", "-w", "json")
    rev = int(re.search(r'"mod_revision":(\d+)', out).group(1))
    assert etcdctl(cluster, "put", "/a/1", "uno") == "OK\n"
    assert etcdctl(cluster, "get", "/a/1", f"--rev={rev}") == "/a/1\none\n"
    assert etcdctl(cluster, "get", "/a/1") == "/a/1\nuno\n"
    assert etcdctl(cluster, "del", "/a/1") == "1\n"
    assert etcdctl(cluster, "get", "/a/1") == ""
    assert etcdctl(cluster, "del", "--prefix", "/a/") == "1\n"


def TestEtcdctlTxn(cluster: LocalCluster) -> None:
    t = f"/t{uuid.uuid4().hex[:8]}"   # the cluster is the module's: a repeated run needs new keys
    etcdctl(cluster, "put", f"{t}/k", "v1")
    out = etcdctl(cluster, "txn", stdin=f'value("{t}/k") = "v1"\n\nput {t}/k v2\n\nget {t}/k\n\n')
    assert out.startswith("SUCCESS\n") and "OK" in out
    out = etcdctl(cluster, "txn", stdin=f'value("{t}/k") = "v1"\n\nput {t}/k v3\n\nget {t}/k\n\n')
    assert out == f"FAILURE\n\n{t}/k\nv2\n"
    # Kubernetes' create: mod_revision == 0, then put.
    out = etcdctl(cluster, "txn", stdin=f'mod("{t}/new") = "0"\n\nput {t}/new created\n\n\n')
    assert out.startswith("SUCCESS")
    assert etcdctl(cluster, "get", f"{t}/new") == f"{t}/new\ncreated\n"


def TestEtcdctlWatchSeesLaterPutsAndDeletes(cluster: LocalCluster) -> None:
    w = subprocess.Popen(["etcdctl", f"--endpoints={cluster.endpoints[1]}", "watch", "--prefix", "/w/"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, ETCDCTL_API="3"))
    try:
        time.sleep(1.0)   # the watch must exist before the writes, or it would not see them
        etcdctl(cluster, "put", "/w/x", "1")
        etcdctl(cluster, "put", "/w/y", "2")
        etcdctl(cluster, "del", "/w/x")
        lines = [w.stdout.readline() for _ in range(8)]
    finally:
        w.terminate()
        w.wait(10)
    assert lines == ["PUT\n", "/w/x\n", "1\n", "PUT\n", "/w/y\n", "2\n", "DELETE\n", "/w/x\n"]


def TestEtcdctlWatchFromPastRevision(cluster: LocalCluster) -> None:
    etcdctl(cluster, "put", "/h/k", "a")
    rev = int(re.search(r'"revision":(\d+)', etcdctl(cluster, "get", "/h/k", "-w", "json")).group(1))
    etcdctl(cluster, "put", "/h/k", "b")
    w = subprocess.Popen(["etcdctl", f"--endpoints={cluster.endpoints[0]}", "watch", "/h/k", f"--rev={rev}"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, ETCDCTL_API="3"))
    try:
        lines = [w.stdout.readline() for _ in range(6)]
    finally:
        w.terminate()
        w.wait(10)
    assert lines == ["PUT\n", "/h/k\n", "a\n", "PUT\n", "/h/k\n", "b\n"]


def TestEtcdctlLeases(cluster: LocalCluster) -> None:
    out = etcdctl(cluster, "lease", "grant", "60")
    m = re.match(r"lease ([0-9a-f]+) granted with TTL\((\d+)s\)", out)
    assert m and m.group(2) == "60", out
    lid = m.group(1)
    etcdctl(cluster, "put", "--lease", lid, "/l/k", "v")
    out = etcdctl(cluster, "lease", "timetolive", lid, "--keys")
    assert f"lease {lid} granted with TTL(60s)" in out and "/l/k" in out, out
    out = etcdctl(cluster, "lease", "keep-alive", "--once", lid)
    assert f"lease {lid} keepalived with TTL(60)" in out, out
    assert lid in etcdctl(cluster, "lease", "list")
    assert etcdctl(cluster, "lease", "revoke", lid) == f"lease {lid} revoked\n"
    assert etcdctl(cluster, "get", "/l/k") == ""


def TestEtcdctlShortLeaseExpiresAndDeletesItsKeys(cluster: LocalCluster) -> None:
    lid = re.match(r"lease ([0-9a-f]+)", etcdctl(cluster, "lease", "grant", "5")).group(1)
    etcdctl(cluster, "put", "--lease", lid, "/e/k", "v")
    deadline = time.monotonic() + 30
    while etcdctl(cluster, "get", "/e/k") != "":
        assert time.monotonic() < deadline, "a 5 s lease still holds its key after 30 s"
        time.sleep(0.5)


def TestEtcdctlMemberListEndpointStatusHealth(cluster: LocalCluster) -> None:
    members = etcdctl(cluster, "member", "list").strip().splitlines()
    assert len(members) == 3 and all("started" in m for m in members), members
    for ep in cluster.endpoints:
        assert any(ep in m for m in members)
    status = etcdctl(cluster, "endpoint", "status").strip().splitlines()
    assert len(status) == 3
    assert sum(", true," in line for line in status) == 1, status   # IS LEADER: exactly one
    health = etcdctl(cluster, "endpoint", "health", check=False)
    assert health.count("is healthy") == 3, health


def TestEtcdctlCompactionSortAndCount(cluster: LocalCluster) -> None:
    for k, v in (("/s/b", "1"), ("/s/a", "2"), ("/s/c", "3")):
        etcdctl(cluster, "put", k, v)
    assert etcdctl(cluster, "get", "--prefix", "/s/", "--keys-only", "--order=DESCEND",
                   "--sort-by=MODIFY") == "/s/c\n\n/s/a\n\n/s/b\n\n"
    assert '"Count" : 3' in etcdctl(cluster, "get", "--prefix", "/s/", "--limit=1", "-w", "fields")
    old = int(re.search(r'"revision":(\d+)', etcdctl(cluster, "get", "/s/a", "-w", "json")).group(1))
    etcdctl(cluster, "put", "/s/a", "4")
    etcdctl(cluster, "put", "/s/a", "5")
    now = int(re.search(r'"revision":(\d+)', etcdctl(cluster, "get", "/s/a", "-w", "json")).group(1))
    assert etcdctl(cluster, "compaction", str(now)) == f"compacted revision {now}\n"
    out = etcdctl(cluster, "get", "/s/a", f"--rev={old}", check=False)
    assert "required revision has been compacted" in out, out
    w = subprocess.run(["etcdctl", f"--endpoints={cluster.endpoints[2]}", "watch", "/s/a", f"--rev={old}"],
                       capture_output=True, text=True, timeout=30, env=dict(os.environ, ETCDCTL_API="3"))
    assert "compacted" in w.stdout + w.stderr, w.stdout + w.stderr
