"""Where kiwipiepy's Korean model is loaded: once, in the CPU pool's forkserver, not in the daemon's process.

Each case runs in a fresh interpreter (the model, once loaded, stays for the life of a
process, and the test process may already hold it): real worker processes (forkserver),
the bundled config.toml, and a real Korean news lead.  It checks what the process and
its workers hold, and that the workers compute what the thread computes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from monitor.config import load_config
from monitor.services.analysis import reads_korean

ROOT = Path(__file__).resolve().parents[2]

# A real lead, and the analyser's Korean path (particles, 병력을, 파병한): f-ko-03 of
# tests/rules_eval/fresh.jsonl (매일경제, 2025-04-30, https://www-t.mk.co.kr/news/politics/11305507).
LEAD = (
    "국가정보원은 북한이 두 차례에 걸쳐 1만5000명의 병력을 러시아에 파병한 정황을 파악했다. "
    "사상자는 4700명이 넘는 것으로 분석된다."
)

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from datetime import UTC, datetime
    from pathlib import Path

    from monitor.config import load_config
    from monitor.core import text
    from monitor.core.models import RawItem
    from monitor.core.policy import PollContext
    from monitor.runtime import make_runtime
    from monitor.services.analysis import Inline, Job, MatchJob, normalise
    from monitor.stages.cpu import CpuPool

    korean, lead, start_at = sys.argv[1] == "1", sys.argv[2], int(sys.argv[3]) or None
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    rt = make_runtime(load_config(Path("config.toml"), env={}))
    max_age = rt.config.alerts.max_age
    ctx = PollContext(source="kbs-world-ko", first_poll=False, first_poll_mode="silent", max_age=max_age)
    raws = [RawItem(guid=f"g{n}", url=f"https://example.org/ko/{n}", title=f"북한 파병 {n}", summary=lead,
                    published=now, language="ko") for n in range(3)]
    doc = normalise([(raws, "ko")], now)[0]
    jobs = [Job(it, doc.ambiguity, ctx) for it in doc.items]
    matches = [MatchJob(ctx, "", "요약", lead, "ko")]
    cpu = CpuPool(2, korean=korean, start_at=start_at)  # 3 entries are far below any threshold
    try:
        pooled = cpu.analyse(rt, jobs, now)
        pooled_matches = cpu.match(rt, matches)
        out = {"here_after_pool": text.korean_loaded(), "started": cpu.started}
        if cpu.started:
            out["in_worker_before_any_korean"] = cpu._executor().submit(text.korean_loaded).result()
        inline = Inline().analyse(rt, jobs, now)
        out["same"] = pooled == inline and pooled_matches == Inline().match(rt, matches)
        out["rules"] = sorted({h.rule for a in pooled for h in a.hits})
        out["here_after_inline"] = text.korean_loaded()
    finally:
        cpu.close()
    print(json.dumps(out))
    """
)


def run_case(korean: bool, start_at: int = 0) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, "1" if korean else "0", LEAD, str(start_at)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.timeout(300)
def test_korean_text_goes_to_the_workers_that_forked_with_the_model() -> None:
    out = run_case(korean=True)
    # Three Korean entries, far below the inline threshold, went to the workers: the
    # model was never loaded in this process, and the workers had it before any Korean
    # text reached them (their forkserver loaded it).
    assert out["started"] is True
    assert out["here_after_pool"] is False
    assert out["in_worker_before_any_korean"] is True
    assert out["same"] is True
    assert "korean-press-nk-russia" in out["rules"]  # type: ignore[operator]
    assert out["here_after_inline"] is True


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("korean", "start_at"), [(False, 0), (True, 256)], ids=["no preload", "run --once"])
def test_a_small_korean_batch_stays_inline_without_the_preload_or_in_a_one_shot_run(
    korean: bool, start_at: int
) -> None:
    # Without the preload, as before; in `run --once` (start_at), because starting the
    # workers for a small batch costs more wall time than loading the model here.
    out = run_case(korean=korean, start_at=start_at)
    assert out["started"] is False
    assert out["here_after_pool"] is True
    assert out["same"] is True
    assert "korean-press-nk-russia" in out["rules"]  # type: ignore[operator]


def test_reads_korean_from_the_config() -> None:
    config = load_config(ROOT / "config.toml", env={})
    assert reads_korean(config)  # Hangul terms and a Korean-only rule
    english = replace(
        config,
        terms={k: tuple(a for a in v if a.isascii()) for k, v in config.terms.items()},
        rules=tuple(
            replace(r, languages=tuple(x for x in r.languages if x != "ko")) for r in config.rules if r.query.isascii()
        ),
        sources=tuple(replace(s, language="en") for s in config.sources),
    )
    assert english.rules and not reads_korean(english)
    assert reads_korean(replace(english, sources=(replace(english.sources[0], language="ko"),)))
