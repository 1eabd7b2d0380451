"""Versions pushed while the server runs: picked up within two polls, no failed request, failures contained."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable

import pytest

from mlpipe.serving import Client, ServingRequestError, publish_version

X = [[1.0, 2.0, 3.0]]
V1_ANSWER = [[6.5, 5.5]]  # x @ ones(3, 2) + [0.5, -0.5]
V2_ANSWER = [[12.5, 11.5]]  # x @ (2 * ones(3, 2)) + [0.5, -0.5]


def wait_for(condition: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``condition()`` held; fails after ``timeout``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"not within {timeout}s"
        time.sleep(0.02)
    return time.monotonic() - started


def states(client: Client) -> dict[str, tuple[str, str]]:
    return {
        s["version"]: (s["state"], s["status"]["error_code"]) for s in client.status()["model_version_status"]
    }


class Hammer:
    """Threads predicting as fast as they can, over REST and gRPC, recording errors and each
    thread's answers in its own order (a thread's answer may be appended after another thread's
    later one, so only the per-thread order says which version served after which)."""

    def __init__(self, server):
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        clients = [
            Client(server.rest_address, model="swap"),
            Client(server.rest_address, model="swap"),
            Client(server.grpc_address, model="swap", protocol="grpc"),
        ]
        self.answers_by_thread: list[list[list]] = [[] for _ in clients]
        self.threads = [
            threading.Thread(target=self._run, args=(client, answers))
            for client, answers in zip(clients, self.answers_by_thread, strict=True)
        ]

    def counts(self) -> list[int]:
        return [len(answers) for answers in self.answers_by_thread]

    def _run(self, client: Client, answers: list[list]) -> None:
        while not self.stop.is_set():
            try:
                answers.append(client.predict(X))
            except BaseException as error:
                self.errors.append(error)

    def __enter__(self) -> Hammer:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


def test_pushed_versions_replace_the_served_one_and_failures_keep_the_old_one(
    server, serving_root, saved_models, poll_seconds
):
    base = os.path.join(serving_root, "swap")
    client = Client(server.rest_address, model="swap")
    assert client.predict(X) == V1_ANSWER

    # Push v2 while clients hammer: AVAILABLE within two polls, v1 unloaded, no request fails.
    with Hammer(server) as hammer:
        wait_for(lambda: min(hammer.counts()) > 5, timeout=30)
        assert publish_version(saved_models["linear_v2"], base) == 2
        took = wait_for(lambda: states(client).get("2", ("", ""))[0] == "AVAILABLE", timeout=10)
        # found by the next poll; the bound adds the load itself, which on a busy 2-core CI machine
        # (hammer threads in this process, TF tests in the other worker) took up to 1.6 s
        assert took <= 2 * poll_seconds + 2.0
        wait_for(lambda: states(client)["1"][0] == "END", timeout=5)
        seen = hammer.counts()  # each thread's next request but one starts after v1 ended
        wait_for(lambda: all(n > s + 5 for n, s in zip(hammer.counts(), seen, strict=True)), timeout=30)
    assert hammer.errors == []
    for answers in hammer.answers_by_thread:  # v1 answers, then v2 answers only
        assert answers[0] == V1_ANSWER and answers[-1] == V2_ANSWER
        switch = answers.index(V2_ANSWER)
        assert answers[:switch] == [V1_ANSWER] * switch
        assert answers[switch:] == [V2_ANSWER] * (len(answers) - switch)
    assert client.predict(X) == V2_ANSWER
    assert states(client) == {"2": ("AVAILABLE", "OK"), "1": ("END", "OK")}

    # Only integer-named directories are versions: a staging copy and a named one are ignored.
    shutil.copytree(saved_models["linear_v1"], os.path.join(base, ".tmp-9-123"))
    shutil.copytree(saved_models["linear_v1"], os.path.join(base, "latest"))

    # A broken v3 is marked END with its error; v2 keeps serving.
    os.makedirs(os.path.join(base, "3"))
    with open(os.path.join(base, "3", "saved_model.pb"), "wb") as f:
        f.write(b"this is not a SavedModel")
    wait_for(lambda: "3" in states(client), timeout=4 * poll_seconds)
    version_3 = next(s for s in client.status()["model_version_status"] if s["version"] == "3")
    assert version_3["state"] == "END" and version_3["status"]["error_code"] != "OK"
    assert os.path.join(base, "3") in version_3["status"]["error_message"]
    assert client.predict(X) == V2_ANSWER
    assert states(client)["2"] == ("AVAILABLE", "OK")

    # A v4 copied in place (as TFX's Pusher does, saved_model.pb last) fails to load while the copy
    # is incomplete, then loads once saved_model.pb arrives.
    version_4 = os.path.join(base, "4")
    shutil.copytree(saved_models["linear_v1"], version_4, ignore=shutil.ignore_patterns("saved_model.pb"))
    wait_for(lambda: states(client).get("4", ("", ""))[1] == "NOT_FOUND", timeout=4 * poll_seconds)
    assert client.predict(X) == V2_ANSWER
    shutil.copyfile(
        os.path.join(saved_models["linear_v1"], "saved_model.pb"), os.path.join(version_4, "saved_model.pb")
    )
    wait_for(lambda: states(client)["4"] == ("AVAILABLE", "OK"), timeout=4 * poll_seconds)
    assert client.predict(X) == V1_ANSWER
    assert client.metadata()["model_spec"]["version"] == "4"
    wait_for(lambda: states(client)["2"][0] == "END", timeout=4 * poll_seconds)
    assert set(states(client)) == {"1", "2", "3", "4"}


def test_start_refuses_an_unloadable_model_and_waits_for_a_missing_one(tmp_path, saved_models):
    from mlpipe.errors import ServingError
    from mlpipe.serving import ModelServer, ServedModel

    broken = tmp_path / "broken" / "1"
    broken.mkdir(parents=True)
    (broken / "model.pkl").write_bytes(b"not served")
    with pytest.raises(ServingError, match=f"model 'broken' version 1 \\({broken}\\) failed to load"):
        ModelServer(ServedModel("broken", str(tmp_path / "broken"))).start()

    with ModelServer(ServedModel("later", str(tmp_path / "later")), poll_wait_seconds=0.2) as server:
        client = Client(server.rest_address, model="later")
        with pytest.raises(ServingRequestError, match="Could not find any versions of model later"):
            client.status()
        publish_version(saved_models["linear_v1"], tmp_path / "later")
        assert client.wait_until_available(timeout=10) == 1
        assert client.predict(X) == V1_ANSWER


def test_ports_in_use_are_reported(server, serving_root):
    from mlpipe.errors import ServingError
    from mlpipe.serving import ModelServer, ServedModel

    model = ServedModel("taxi", os.path.join(serving_root, "taxi"))
    with pytest.raises(ServingError, match=f"cannot listen for REST on 127.0.0.1:{server.ports.rest}"):
        ModelServer(model, rest_port=server.ports.rest).start()
    with pytest.raises(ServingError, match=f"cannot listen for gRPC on 127.0.0.1:{server.ports.grpc}"):
        ModelServer(model, grpc_port=server.ports.grpc).start()
    assert (
        Client(server.rest_address, model="taxi").status()["model_version_status"][0]["state"] == "AVAILABLE"
    )
