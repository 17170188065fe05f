"""Compare: one prompt on both providers, each field mapped to the other's nearest, the
two tasks created together in one group (and refused together by a cap)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from seedance_tui.caps import CapExceeded
from seedance_tui.config import Settings
from seedance_tui.engine import Engine
from seedance_tui.jobs import JobFields, compare_jobs, counterpart
from seedance_tui.models import JobSpec, Mode, Provider, TaskStatus
from seedance_tui.store import Filter, Store

NANO, SEED = Provider.NANOPHOTO, Provider.SEEDANCE15PRO
IMAGE = "https://cdn.example.com/reference/frame01.png"


@pytest.mark.parametrize(
    ("aspect", "duration", "audio", "mapped"),
    [
        ("landscape", "4", False, ("16:9", "5", False)),
        ("portrait", "8", True, ("9:16", "10", True)),
        ("landscape", "12", True, ("16:9", "10", True)),
    ],
)
def test_nanophoto_fields_map_to_seedance15pros_nearest(aspect, duration, audio, mapped) -> None:
    spec = JobSpec(NANO, "a fox", aspect_ratio=aspect, resolution="1080p", duration=duration,
                   audio=audio, fixed_lens=True)  # fmt: skip
    fields = counterpart(spec, SEED)
    assert (fields.aspect, fields.duration, fields.audio) == mapped
    assert fields.provider is SEED and fields.prompt == "a fox"
    assert fields.resolution is None and fields.fixed_lens is None  # seedance15pro has neither


@pytest.mark.parametrize(
    ("aspect", "duration", "mapped"),
    [
        ("16:9", "5", ("landscape", "4")),
        ("9:16", "10", ("portrait", "8")),
        ("1:1", "5", ("landscape", "4")),
    ],  # fmt: skip
)
def test_seedance15pro_fields_map_to_nanophotos_nearest(aspect, duration, mapped) -> None:
    fields = counterpart(JobSpec(SEED, "a fox", aspect_ratio=aspect, duration=duration), NANO)
    assert (fields.aspect, fields.duration) == mapped


def test_image_to_video_stays_image_to_video_on_both() -> None:
    spec = JobSpec(NANO, "it moves", mode=Mode.IMAGE_TO_VIDEO, image_urls=(IMAGE,),
                   aspect_ratio="portrait", duration="8")  # fmt: skip
    fields = counterpart(spec, SEED)
    assert fields.images == (IMAGE,) and fields.mode == Mode.IMAGE_TO_VIDEO.value
    assert fields.aspect is None  # seedance15pro takes no aspect ratio with images
    back = counterpart(JobSpec(SEED, "it moves", mode=Mode.IMAGE_TO_VIDEO, image_urls=(IMAGE,),
                               duration="10"), NANO)  # fmt: skip
    assert back.images == (IMAGE,) and back.duration == "8" and back.aspect is None


def test_compare_jobs_are_both_providers_priced_in_order(settings: Settings) -> None:
    fields = JobFields(prompt="a fox", provider="seedance15pro", duration="10", audio=True)
    nano, seed = compare_jobs(fields, settings)
    assert (nano.provider, seed.provider) == (NANO, SEED)
    assert seed.spec.duration == "10" and seed.quote.credits == 260
    assert nano.spec.duration == "8" and nano.spec.audio and nano.spec.aspect_ratio == "landscape"
    assert nano.quote.credits == 16  # 720p (its default) 8 s with audio


def sim_tasks(sim) -> list[dict]:
    body = httpx.get(sim.base_url + "/_sim/tasks").json()
    return body["tasks"] if isinstance(body, dict) else body


async def test_a_compare_sends_one_task_per_provider_in_one_group(settings, sim) -> None:
    settings.polling = {"min_interval": 0.1, "target_latency": 0.3, "max_interval": 1.0,
                        "prior": (0.3, 1.0)}  # fmt: skip
    settings.auto_download = False
    store = Store.open(settings.db_path)
    engine = Engine(settings, store)
    try:
        jobs = compare_jobs(JobFields(prompt="a fox", duration="8", aspect="portrait",
                                      audio=True), settings)  # fmt: skip
        tasks = await engine.submit_group(jobs)
        await asyncio.wait_for(engine.run(until_idle=True), 30)
    finally:
        await engine.aclose()
    try:
        [group] = {t.group for t in tasks}
        assert group and group.startswith("g")
        done = store.list(Filter(group=group), sort="oldest")
        assert sorted(t.provider.value for t in done) == ["nanophoto", "seedance15pro"]
        assert {t.status for t in done} == {TaskStatus.COMPLETED}
        sent = {t["provider"]: t["request"] for t in sim_tasks(sim)}
        assert len(sim_tasks(sim)) == 2
        assert (sent["nanophoto"]["aspectRatio"], sent["nanophoto"]["duration"],
                sent["nanophoto"]["generateAudio"]) == ("portrait", "8", True)  # fmt: skip
        assert (sent["seedance15pro"]["aspect_ratio"], sent["seedance15pro"]["duration"],
                sent["seedance15pro"]["sound"]) == ("9:16", "10", True)  # fmt: skip
    finally:
        store.close()


async def test_a_cap_on_either_provider_refuses_the_pair(settings, sim) -> None:
    settings.providers[SEED].daily_cap = 200  # the pair's 260 for seedance15pro passes it
    store = Store.open(settings.db_path)
    engine = Engine(settings, store)
    try:
        jobs = compare_jobs(JobFields(prompt="a fox", duration="8", audio=True), settings)
        with pytest.raises(CapExceeded) as raised:
            await engine.submit_group(jobs)
        assert raised.value.provider is SEED and raised.value.cost == 260
        assert store.count() == 0 and sim_tasks(sim) == []
    finally:
        await engine.aclose()
        store.close()
