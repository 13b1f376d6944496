"""The chat's client of `qa serve` (`--backend URL`), against a stand-in HTTP service: no model, no cluster."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpers import free_port

from qa import Config
from qa.surfaces.backend import BackendError, RemoteAssistant
from qa.index.library import Library
from qa.surfaces.chat import turn_of
from qa.index.store import IndexEmpty
from qa.query import QuestionError
from qa.query import Filter, Query
from qa.schema import Answer, ArticleAnswer, Citation, Offsets, Source
from qa.index.store import IndexProblem

ASKED = Query("Where?", 4, "Where now?", Filter.of("2026-11-01", None, "b.example"))
ANSWER = Answer(question="Where?", text="Bakhmut", found=True, confidence=0.84, source=Source("a.txt", "A", "a.txt"),
                span=Offsets(3, 10), passage="Up Bakhmut way", in_passage=Offsets(3, 10), query=ASKED,
                other_articles=(ArticleAnswer("Soledar", 0.7, "2026-11-03", (
                    Citation(Source("b.html", "B", "https://b.example/b", "https://b.example/b", "2026-11-03",
                                    "b.example"), Offsets(5, 12), 7, 0.7),)),))


@pytest.fixture
def stand_in():
    """An HTTP service whose next reply (status, JSON body) the test sets; it records what it was sent."""
    state = {"reply": (200, ANSWER.to_dict()), "sent": []}

    class Handler(BaseHTTPRequestHandler):
        def _reply(self):
            length = int(self.headers.get("content-length") or 0)
            state["sent"].append((self.command, self.path, json.loads(self.rfile.read(length) or b"null")))
            status, body = state["reply"]
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _reply

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()


def test_answers_come_back_as_typed_answers(stand_in, tmp_path):
    url, state = stand_in
    remote = RemoteAssistant(url, Config().with_(index_dir=tmp_path / "index"))
    answer = remote.answer("Where?", k=4, query="Where now?", since="2026-11-01", site="https://www.b.example/x")
    assert answer == ANSWER and isinstance(answer.other_articles[0].articles[0], Citation)  # typed, not dicts
    assert answer.query == ASKED  # the query as the surface built it, echoed back
    assert state["sent"][-1] == ("POST", "/answer", {"question": "Where?", "k": 4, "context": "Where now?",
                                                     "since": "2026-11-01", "until": None, "sites": ["b.example"],
                                                     "latest": False})


def test_the_remote_assistant_has_no_models_and_writes_no_index():
    """It answers through the service only; the chat keeps the index folder with a `Library`."""
    from qa.answering.protocol import Answering

    assert issubclass(RemoteAssistant, Answering)
    assert not any(hasattr(RemoteAssistant, name) for name in ("add", "remove", "library", "reader", "embedder"))


@pytest.mark.parametrize("kind,error", [("question", QuestionError), ("empty", IndexEmpty), ("index", IndexProblem)])
def test_service_errors_become_the_same_errors_as_in_process(stand_in, tmp_path, kind, error):
    url, state = stand_in
    state["reply"] = (400 if kind == "question" else 503, {"error": f"the {kind} message", "kind": kind})
    with pytest.raises(error, match=f"the {kind} message"):
        RemoteAssistant(url, Config().with_(index_dir=tmp_path / "index")).answer("Where?")


def test_an_unreachable_or_failing_service_is_one_clear_chat_line(stand_in, tmp_path):
    url, state = stand_in
    state["reply"] = (502, {"detail": "bad gateway"})
    with pytest.raises(BackendError, match="answered HTTP 502"):
        RemoteAssistant(url, Config().with_(index_dir=tmp_path / "index")).answer("Where?")
    gone = RemoteAssistant(f"http://127.0.0.1:{free_port()}", Config().with_(index_dir=tmp_path / "index"))
    with pytest.raises(BackendError, match="cannot be reached"):
        gone.warm_up()
    reply, turn = turn_of(gone, Library(gone.config), "Where did the Wagner group advance?", [])
    assert reply.startswith("⚠️ the answering service at http://127.0.0.1:") and turn is None
