"""Structured ratings: the score stage asks for {"rating": N} through the backend's structured output (openai chat:
`response_format` with a JSON schema) and reads it; the "Rating: N" parser is the fallback, and the stage counts which
path each rating took. The server is a local stand-in (tests/servers.py: LatencyServer) that answers JSON when a
response_format is sent, as structured-output servers do; the client side (mlift's request and parsing) is under
test."""

from __future__ import annotations

import json

import pytest

from mlift.generate.config import ScoreConfig
from mlift.generate.score import RATING_SCHEMA, ScoreStage, json_rating
from mlift.llm import OpenAILLMConfig, make_llm
from mlift.records import Record


def answer(body: dict) -> str:
    text = body["messages"][-1]["content"] if "messages" in body else body["prompt"]
    if "response_format" in body:
        return "not json, Rating: 2" if "broken" in text else json.dumps({"rating": 4})
    return "Rating: 3"


@pytest.fixture(scope="module")
def server():
    from servers import LatencyServer

    srv = LatencyServer(answer=answer)
    yield srv
    srv.stop()


def recs(n: int, broken: bool = False) -> list[Record]:
    return [Record(id=f"r{i}", lang="fra_Latn", fields={"fragment": "Tous les êtres humains naissent libres.",
                                                         "fragment_en": "All human beings are born free and equal.",
                                                         "instruction_en": f"What does article {i} say{' broken' if broken else ''}?"})
            for i in range(n)]


def stage(server, tmp_path, mode: str, **kw) -> ScoreStage:
    llm = OpenAILLMConfig(backend="openai", model="stand-in", base_url=server.url + "/v1")
    cfg = ScoreConfig(judge=llm, mode=mode, min_quality=0.0, min_native_lang=0.0, min_rating=1, **kw)
    return ScoreStage(make_llm(llm, tmp_path, seed=0), cfg, seed=0)


def test_chat_judges_answer_by_json_schema(server, tmp_path):
    server.reset()
    st = stage(server, tmp_path, "chat")
    out = st.process(recs(3))
    assert [o.record.meta["scores"]["rating"] for o in out] == [4.0] * 3
    assert [o.record.meta["scores"]["rating_path"] for o in out] == ["json"] * 3
    fmt = server.bodies[0]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"] == RATING_SCHEMA
    assert st.usage()[st.judge.name]["rating_json"] == 3


def test_an_answer_that_is_not_json_falls_back_to_the_parser(server, tmp_path):
    server.reset()
    st = stage(server, tmp_path, "chat")
    out = st.process(recs(2, broken=True))
    assert [(o.record.meta["scores"]["rating"], o.record.meta["scores"]["rating_path"]) for o in out] == [(2.0, "text")] * 2
    assert st.usage()[st.judge.name]["rating_text"] == 2


def test_completion_mode_and_structured_off_use_the_text_parser(server, tmp_path):
    for mode, kw in (("completion", {}), ("chat", {"structured": False})):
        server.reset()
        out = stage(server, tmp_path / mode / str(kw), mode, **kw).process(recs(2))
        assert all("response_format" not in b for b in server.bodies)
        assert [o.record.meta["scores"]["rating_path"] for o in out] == ["text"] * 2
        assert [o.record.meta["scores"]["rating"] for o in out] == [3.0] * 2


@pytest.mark.parametrize("text,rating", [('{"rating": 5}', 5), ('{"rating": 0}', None), ('{"rating": "4"}', None),
                                         ('{"rating": true}', None), ("Rating: 4", None), ("[4]", None)])
def test_json_rating_reads_only_a_valid_object(text, rating):
    assert json_rating(text) == rating
