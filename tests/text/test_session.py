"""The Text panel's view-model, headless (no Qt) with real jobs on tiny models: chat flow,
edit/regenerate/continue/delete, presets, autosave, export, the context meter and unloading."""

import json
import threading

import pytest

from studio.core.jobs import JobState
from studio.core.sessions.conversations import (
    BUILTIN_PRESETS,
    Conversation,
    ConversationStore,
    Message,
    PresetStore,
    describe_stats,
)
from studio.core.sessions.inbox import EventInbox
from studio.core.sessions.text import TextSession
from studio.plugin_api import ParamError


@pytest.fixture
def session(context, tiny_models):
    s = TextSession(context)
    s.set_model(str(tiny_models["qwen2"]))
    s.set_values({"max_new_tokens": 6, "seed": 11, "temperature": 0.9})
    # Events reach the session on this thread, in order, as the GUI bridge delivers them.
    s.inbox = EventInbox(context.engine, s)
    yield s
    s.inbox.close()


def _wait(session):
    """Deliver events until the last job and the work it started (the token count) are done."""
    job = session.last_job
    assert session.inbox.run_until(job, 60) and session.inbox.settle(60)
    assert not session.busy
    return job


def test_send_streams_reply_and_records_stats(session):
    streamed, changes = [], []
    session.streamed.connect(streamed.append)
    session.changed.connect(changes.append)
    job = session.send("Hello there")
    assert session.busy
    _wait(session)
    messages = session.conversation.messages
    assert [m.role for m in messages] == ["user", "assistant"]
    reply = messages[1]
    assert reply.content == job.result.artifacts[0].text
    assert "".join(streamed) == reply.content
    assert {"job", "conversation", "loaded", "context"} <= set(changes)
    for key in ("tokens", "tokens_per_second", "time_to_first_token", "stop_reason", "seed"):
        assert key in reply.stats
    assert reply.stats["seed"] == 11 and "streaming" not in reply.stats
    assert "tokens" in describe_stats(reply.stats) and "seed 11" in describe_stats(reply.stats)
    used, maximum = session.context_usage()
    assert maximum == 128 and 0 < used <= maximum and session.context_exact  # counted by the model


def test_random_seed_is_recorded(session):
    session.set_value("seed", -1)
    session.send("Hi")
    job = _wait(session)
    seed = session.conversation.messages[-1].stats["seed"]
    assert isinstance(seed, int) and seed == job.result.info["seed"]


def test_regenerate_replaces_last_reply_and_same_seed_same_text(session):
    session.send("Hello")
    _wait(session)
    first = session.conversation.messages[-1].content
    session.regenerate()
    _wait(session)
    assert len(session.conversation.messages) == 2
    assert session.conversation.messages[-1].content == first  # same seed -> same text
    session.set_value("seed", 12)
    session.regenerate()
    _wait(session)
    assert len(session.conversation.messages) == 2
    assert session.conversation.messages[-1].stats["seed"] == 12


def test_continue_extends_the_last_reply(session):
    session.send("Hello")
    _wait(session)
    before = session.conversation.messages[-1].content
    session.continue_()
    job = _wait(session)
    after = session.conversation.messages[-1]
    assert len(session.conversation.messages) == 2
    assert after.content.startswith(before) and len(after.content) >= len(before)
    assert job.request["continue_last"] is True and after.stats.get("continued")


def test_edit_resumes_from_the_edited_message_and_delete(session):
    session.send("First question")
    _wait(session)
    session.send("Second question")
    _wait(session)
    assert len(session.conversation.messages) == 4
    job = session.edit(0, "Edited question")
    _wait(session)
    messages = session.conversation.messages
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[0].content == "Edited question"
    assert job.request["messages"] == [{"role": "user", "content": "Edited question"}]
    # Editing a reply continues it from the edited text.
    session.edit(1, "Well,")
    job = _wait(session)
    assert job.request["continue_last"] is True
    assert session.conversation.messages[1].content.startswith("Well,")
    session.delete(1)
    assert [m.role for m in session.conversation.messages] == ["user"]
    with pytest.raises(ParamError):
        session.delete(5)


def test_stop_keeps_partial_reply(session, tiny_models):
    session.set_model(str(tiny_models["gpt2"]))  # no end-of-text token: it would run to the limit
    session.set_value("max_new_tokens", 400)
    session.streamed.connect(lambda text: session.stop())  # stop once text is on screen
    session.send("Tell me a story")
    job = _wait(session)
    assert job.state is JobState.INTERRUPTED
    reply = session.conversation.messages[-1]
    assert reply.content and reply.stats["stop_reason"] == "stopped" and reply.stats["tokens"] < 400


def test_failed_load_is_reported_and_empty_reply_removed(session, tmp_path):
    session.set_model(str(tmp_path / "no-such-model"))
    session.send("Hello")
    job = _wait(session)
    assert job.state is JobState.FAILED
    assert "not found" in session.notice.lower()
    assert [m.role for m in session.conversation.messages] == ["user"]


def test_trimming_notice_is_visible(session, tiny_models):
    session.set_model(str(tiny_models["llama"]))
    for i in range(10):
        session.conversation.messages += [Message("user", f"Question {i}: the quick brown fox jumps over it."),
                                          Message("assistant", f"Answer {i}: hello there, how are you?")]
    session.send("And now?")
    _wait(session)
    assert "oldest message" in session.notice
    assert "oldest message" in session.conversation.messages[-1].stats["trimmed"]
    assert len(session.conversation.messages) == 22  # trimming only affects the prompt, not the record


def test_notebook_mode_continues_the_document(session):
    session.set_mode("notebook")
    session.conversation.document = "Once upon a time"
    session.send("")
    _wait(session)
    doc = session.conversation.document
    assert doc.startswith("Once upon a time") and len(session.conversation.document_stats) == 1
    assert session.last_reply() == doc[len("Once upon a time"):].strip()
    session.regenerate()
    _wait(session)
    assert session.conversation.document == doc  # same seed: the same continuation replaces the old one
    assert len(session.conversation.document_stats) == 1
    session.continue_()
    _wait(session)
    assert session.conversation.document.startswith(doc) and len(session.conversation.document_stats) == 2


def test_autosave_restore_and_listing(session, studio_home):
    session.send("Remember me")
    _wait(session)
    path = session.store.path(session.conversation.id)
    assert path.exists() and path.parent == studio_home / "conversations"
    saved = json.loads(path.read_text())
    assert saved["messages"][0]["content"] == "Remember me"
    assert saved["messages"][1]["stats"]["seed"] == 11
    conv_id = session.conversation.id
    session.new_conversation()
    assert session.conversation.messages == []
    listed = session.conversations()
    assert [c.id for c in listed] == [conv_id] and listed[0].title == "Remember me"
    restored = session.open_conversation(conv_id)
    assert [m.content for m in restored.messages] == [m["content"] for m in saved["messages"]]
    assert restored.messages[1].stats["seed"] == 11
    session.delete_conversation(conv_id)
    assert session.conversations() == []


def test_store_skips_broken_files_and_writes_atomically(tmp_path):
    store = ConversationStore(tmp_path)
    conv = Conversation(messages=[Message("user", "hi")])
    store.save(conv)
    (tmp_path / "broken.json").write_text("{not json")
    assert [c.id for c in store.list()] == [conv.id]
    assert not list(tmp_path.glob("*.tmp"))
    with pytest.raises(ParamError):
        store.load("nope")


def test_export_markdown_and_json(session, tmp_path):
    session.conversation.system = "Be brief."
    session.send("What is a fox?")
    _wait(session)
    md = session.export_markdown(tmp_path / "chat.md").read_text()
    assert md.startswith("# What is a fox?")
    assert "## System\n\nBe brief." in md and "## User\n\nWhat is a fox?" in md and "## Assistant" in md
    assert "seed 11" in md
    data = json.loads(session.export_json(tmp_path / "chat.json").read_text())
    assert data["format"] == "studio-conversation-1" and data["system"] == "Be brief."
    assert [m["role"] for m in data["messages"]] == ["user", "assistant"]
    assert Conversation.from_dict(data).messages[1].content == session.conversation.messages[1].content


def test_presets_builtin_and_user(session, studio_home):
    assert PresetStore().names()[:3] == ["Deterministic", "Balanced", "Creative"]
    session.apply_preset("Deterministic")
    assert session.values["temperature"] == 0.0
    session.set_values({"temperature": 0.33, "top_k": 7})
    session.save_preset("Mine")
    assert json.loads((studio_home / "text_presets.json").read_text())["Mine"]["top_k"] == 7
    fresh = PresetStore()
    assert "Mine" in fresh.names() and fresh.get("Mine")["temperature"] == 0.33
    session.apply_preset("Creative")
    assert session.values["temperature"] == BUILTIN_PRESETS["Creative"]["temperature"]
    session.apply_preset("Mine")
    assert session.values["top_k"] == 7
    with pytest.raises(ParamError):
        session.save_preset("Balanced")
    with pytest.raises(ParamError):
        fresh.delete("Creative")
    fresh.delete("Mine")
    assert "Mine" not in PresetStore().names()


def test_bad_values_raise_before_anything_changes(session):
    session.set_value("temperature", -1)
    with pytest.raises(ParamError, match="Temperature"):
        session.send("Hello")
    assert session.conversation.messages == []  # nothing was added
    with pytest.raises(ParamError):
        session.send("   ")


def test_load_model_job(session, tiny_models):
    job = session.load_model()
    assert _wait(session) is job and job.state is JobState.DONE
    assert session.loaded_model == str(tiny_models["qwen2"]) and session.is_loaded
    assert session.context_usage()[1] == 128
    unload = session.unload_model()
    assert session.inbox.run_until(unload, 60) and unload.state is JobState.DONE
    assert session.context.engine.residency.loaded() == [] and not session.is_loaded
    assert session.loaded_model == "" and not session.context_exact  # back to the estimate


def test_model_work_happens_on_the_engine_thread(session):
    """Counting tokens and unloading touch the model only on the worker thread."""
    threads = set()
    session.load_model()
    _wait(session)
    model = session.context.engine.residency.loaded()[0]
    model_class = type(model)
    original_count, original_unload = model_class.count_tokens, model_class.unload

    def count_tokens(self, text):
        threads.add(threading.current_thread().name)
        return original_count(self, text)

    def unload(self):
        threads.add(threading.current_thread().name)
        return original_unload(self)

    model.count_tokens = count_tokens.__get__(model)
    model.unload = unload.__get__(model)
    session.conversation.messages.append(Message("user", "How long is this?"))
    job = session.refresh_context()
    assert job is not None and job.spec.action == "call" and job.spec.interactive
    assert session.inbox.run_until(job, 60) and session.context_exact
    session.unload_model()
    assert session.inbox.settle(60)
    assert threads == {"studio-engine"}


def test_meter_counts_the_rendered_chat(session):
    session.load_model()
    _wait(session)
    session.conversation.system = "Be brief."
    session.conversation.messages += [Message("user", "Hello"), Message("assistant", "Hi there")]
    session.refresh_context()
    assert session.inbox.settle(60)
    model = session.context.engine.residency.loaded()[0]
    rendered = model.render_chat([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"},
                                  {"role": "assistant", "content": "Hi there"}], False)
    assert session.context_usage() == (model.count_tokens(rendered), 128)
    session.set_mode("notebook")
    session.conversation.document = "Once upon a time"
    session.refresh_context()
    assert session.inbox.settle(60)
    assert session.context_usage() == (model.count_tokens("Once upon a time"), 128)
