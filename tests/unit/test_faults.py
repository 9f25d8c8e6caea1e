"""harness.faults against a fake environment: every fault heals, whatever the body does."""

from __future__ import annotations

import pytest

from harness._errors import LabDefinitionError, ToxiproxyError
from harness.checkers import CheckResult, expect
from harness.faults import FaultEvent, Faults, Timeline, all_of
from harness.lab import Link, load_lab

MANIFEST = """\
[lab]
title = "Reads during a partition"
chapter = 9
learner_files = ["services/api.py"]
hints = ["Who answers when the store is cut off?", "Read from a quorum."]

[services.api]
command = ["python", "-m", "services.api"]

[services.store]
command = ["python", "-m", "services.store"]

[services.cache]
command = ["python", "-m", "services.cache"]

[links]
"checks -> api" = {}
"api -> store" = {}
"store -> api" = {}
"store -> cache" = {}
"""


class FakeToxiproxy:
    """Records calls and keeps the toxics per proxy, refusing what the real server refuses."""

    def __init__(self):
        self.calls = []
        self.toxics = {}
        self.enabled = {}
        self.refuse_add = set()  # toxic names whose add_toxic fails

    def add_toxic(self, proxy, toxic):
        self.calls.append(("add", proxy, toxic.name))
        if toxic.name in self.refuse_add:
            raise ToxiproxyError(f"Toxiproxy refused POST /proxies/{proxy}/toxics (500)")
        self.toxics.setdefault(proxy, {})[toxic.name] = toxic

    def remove_toxic(self, proxy, name):
        self.calls.append(("remove", proxy, name))
        if name not in self.toxics.get(proxy, {}):
            raise ToxiproxyError(f"Toxiproxy refused DELETE /proxies/{proxy}/toxics/{name} (404)")
        del self.toxics[proxy][name]

    def set_enabled(self, proxy, enabled):
        self.calls.append(("enabled", proxy, enabled))
        self.enabled[proxy] = enabled

    def active(self):
        """(proxy, toxic) for every toxic left on the server."""
        return [(proxy, t) for proxy, toxics in self.toxics.items() for t in toxics.values()]


class FakeBackend:
    def __init__(self):
        self.calls = []

    def crash(self, service):
        self.calls.append(("crash", service))

    def restart(self, service):
        self.calls.append(("restart", service))

    def pause(self, service):
        self.calls.append(("pause", service))

    def resume(self, service):
        self.calls.append(("resume", service))


class FakeEnv:
    def __init__(self, lab):
        self.lab = lab
        self.toxiproxy = FakeToxiproxy()
        self.backend = FakeBackend()
        self.ready_waits = []

    def wait_ready(self, service):
        self.ready_waits.append(service)
        self.backend.calls.append(("wait_ready", service))
        return 0.25


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Boom(Exception):
    pass


def _raise_inside(fault, *steps):
    """Enter `fault`, run `steps`, then raise Boom from the body."""
    with fault:
        for step in steps:
            step()
        raise Boom


@pytest.fixture
def env(write_lab):
    return FakeEnv(load_lab(write_lab(MANIFEST, slug="partitions", files=["services/api.py"])))


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def faults(env, clock):
    return Faults(env, clock=clock)


# -- toxics: attributes exactly as Toxiproxy's API names them ----------------------------------
TOXICS = [
    pytest.param(
        lambda f: f.latency("api -> store", 200, jitter=50),
        "latency",
        {"latency": 200, "jitter": 50},
        "latency 200 ms +/- 50 ms on api -> store (downstream)",
        id="latency",
    ),
    pytest.param(
        lambda f: f.timeout("api -> store"),
        "timeout",
        {"timeout": 0},
        "black hole on api -> store (downstream)",
        id="timeout-black-hole",
    ),
    pytest.param(
        lambda f: f.timeout("api -> store", 300),
        "timeout",
        {"timeout": 300},
        "timeout after 300 ms on api -> store (downstream)",
        id="timeout-after",
    ),
    pytest.param(
        lambda f: f.reset("api -> store", after_ms=10),
        "reset_peer",
        {"timeout": 10},
        "connection reset on api -> store (downstream)",
        id="reset",
    ),
    pytest.param(
        lambda f: f.bandwidth("api -> store", 16),
        "bandwidth",
        {"rate": 16},
        "bandwidth 16 KB/s on api -> store (downstream)",
        id="bandwidth",
    ),
    pytest.param(
        lambda f: f.slow_close("api -> store", 500),
        "slow_close",
        {"delay": 500},
        "slow close 500 ms on api -> store (downstream)",
        id="slow-close",
    ),
    pytest.param(
        lambda f: f.limit_data("api -> store", 64),
        "limit_data",
        {"bytes": 64},
        "close after 64 bytes on api -> store (downstream)",
        id="limit-data",
    ),
]


@pytest.mark.parametrize(("make", "type_", "attributes", "description"), TOXICS)
def test_toxic_is_added_with_toxiproxy_attributes_and_removed_on_exit(
    faults, env, make, type_, attributes, description
):
    with make(faults) as event:
        [(proxy, toxic)] = env.toxiproxy.active()
        assert proxy == "api__store"
        assert toxic.type == type_
        assert toxic.stream == "downstream"
        assert toxic.toxicity == 1.0
        assert dict(toxic.attributes) == attributes
        assert toxic.as_json()["attributes"] == attributes
        assert event.description == description

    assert env.toxiproxy.active() == []
    assert [c[0] for c in env.toxiproxy.calls] == ["add", "remove"]


@pytest.mark.parametrize(("make", "type_", "attributes", "description"), TOXICS)
def test_toxic_is_removed_when_the_body_raises(faults, env, make, type_, attributes, description):
    seen = []

    with pytest.raises(Boom):
        _raise_inside(make(faults), lambda: seen.append(len(env.toxiproxy.active())))

    assert seen == [1]
    assert env.toxiproxy.active() == []


def test_latency_without_jitter_says_so_plainly(faults, env):
    with faults.latency("api -> store", 200) as event:
        [(_, toxic)] = env.toxiproxy.active()
        assert dict(toxic.attributes) == {"latency": 200, "jitter": 0}
    assert event.description == "latency 200 ms on api -> store (downstream)"


def test_toxic_on_the_upstream_stream(faults, env):
    with faults.latency("api -> store", 100, stream="upstream") as event:
        [(_, toxic)] = env.toxiproxy.active()
        assert toxic.stream == "upstream"
    assert event.description.endswith("(upstream)")


def test_any_toxic_with_partial_toxicity(faults, env):
    with faults.toxic(
        "api -> store", "slicer", {"average_size": 8, "size_variation": 2, "delay": 5}, toxicity=0.5
    ) as event:
        [(_, toxic)] = env.toxiproxy.active()
        assert toxic.type == "slicer"
        assert toxic.toxicity == 0.5
        assert dict(toxic.attributes) == {"average_size": 8, "size_variation": 2, "delay": 5}
    assert event.description == "slicer on api -> store (downstream) for 50% of connections"
    assert env.toxiproxy.active() == []


def test_two_toxics_on_one_link_get_distinct_names(faults, env):
    with faults.latency("api -> store", 10), faults.latency("api -> store", 20):
        names = [toxic.name for _, toxic in env.toxiproxy.active()]
        assert len(set(names)) == 2
    assert env.toxiproxy.active() == []


@pytest.mark.parametrize(
    "ref",
    ["api -> store", "api->store", ("api", "store"), Link("api", "store")],
    ids=["text", "text-no-spaces", "tuple", "link"],
)
def test_a_link_can_be_named_as_text_tuple_or_link(faults, env, ref):
    with faults.latency(ref, 10):
        assert [proxy for proxy, _ in env.toxiproxy.active()] == ["api__store"]


def test_unknown_link_lists_the_links_the_lab_has(faults, env):
    with pytest.raises(LabDefinitionError) as caught:
        faults.latency("cache -> api", 10)

    assert "no link 'cache -> api'" in str(caught.value)
    assert "checks -> api, api -> store, store -> api, store -> cache" in str(caught.value)
    assert env.toxiproxy.calls == []


# -- a fault whose apply fails ---------------------------------------------------------------
def test_fault_whose_apply_fails_is_healed_and_its_error_propagates(faults, env, clock):
    env.toxiproxy.refuse_add = {"latency-downstream-1"}
    fault = faults.latency("api -> store", 100)

    with pytest.raises(ToxiproxyError, match="refused POST"), fault:
        pytest.fail("the body must not run when the fault could not be applied")

    assert env.toxiproxy.calls == [
        ("add", "api__store", "latency-downstream-1"),
        ("remove", "api__store", "latency-downstream-1"),
    ]
    [event] = faults.timeline.events
    assert event.end == clock.now


def test_partition_half_applied_is_undone(faults, env):
    env.toxiproxy.refuse_add = {"partition1-store__api-down"}

    with pytest.raises(ToxiproxyError), faults.partition(["api"], ["store"]):
        pytest.fail("the body must not run")

    assert env.toxiproxy.active() == []


# -- link down ---------------------------------------------------------------------------------
def test_down_disables_the_proxy_and_enables_it_on_exit(faults, env):
    with faults.down("api -> store") as event:
        assert env.toxiproxy.calls == [("enabled", "api__store", False)]
    assert env.toxiproxy.calls[-1] == ("enabled", "api__store", True)
    assert event.description == "link api -> store down"


def test_down_enables_the_proxy_when_the_body_raises(faults, env):
    with pytest.raises(Boom), faults.down("api -> store"):
        raise Boom
    assert env.toxiproxy.enabled == {"api__store": True}


# -- partitions --------------------------------------------------------------------------------
def _streams(env):
    return sorted((proxy, toxic.stream) for proxy, toxic in env.toxiproxy.active())


def test_two_way_partition_black_holes_both_streams_of_both_links(faults, env):
    with faults.partition(["api"], ["store"]) as event:
        assert _streams(env) == [
            ("api__store", "downstream"),
            ("api__store", "upstream"),
            ("store__api", "downstream"),
            ("store__api", "upstream"),
        ]
        for _, toxic in env.toxiproxy.active():
            assert toxic.type == "timeout"
            assert dict(toxic.attributes) == {"timeout": 0}
            assert toxic.toxicity == 1.0
    assert env.toxiproxy.active() == []
    assert event.description == "partition ['api'] <-/-> ['store']"


def test_one_way_partition_drops_only_what_a_sends_to_b(faults, env):
    # api -/-> store: requests api -> store are lost (upstream of api__store), and so are the
    # answers api sends back to store's requests (downstream of store__api).
    with faults.partition(["api"], ["store"], one_way=True) as event:
        assert _streams(env) == [("api__store", "upstream"), ("store__api", "downstream")]
    assert env.toxiproxy.active() == []
    assert event.description == "partition ['api'] -/-> ['store']"


def test_partition_leaves_links_inside_a_group_and_to_others_alone(faults, env):
    with faults.partition(["api", "checks"], ["store"]):
        proxies = {proxy for proxy, _ in env.toxiproxy.active()}
    assert proxies == {"api__store", "store__api"}


def test_partition_between_groups_cuts_every_crossing_link(faults, env):
    with faults.partition(["api"], ["store", "cache"]):
        proxies = {proxy for proxy, _ in env.toxiproxy.active()}
    assert proxies == {"api__store", "store__api"}
    with faults.partition(["api", "store"], ["cache"], one_way=True):
        assert _streams(env) == [("store__cache", "upstream")]


def test_partition_heals_when_the_body_raises(faults, env):
    with pytest.raises(Boom), faults.partition(["api"], ["store"]):
        raise Boom
    assert env.toxiproxy.active() == []


def test_partition_without_a_link_between_the_groups_is_an_error(faults, env):
    with pytest.raises(ValueError, match=r"no link between \['api'\] and \['cache'\]"):
        faults.partition(["api"], ["cache"])


def test_two_partitions_do_not_share_toxic_names(faults, env):
    with faults.partition(["api"], ["store"]), faults.partition(["store"], ["cache"]):
        assert len(env.toxiproxy.active()) == 6
    assert env.toxiproxy.active() == []


# -- process faults --------------------------------------------------------------------------
def test_crash_kills_then_restarts_and_waits_until_ready(faults, env):
    with faults.crash("store") as event:
        assert env.backend.calls == [("crash", "store")]
    assert env.backend.calls == [("crash", "store"), ("restart", "store"), ("wait_ready", "store")]
    assert event.description == "crash store"


def test_crash_restarts_when_the_body_raises(faults, env):
    with pytest.raises(Boom), faults.crash("store"):
        raise Boom
    assert env.backend.calls[-2:] == [("restart", "store"), ("wait_ready", "store")]


def test_crash_without_restart_leaves_it_down(faults, env):
    with faults.crash("store", restart=False):
        pass
    assert env.backend.calls == [("crash", "store")]


def test_restart_returns_the_seconds_to_ready(faults, env):
    assert faults.restart("store") == 0.25
    assert env.backend.calls == [("restart", "store"), ("wait_ready", "store")]


def test_kill_crashes_and_records_an_instant_on_the_timeline(faults, env, clock):
    faults.kill("store")
    assert env.backend.calls == [("crash", "store")]
    [event] = faults.timeline.events
    assert (event.description, event.start, event.end) == ("crash store", clock.now, clock.now)


def test_pause_stops_and_resumes_on_exit(faults, env):
    with faults.pause("store") as event:
        assert env.backend.calls == [("pause", "store")]
    assert env.backend.calls == [("pause", "store"), ("resume", "store")]
    assert event.description == "pause store"


def test_pause_resumes_when_the_body_raises(faults, env):
    with pytest.raises(Boom), faults.pause("store"):
        raise Boom
    assert env.backend.calls == [("pause", "store"), ("resume", "store")]


@pytest.mark.parametrize(
    "inject",
    [
        lambda f: f.crash("ghost"),
        lambda f: f.pause("ghost"),
        lambda f: f.kill("ghost"),
        lambda f: f.restart("ghost"),
    ],
    ids=["crash", "pause", "kill", "restart"],
)
def test_unknown_service_names_it_and_the_known_ones(faults, env, inject):
    with pytest.raises(
        ValueError, match=r"unknown service 'ghost' \(the lab has: api, store, cache\)"
    ):
        inject(faults)
    assert env.backend.calls == []


# -- the timeline ----------------------------------------------------------------------------
def test_timeline_records_description_start_and_end(faults, clock):
    clock.now = 1.5
    with faults.latency("api -> store", 200) as event:
        assert event.end is None
        clock.now = 4.0
    assert faults.timeline.events == [event]
    assert (event.description, event.start, event.end) == (
        "latency 200 ms on api -> store (downstream)",
        1.5,
        4.0,
    )
    assert str(event) == event.description


def test_timeline_records_the_end_when_the_body_raises(faults, clock):
    fault = faults.pause("store")

    with pytest.raises(Boom):
        _raise_inside(fault, lambda: setattr(clock, "now", 7.0))

    assert fault.event.end == 7.0


def test_timeline_records_the_end_when_the_heal_fails(faults, env, clock):
    fault = faults.latency("api -> store", 10)

    def reset_behind_its_back():
        env.toxiproxy.toxics.clear()
        clock.now = 9.0

    with pytest.raises(Boom) as raised:
        _raise_inside(fault, reset_behind_its_back)

    assert fault.event.end == 9.0
    # The body's failure is what the learner reads; the failed heal is a note on it.
    assert any("healing" in note and "404" in note for note in raised.value.__notes__)


def test_a_failed_heal_raises_when_the_body_did_not(faults, env):
    fault = faults.latency("api -> store", 10)
    with pytest.raises(ToxiproxyError, match="404"), fault:
        env.toxiproxy.toxics.clear()


def test_timeline_during_returns_the_faults_that_overlap_a_window():
    timeline = Timeline()
    early = timeline.open("early", clock=lambda: 1.0)
    early.end = 2.0
    late = timeline.open("late", clock=lambda: 5.0)  # still active

    assert timeline.during(0.0, 1.0) == [early]
    assert timeline.during(2.5, 4.0) == []
    assert timeline.during(3.0, 100.0) == [late]
    assert timeline.during(1.5, 6.0) == [early, late]
    timeline.clear()
    assert timeline.events == []


def test_timeline_mark_records_a_fault_that_is_over_as_it_happens():
    timeline = Timeline()

    torn = timeline.mark("torn tail", clock=lambda: 3.0)

    assert (torn.start, torn.end) == (3.0, 3.0)
    assert timeline.events == [torn]
    assert timeline.during(3.0, 4.0) == [torn]
    assert timeline.during(3.1, 4.0) == []


def test_fault_event_overlaps_with_closed_and_open_ends():
    assert FaultEvent("x", 1.0, 2.0).overlaps(2.0, 3.0)
    assert not FaultEvent("x", 1.0, 2.0).overlaps(2.1, 3.0)
    assert FaultEvent("x", 1.0).overlaps(50.0, 60.0)


def test_a_failed_check_says_during_which_fault(faults):
    with faults.partition(["api"], ["store"]):
        pass
    result = CheckResult("reads agree", "all reads agree", "1 of 3 disagree", ["read k1 was 2"])

    with pytest.raises(AssertionError, match=r"during: partition \['api'\] <-/-> \['store'\]"):
        expect(result, during=faults.timeline)


# -- all_of ------------------------------------------------------------------------------------
def test_all_of_applies_in_order_and_heals_in_reverse(faults, env):
    with all_of(
        faults.latency("api -> store", 10),
        faults.down("store -> cache"),
        faults.pause("cache"),
    ) as events:
        assert [e.description for e in events] == [
            "latency 10 ms on api -> store (downstream)",
            "link store -> cache down",
            "pause cache",
        ]
        before = len(env.toxiproxy.calls), len(env.backend.calls)
    heals = env.toxiproxy.calls[before[0] :], env.backend.calls[before[1] :]
    assert heals == (
        [("enabled", "store__cache", True), ("remove", "api__store", "latency-downstream-1")],
        [("resume", "cache")],
    )


def test_all_of_heals_everything_in_reverse_order_when_the_body_raises(faults, env):
    order = []
    env.toxiproxy.remove_toxic = lambda proxy, name: order.append(proxy)
    with (
        pytest.raises(Boom),
        all_of(
            faults.latency("api -> store", 10),
            faults.latency("store -> api", 10),
            faults.latency("store -> cache", 10),
        ),
    ):
        raise Boom
    assert order == ["store__cache", "store__api", "api__store"]


def test_all_of_heals_what_was_applied_when_a_later_fault_fails(faults, env):
    env.toxiproxy.refuse_add = {"latency-downstream-2"}
    with (
        pytest.raises(ToxiproxyError),
        all_of(faults.latency("api -> store", 10), faults.latency("store -> api", 10)),
    ):
        pytest.fail("the body must not run")
    assert env.toxiproxy.active() == []
    assert all(e.end is not None for e in faults.timeline.events)
