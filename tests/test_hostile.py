"""Hostile input: every job field and every server answer, fuzzed.

A job is either accepted (and then sendable) or refused with a JobValidationError naming
the field; a server answer is either parsed or refused with an ApiError. Nothing else
may come out: no other exception, no traceback on the screen. Text we did not write is
shown inert: no escape sequence reaches the terminal, markup stays literal.
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from seedance_tui import cli, providers
from seedance_tui.models import (
    JobSpec,
    JobValidationError,
    Mode,
    Provider,
    Task,
    TaskStatus,
    TaskUpdate,
)
from seedance_tui.providers import ApiError, SubmitAnswer
from seedance_tui.store import Store
from seedance_tui.text import inert, one_line, to_json

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Any code point, lone surrogates included (what argv decoding leaves of invalid UTF-8).
any_char = st.characters(codec=None, categories=None)
hostile_text = st.one_of(
    st.text(any_char, max_size=40),
    st.text(any_char, min_size=990, max_size=1100),
    st.sampled_from(
        [
            "\x1b[31mred\x1b[0m",
            "\x1b]0;pwned\x07",
            "\x9b2J",
            "[bold red]markup[/]",
            "\u202etxt.exe",
            "\x00nul",
            "😀" * 501,
            "a" * 1001,
            "\udcff",
            " ",
            "",
        ]
    ),
)
field_value = st.one_of(st.none(), hostile_text, st.sampled_from(
    ["480p", "720p", "1080p", "4", "8", "12", "5", "10", "16:9", "9:16", "1:1", "landscape",
     "portrait", "4.0", " 8", "08"]
))  # fmt: skip
url = st.one_of(
    hostile_text,
    st.sampled_from(
        [
            "https://example.com/a.png",
            "http://example.com/a.png",
            "data:image/png;base64,AAAA",
            "file:///etc/passwd",
            "https://exa mple.com/x",
            "https://example.com/\x1b[2J",
            "javascript:alert(1)",
            "https://",
        ]
    ),
)

# Control characters a terminal acts on: C0 but newline and tab, DEL, C1.
RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@st.composite
def job_specs(draw: st.DrawFn) -> JobSpec:
    return JobSpec(
        provider=draw(st.sampled_from(list(Provider))),
        prompt=draw(hostile_text),
        mode=draw(st.sampled_from(list(Mode))),
        image_urls=tuple(draw(st.lists(url, max_size=3))),
        aspect_ratio=draw(field_value),
        resolution=draw(field_value),
        duration=draw(field_value),
        audio=draw(st.booleans()),
        fixed_lens=draw(st.one_of(st.none(), st.booleans())),
    )


@FUZZ
@given(job_specs())
@example(JobSpec(Provider.NANOPHOTO, "\udcff broken bytes"))
@example(JobSpec(Provider.SEEDANCE15PRO, "ok", image_urls=("https://e.com/\udcff",),
                 mode=Mode.IMAGE_TO_VIDEO))  # fmt: skip
def test_every_job_is_accepted_and_sendable_or_refused_naming_a_field(spec: JobSpec) -> None:
    adapter = providers.get(spec.provider)
    try:
        valid = adapter.validate(spec)
    except JobValidationError as exc:
        fields = {"prompt", "image_urls", "aspect_ratio", "resolution", "duration",
                  "fixed_lens", "mode", "provider"}  # fmt: skip
        assert exc.field in fields
        assert exc.message and not RAW_CONTROL.search(exc.message)
        return
    # What is accepted can be priced, encoded for the wire and stored as JSON.
    assert adapter.quote(valid).credits > 0
    request = adapter.submit_request(valid)
    assert request.json is not None
    json.dumps(request.json).encode("utf-8")
    json.dumps(valid.params()).encode("utf-8")
    valid.prompt.encode("utf-8")
    assert adapter.validate(valid) == valid  # validation is idempotent


def _argv(spec: JobSpec) -> list[str]:
    mode = "image" if spec.mode is Mode.IMAGE_TO_VIDEO else "text"
    argv = ["submit", f"--provider={spec.provider.value}", f"--prompt={spec.prompt}",
            f"--mode={mode}"]  # fmt: skip
    for image in spec.image_urls:
        argv.append(f"--image={image}")
    for flag, value in (("--aspect", spec.aspect_ratio), ("--resolution", spec.resolution),
                        ("--duration", spec.duration)):  # fmt: skip
        if value is not None:
            argv.append(f"{flag}={value}")
    if spec.audio:
        argv.append("--audio")
    if spec.fixed_lens:
        argv.append("--fixed-lens")
    return argv


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(spec=job_specs())
@example(spec=JobSpec(Provider.NANOPHOTO, "\udcff broken bytes"))
@example(spec=JobSpec(Provider.NANOPHOTO, "fine", duration="\x1b[2J"))
def test_cli_submit_never_shows_a_traceback(spec: JobSpec, capsys) -> None:
    """No key is configured: a valid job ends at the key check, an invalid one at its
    field; both exit 2 with one clear line and nothing is sent or written."""
    try:
        code = cli.main(_argv(spec))
    except SystemExit as exc:  # argparse refusing the command line
        code = exc.code
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert "Traceback" not in captured.err + captured.out
    assert not RAW_CONTROL.search(captured.err.replace("\n", ""))
    assert captured.err.startswith(("error: ", "usage: "))
    try:
        providers.get(spec.provider).validate(spec)
    except JobValidationError as exc:
        assert f"error: {exc.field}: " in captured.err
    else:
        assert "no API key" in captured.err


# -- server answers --------------------------------------------------------------------

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    hostile_text,
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
NANO_KEYS = ["status", "taskId", "creditsUsed", "videoUrl", "generationTime", "error",
             "errorCode", "requiredCredits"]  # fmt: skip
SEED_KEYS = ["task_id", "status", "request", "response", "consumed_credits", "error_message",
             "created_at"]  # fmt: skip
STATUS_WORDS = ["processing", "completed", "failed", "IN_PROGRESS", "SUCCESS", "FAILED",
                "PROCESSING", "queued", ""]  # fmt: skip


def _shaped(keys: list[str]) -> st.SearchStrategy[dict]:
    return st.dictionaries(
        st.sampled_from(keys),
        st.one_of(json_value, st.sampled_from(STATUS_WORDS), st.just("task_abc")),
        max_size=len(keys),
    )


def _bodies() -> st.SearchStrategy[bytes]:
    def encode(value: object) -> bytes:
        return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")

    nano = _shaped(NANO_KEYS)
    seed_data = _shaped(SEED_KEYS)
    seed = st.fixed_dictionaries(
        {"code": st.one_of(st.sampled_from([200, 400, 429, 500]), json_value)},
        optional={"message": json_value, "data": st.one_of(seed_data, json_value)},
    )
    return st.one_of(
        st.binary(max_size=200),
        json_value.map(encode),
        nano.map(encode),
        seed.map(encode),
        st.sampled_from(
            [
                b"",
                b"<html>502</html>",
                b"1" * 5000,  # an integer Python refuses to parse (too many digits)
                b"[" * 100_000,  # nesting deep enough to exhaust the recursion limit
                b'{"status": "completed", "taskId": "t", "videoUrl": "' + b"x" * 200_000 + b'"}',
                b'{"code": 200, "data": {"task_id": "t", "status": "SUCCESS", '
                b'"response": ["\\u001b[2Jhttps://x"]}}',
                b"\xff\xfe\x00",
            ]
        ),
    )


statuses = st.one_of(
    st.sampled_from([200, 201, 204, 400, 401, 402, 403, 404, 429, 500, 502, 503]),
    st.integers(min_value=100, max_value=599),
)
headers = st.dictionaries(
    st.sampled_from(["retry-after", "content-type", "x-other"]),
    st.one_of(
        st.text(max_size=30),
        st.sampled_from(
            [
                "1e999",
                "nan",
                "-5",
                "Wed, 21 Oct 2015 07:28:00 GMT",
                "Fri, 31 Dec 9999 23:59:59 GMT",
                "Mon, 99 Foo 0 00:00:00",
            ]
        ),
    ),  # fmt: skip
    max_size=2,
)


@FUZZ
@given(st.sampled_from(list(Provider)), statuses, _bodies(), headers)
def test_every_server_answer_parses_or_raises_an_api_error(
    provider: Provider, status: int, body: bytes, hdrs: dict[str, str]
) -> None:
    adapter = providers.get(provider)
    for parse, kind in ((adapter.parse_submit, SubmitAnswer), (adapter.parse_status, TaskUpdate)):
        try:
            result = parse(status, body, hdrs)
        except ApiError as exc:
            text = str(exc)
            assert len(text) < 5000
            if exc.retry_after is not None:
                assert 0 <= exc.retry_after <= 3600
            continue
        assert isinstance(result, kind)
        update = result.update if isinstance(result, SubmitAnswer) else result
        assert isinstance(update.status, TaskStatus)
        assert update.credits_charged is None or isinstance(update.credits_charged, int)
        assert all(isinstance(u, str) for u in update.video_urls)
        assert update.error is None or len(update.error) <= 2000


@pytest.mark.parametrize("provider", list(Provider))
def test_answers_that_crashed_the_json_decoder_are_protocol_errors(provider: Provider) -> None:
    adapter = providers.get(provider)
    for body in (b"1" * 5000, b"[" * 100_000, b'{"a": ' * 50_000):
        with pytest.raises(providers.ProtocolError):
            adapter.parse_status(200, body, {})


# -- inert display ---------------------------------------------------------------------


@FUZZ
@given(hostile_text)
@example("0" * 27 + "\U000e0000" + "0" * 40)  # a zero-width tag: 41 characters, 40 cells
def test_inert_text_has_no_control_characters(text: str) -> None:
    shown = inert(text)
    assert not RAW_CONTROL.search(shown)
    flat = one_line(text, 40)
    assert "\n" not in flat and "\t" not in flat and len(flat) <= 40
    assert not RAW_CONTROL.search(to_json({"x": text}))


def test_cli_shows_hostile_prompts_and_server_messages_inert(tmp_path, capsys) -> None:
    nasty = "\x1b]0;owned\x07\x1b[2J[bold red]markup[/] \x9b31m\u202e"
    db = tmp_path / "history.db"
    store = Store.open(db)
    task = Task(
        id="0190000000001234abcd",
        provider=Provider.NANOPHOTO,
        status=TaskStatus.FAILED,
        prompt="prompt " + nasty,
        params={"mode": "text-to-video", "resolution": "720p", "duration": "4"},
        created_at=1_700_000_000.0,
        task_id="task_" + nasty,
        credits_estimated=4,
        credits_charged=4,
        credits_refunded=4,
        video_urls=("https://example.com/v.mp4" + nasty,),
        error="server says " + nasty,
    )
    store.insert_task(task, [{"at": 1_700_000_001.0, "kind": "status", "status": "failed",
                              "detail": "detail " + nasty}])  # fmt: skip
    store.close()
    outputs = []
    for argv in (
        ["--db", str(db), "status", task.short_id, "--no-refresh"],
        ["--db", str(db), "status", task.short_id, "--no-refresh", "--json"],
        ["--db", str(db), "list"],
        ["--db", str(db), "list", "--json"],
    ):
        cli.main(argv)
        captured = capsys.readouterr()
        outputs.append(captured.out + captured.err)
    for shown in outputs:
        assert not RAW_CONTROL.search(shown), repr(shown)
        assert "Traceback" not in shown
    detail = outputs[0]
    assert "[bold red]markup[/]" in detail  # markup stays literal
    assert "\\x1b]0;owned" in detail  # the escape is shown, not obeyed
    listed = json.loads(outputs[3])
    assert listed[0]["error"] == "server says " + nasty  # JSON keeps the exact text


@pytest.mark.parametrize("errors", ["strict", "surrogateescape"])
def test_a_prompt_on_stdin_that_is_not_utf8_is_a_usage_error(errors, monkeypatch, capsys) -> None:
    import io

    stdin = io.TextIOWrapper(io.BytesIO(b"\xff\xfe not utf-8"), encoding="utf-8", errors=errors)
    monkeypatch.setattr("sys.stdin", stdin)
    code = cli.main(["submit", "--prompt", "-"])
    captured = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in captured.err
    assert "not UTF-8" in captured.err or "not valid UTF-8" in captured.err
