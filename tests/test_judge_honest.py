"""Honest judge scores: a judge that answers off-format for some pairs, and fails for good on others, through
`mlift judge` over HTTP. The judge is a small local OpenAI-compatible server that decides by a rule on the content
(a stand-in for a hosted judge API, which cannot run here): each response carries a quality mark, the judge picks
the position whose response has the higher mark, answers off-format for pair ids starting with `off`, refuses (HTTP
400, a final error) ids starting with `fail`, and always picks the first position for ids starting with `bias`. So
the expected scores are known without mlift: a swapped order, or an unreadable verdict counted as a tie, fails.
Asked with a JSON schema (`response_format`, as structured-output servers take it), it answers {"verdict": X}, except
for `bias` ids, which answer in text as a server that ignores the schema would (the text parser's fallback)."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from servers import free_port

from mlift.cli import main as mlift

MARK = re.compile(r"<<q=(\d+) id=([\w-]+)>>")


class RuleJudge(BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    bodies: list[dict] = []  # every request received, for the tests to check what was sent

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.bodies.append(body)
        prompt = body["messages"][-1]["content"]
        (q_first, pid), (q_second, _) = MARK.findall(prompt)  # in the order shown: Response A, then Response B
        if pid.startswith("fail"):
            return self._send(400, {"error": {"message": "rejected by policy", "type": "invalid_request_error"}})
        if pid.startswith("off"):
            text = "Both responses have their merits."
        elif pid.startswith("bias"):
            text = "[[A]]"
        else:
            text = "[[A]]" if int(q_first) > int(q_second) else "[[B]]"
            if body.get("response_format", {}).get("type") == "json_schema":
                text = json.dumps({"verdict": text[2]})
        self._send(200, {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": text}}],
                         "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}})

    def _send(self, status: int, obj: dict) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def rule_judge():
    RuleJudge.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), RuleJudge)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()
    server.server_close()


# (id, lang, quality of model A's answer, quality of the reference's)
PAIRS = ([(f"f{i}", "fra_Latn", 9, 1) for i in range(6)] + [("f6", "fra_Latn", 2, 8), ("f7", "fra_Latn", 3, 7),
                                                           ("off-f8", "fra_Latn", 9, 1), ("fail-f9", "fra_Latn", 9, 1)]
         + [(f"d{i}", "deu_Latn", 5, 4) for i in range(2)] + [(f"d{i}", "deu_Latn", 1, 6) for i in range(2, 6)]
         + [(f"bias-s{i}", "spa_Latn", 1 + i, 9 - i) for i in range(4)])


def expected(lang: str) -> tuple[float, int]:
    """(score %, excluded pairs), from the rule alone: A wins where its mark is higher; `bias` pairs are ties."""
    points = [0.5 if i.startswith("bias") else float(qa > qb) for i, lg, qa, qb in PAIRS
              if lg == lang and not i.startswith(("off", "fail"))]
    excluded = sum(1 for i, lg, *_ in PAIRS if lg == lang and i.startswith(("off", "fail")))
    return 100 * sum(points) / len(points), excluded


def _setup(tmp_path: Path, url: str, **extra) -> Path:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for path, side in ((a, 2), (b, 3)):
        path.write_text("".join(json.dumps({"id": pid, "lang": lang, "instruction": f"Question {pid}",
                                            "response": f"<<q={p[side]} id={pid}>> answer"}) + "\n"
                                for p in PAIRS for pid, lang in [p[:2]]))
    recipe = tmp_path / "judge.yaml"
    recipe.write_text(yaml.safe_dump({
        "output_dir": str(tmp_path / "out"), "model_a": {"path": str(a), "name": "multi"},
        "model_b": {"path": str(b), "name": "mono"},
        "judge": {"backend": "openai", "model": "rule-judge", "base_url": url, "api_key_env": "MLIFT_TEST_KEY",
                  "max_retries": 0, "timeout_s": 20, "concurrency": 4}, **extra}))
    return recipe


def test_off_format_and_failed_verdicts_are_excluded_counted_and_fail_the_job(tmp_path, rule_judge, monkeypatch,
                                                                              capsys):
    monkeypatch.setenv("MLIFT_TEST_KEY", "not-a-secret")
    recipe = _setup(tmp_path, rule_judge, max_excluded_rate=0.25)
    assert mlift(["judge", str(recipe), "--no-progress"]) == 0
    console = capsys.readouterr().out
    scores = json.loads((tmp_path / "out" / "scores.json").read_text())["scores"]
    for lang in ("fra_Latn", "deu_Latn", "spa_Latn"):
        pct, excluded = expected(lang)
        assert scores[lang]["score_pct"] == pytest.approx(pct, abs=0.01), lang
        assert scores[lang]["unparsed"] + scores[lang]["failed"] == excluded, lang
    assert scores["fra_Latn"]["score_pct"] == 75.0  # 70.0 if the two unreadable pairs were ties
    assert (scores["fra_Latn"]["unparsed"], scores["fra_Latn"]["failed"], scores["fra_Latn"]["n"]) == (1, 1, 8)
    assert scores["spa_Latn"]["same_position"] == scores["spa_Latn"]["same_first"] == 4  # position bias, per language
    assert scores["fra_Latn"]["same_position"] == 0
    assert "excluded=2/10 (20.0%: unparsed 1, failed 1)" in console
    assert "same position in both orders 4 (100%; first 4, second 0)" in console

    assert mlift(["judge-report", f"multi@0={tmp_path / 'out'}", "--out", str(tmp_path / "report")]) == 0
    table = (tmp_path / "report" / "judge_table.md").read_text()
    row = next(line for line in table.splitlines()[table.splitlines().index("## What the scores leave out"):]
               if line.startswith("| multi |"))
    assert row.split(" | ")[1:4] == ["0/6 (0%) · 0/6 (0%)", "2/10 (20%) · 0/8 (0%)", "0/4 (0%) · 4/4 (100%)"]

    # the recipe's default limit (5%): the job fails, naming the language and the rate
    recipe.write_text(recipe.read_text().replace("max_excluded_rate: 0.25\n", ""))
    assert mlift(["judge", str(recipe), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "fra_Latn: 2 of 10 pairs (20.0%)" in err and "max_excluded_rate 5%" in err
    assert "deu_Latn" not in err and "spa_Latn" not in err


def test_structured_verdicts_are_read_as_json_with_the_text_parser_as_fallback(tmp_path, rule_judge, monkeypatch,
                                                                                capsys):
    """With `structured` (the default) every request carries the verdict schema and the JSON answers give the same
    scores as the text answers of `structured: false`, which sends no response_format; each verdict's path is
    counted per language (two verdicts per pair; a failed request or an off-format answer is "none")."""
    from mlift.judge.pairwise import VERDICT_SCHEMA, judge_prompts
    from mlift.languages import get_language
    from mlift.llm import GenParams, OpenAILLMConfig, Request, make_llm
    from mlift.llm.cache import RequestCache, request_key

    monkeypatch.setenv("MLIFT_TEST_KEY", "not-a-secret")
    tables = {}
    for structured in (True, False):
        RuleJudge.bodies.clear()
        (tmp_path / str(structured)).mkdir()
        recipe = _setup(tmp_path / str(structured), rule_judge, max_excluded_rate=0.25, structured=structured)
        assert mlift(["judge", str(recipe), "--no-progress"]) == 0
        console = capsys.readouterr().out
        formats = [b.get("response_format") for b in RuleJudge.bodies]
        assert len(formats) == 2 * len(PAIRS)
        if structured:
            assert all(f is not None and f["type"] == "json_schema" and f["json_schema"]["schema"] == VERDICT_SCHEMA
                       for f in formats)
        else:
            assert formats == [None] * len(formats)
        tables[structured] = json.loads((tmp_path / str(structured) / "out" / "scores.json").read_text())["scores"]
        paths = {lang: tables[structured][lang].pop("verdict_paths") for lang in tables[structured]}
        fra, deu, spa = ({"json": 16, "text": 0, "none": 4}, {"json": 12, "text": 0, "none": 0},
                         {"json": 0, "text": 8, "none": 0})  # spa: the `bias` answers ignore the schema
        if not structured:
            fra, deu = {"json": 0, "text": 16, "none": 4}, {"json": 0, "text": 12, "none": 0}
        assert (paths["fra_Latn"], paths["deu_Latn"], paths["spa_Latn"]) == (fra, deu, spa)
        assert paths["all"] == {k: fra[k] + deu[k] + spa[k] for k in fra}
        assert f"verdicts read as json/text/none {fra['json']}/{fra['text']}/{fra['none']}" in console
        for lang in ("fra_Latn", "deu_Latn", "spa_Latn"):
            assert tables[structured][lang]["score_pct"] == pytest.approx(expected(lang)[0], abs=0.01), lang
    assert tables[True] == tables[False]

    # The cache keys of text requests are those of before structured output existed (the params without a
    # json_schema field), so a structured: false judge reuses its earlier answers; the structured ones differ.
    keys = {structured: RequestCache(tmp_path / str(structured) / "out" / "llm_cache.sqlite").keys()
            for structured in (True, False)}
    ident = make_llm(OpenAILLMConfig(backend="openai", model="rule-judge"), None).backend.identity()
    old_params = GenParams(seed=0).model_dump(mode="json", exclude={"json_schema"})
    text_keys = {request_key(ident, old_params, Request(messages=[{"role": "user", "content": prompt}]).to_json())
                 for pid, lang, *_ in PAIRS if not pid.startswith("fail")
                 for prompt in judge_prompts("judge_pairwise", f"Question {pid}", *_answers(pid, lang),
                                             get_language(lang).name)}
    assert len(text_keys) == 2 * (len(PAIRS) - 1) and text_keys <= keys[False] and not text_keys & keys[True]


def _answers(pid: str, lang: str) -> tuple[str, str]:
    _, _, qa, qb = next(p for p in PAIRS if p[:2] == (pid, lang))
    return f"<<q={qa} id={pid}>> answer", f"<<q={qb} id={pid}>> answer"
