"""Registering secrets with Airflow's masker: one at a time, and many with one compile."""

from __future__ import annotations

import copy
import json
import os
import secrets
import subprocess
import sys
import textwrap
import threading
import uuid
from typing import Any

import pytest

from airflow_provider_jobmojito import masking
from tests.conftest import AIRFLOW_V3, masker_homes


def new_keys(count: int) -> list[str]:
    return [secrets.token_urlsafe(32) for _ in range(count)]


def redacted(keys: list[str]) -> list[Any]:
    from airflow.providers.common.compat.sdk import redact

    return [redact(key) for key in keys]


pytestmark = pytest.mark.usefixtures("fresh_masker")


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every expression the process's masker compiles from now on (scratch copies not counted)."""
    masker = masking._local_masker()
    assert masker is not None, "the masker's shape changed: mask_all would always fall back"
    compiled: list[object] = []
    base = type(masker)

    def get(self: Any) -> Any:
        return self.__dict__.get("replacer", base.replacer)

    def put(self: Any, value: Any) -> None:
        if self is masker:
            compiled.append(value)
        self.__dict__["replacer"] = value

    counting = type("CountingMasker", (base,), {"replacer": property(get, put)})
    monkeypatch.setattr(masker, "__class__", counting)
    return compiled


def test_mask_all_registers_1000_keys_with_one_compile(compiles: list[object]) -> None:
    keys = new_keys(1000)
    masking.mask_all(keys)
    assert redacted(keys) == ["***"] * 1000
    assert len(compiles) == 1


def test_mask_all_skips_empty_repeated_and_registered_secrets(compiles: list[object]) -> None:
    registered = new_keys(3)
    masking.mask_all(registered)
    fresh = new_keys(2)
    masking.mask_all(["", *registered, fresh[0], fresh[0], fresh[1]])
    assert redacted(registered + fresh) == ["***"] * 5
    assert len(compiles) == 2
    masking.mask_all(registered + fresh)  # nothing new: nothing compiled
    masking.mask_all([])
    assert len(compiles) == 2


def test_mask_registers_one_secret_at_once(compiles: list[object]) -> None:
    (key,) = new_keys(1)
    masking.mask(key)
    assert redacted([f"x {key} y"]) == ["x *** y"]
    assert len(compiles) == 1


def test_the_masker_own_rules_still_apply_to_a_batch() -> None:
    """A batch masks exactly what add_mask masks one by one: Airflow 3 skips secrets too short
    to mask and the word "airflow"; Airflow 2.11 does neither (outside its unit test mode)."""
    masker = masking._local_masker()
    one_by_one = copy.copy(masker)
    one_by_one.patterns, one_by_one.replacer = set(), None
    # Short, and unlike anything else a test logs: Airflow 2.11 masks it for the rest of the run.
    short, (key,) = "~Zq~", new_keys(1)
    for secret in (short, "airflow", key):
        one_by_one.add_mask(secret)
    masking.mask_all([short, "airflow", key])
    texts = [f"{short} x", "airflow x", f"{key} x"]
    assert redacted(texts) == [one_by_one.redact(text) for text in texts]
    assert redacted([f"{key} x"]) == ["*** x"]


def test_a_batch_collects_keys_from_many_threads_and_registers_them_when_it_ends(
    compiles: list[object],
) -> None:
    keys = new_keys(800)
    with masking.SecretBatch() as batch:
        threads = [
            threading.Thread(target=lambda part=keys[n::16]: [batch.add(key) for key in part])
            for n in range(16)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert compiles == []  # nothing is registered inside the block
    assert redacted(keys) == ["***"] * 800
    assert len(compiles) == 1


def test_a_batch_registers_its_keys_when_the_block_raises() -> None:
    keys = new_keys(5)

    def interrupted() -> None:
        with masking.SecretBatch() as batch:
            for key in keys:
                batch.add(key)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert redacted(keys) == ["***"] * 5


class TestFallback:
    """When the masker is not shaped as expected, every secret goes through mask_secret alone."""

    @pytest.fixture
    def per_key(self, monkeypatch: pytest.MonkeyPatch) -> list[object]:
        calls: list[object] = []
        real = masking.mask_secret

        def spy(secret: Any, *args: Any, **kwargs: Any) -> None:
            calls.append(secret)
            real(secret, *args, **kwargs)

        monkeypatch.setattr(masking, "mask_secret", spy)
        return calls

    def test_no_masker_found(self, monkeypatch: pytest.MonkeyPatch, per_key: list[object]) -> None:
        monkeypatch.setattr(masking, "_local_masker", lambda: None)
        keys = new_keys(20)
        masking.mask_all(keys)
        assert per_key == keys
        assert redacted(keys) == ["***"] * 20

    @pytest.mark.parametrize(
        "shape",
        [
            pytest.param({"patterns": []}, id="patterns-not-a-set"),
            pytest.param({"add_mask": None}, id="no-add_mask"),
        ],
    )
    def test_a_masker_of_another_shape_is_not_used(
        self, monkeypatch: pytest.MonkeyPatch, shape: dict[str, Any]
    ) -> None:
        class Other:
            def __init__(self) -> None:
                self.patterns: Any = set()
                self.replacer = None

            def add_mask(self, secret: Any, name: str | None = None) -> None:
                raise AssertionError("not to be used")

        other = Other()
        for name, value in shape.items():
            setattr(other, name, value)
        for module in masker_homes():
            monkeypatch.setattr(module, "_secrets_masker", lambda: other)
        assert masking._local_masker() is None

    def test_a_masker_that_did_not_compile_falls_back(
        self, monkeypatch: pytest.MonkeyPatch, per_key: list[object]
    ) -> None:
        """The post-check: if add_mask did not replace the expression, the batch goes key by key."""

        class Lazy:
            def __init__(self) -> None:
                self.patterns: set[str] = set()
                self.replacer: object = None

            def add_mask(self, secret: Any, name: str | None = None) -> None:
                self.patterns.add(f"escaped:{secret}")  # and never compiles

        monkeypatch.setattr(masking, "_local_masker", Lazy)
        keys = new_keys(4)
        masking.mask_all(keys)
        assert per_key == keys
        assert redacted(keys) == ["***"] * 4

    def test_a_masker_that_raises_falls_back(
        self, monkeypatch: pytest.MonkeyPatch, per_key: list[object]
    ) -> None:
        class Broken:
            def __init__(self) -> None:
                self.patterns: set[str] = set()
                self.replacer = None

            def add_mask(self, secret: Any, name: str | None = None) -> None:
                raise TypeError("changed")

        monkeypatch.setattr(masking, "_local_masker", Broken)
        keys = new_keys(3)
        masking.mask_all(keys)
        assert per_key == keys
        assert redacted(keys) == ["***"] * 3


@pytest.mark.skipif(not AIRFLOW_V3, reason="Airflow 2 has no supervisor process")
class TestSupervisor:
    """Airflow 3: the supervisor redacts the task's log lines, so it must learn every key too."""

    @pytest.fixture
    def sent(self, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
        from airflow.sdk.execution_time import task_runner

        messages: list[Any] = []

        class Comms:
            def send(self, msg: Any) -> None:
                messages.append(msg)

        monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", Comms(), raising=False)
        return messages

    def test_a_batch_is_one_message_that_the_supervisor_handler_masks(
        self, sent: list[Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import airflow.sdk.log as sdk_log
        from airflow.sdk.execution_time.comms import MaskSecret

        reason = "this Airflow has no request_handlers module for the supervisor's MaskSecret handler"
        SecretsMasker = pytest.importorskip("airflow.sdk._shared.secrets_masker", reason=reason).SecretsMasker
        handle_mask_secret = pytest.importorskip(
            "airflow.sdk.execution_time.request_handlers", reason=reason
        ).handle_mask_secret

        keys = new_keys(60)  # the supervisor compiles once per key (Airflow's code): keep it small
        masking.mask_all(keys)
        assert len(sent) == 1
        assert isinstance(sent[0], MaskSecret)
        # As the supervisor gets it: through JSON, into a process whose masker has never seen them.
        received = MaskSecret.model_validate_json(sent[0].model_dump_json())
        supervisor_masker = SecretsMasker()
        for module in masker_homes(sdk_log.redact):
            monkeypatch.setattr(module, "_secrets_masker", lambda: supervisor_masker)
        handle_mask_secret(received)
        assert [supervisor_masker.redact(key) for key in keys] == ["***"] * 60

    @staticmethod
    def bulk_embed(k: int, sandbox: Any, conn: Any, sent: list[Any], compiles: list[object]) -> list[str]:
        """Embed ``k`` new positions with one bulk call of the hook; the messages and compiles it
        caused are left in ``sent`` and ``compiles``."""
        from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook

        ids = [str(uuid.uuid4()) for _ in range(k)]
        sandbox.seed([{"id": i, "status": "active"} for i in ids])
        hook = JobMojitoHook(conn())
        hook.settings  # noqa: B018 - the connection's own secrets are registered before counting
        sent.clear()
        compiles.clear()
        results = hook.set_interview_states(ids, is_embedded=True, max_workers=8)
        keys = [result.response["embed_signing_key"] for result in results if result.response]
        assert len(set(keys)) == k
        assert redacted(keys) == ["***"] * k
        return keys

    @staticmethod
    def supervisor_masker(monkeypatch: pytest.MonkeyPatch, adapter: Any = None) -> tuple[Any, list[object]]:
        """A fresh masker of Airflow's, as the supervisor's handler finds it; and its compiles."""
        import airflow.sdk.log as sdk_log
        from airflow.sdk._shared.secrets_masker import SecretsMasker

        compiled: list[object] = []

        class CountingMasker(SecretsMasker):
            def __setattr__(self, name: str, value: Any) -> None:
                if name == "replacer" and value is not None:
                    compiled.append(value)
                super().__setattr__(name, value)

        masker = CountingMasker()
        masker.secret_mask_adapter = adapter
        for module in masker_homes(sdk_log.redact):
            monkeypatch.setattr(module, "_secrets_masker", lambda: masker)
        return masker, compiled

    @staticmethod
    def receive(message: Any) -> None:
        """Hand ``message`` to the supervisor's handler as the supervisor gets it: through JSON."""
        from airflow.sdk.execution_time.comms import MaskSecret
        from airflow.sdk.execution_time.request_handlers import handle_mask_secret

        handle_mask_secret(MaskSecret.model_validate_json(message.model_dump_json()))

    def test_a_bulk_embed_of_k_positions_compiles_once_here_and_k_times_in_the_supervisor(
        self,
        sent: list[Any],
        compiles: list[object],
        jobmojito_sandbox: Any,
        jobmojito_conn: Any,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Why bulk embedding is slow in a real worker (docs/performance.md), counted with Airflow's
        own maskers: the task process compiles once for the batch and sends one message, but the
        supervisor's handler gives the message's list to ``add_mask``, which compiles once per
        item; a dict would be the same. If Airflow ever compiles once per message, this fails:
        then update docs/performance.md and the batch-size advice."""
        k = 40
        keys = self.bulk_embed(k, jobmojito_sandbox, jobmojito_conn, sent, compiles)
        assert len(compiles) == 1  # this process: one compile for the whole batch
        assert len(sent) == 1  # one message to the supervisor, a list
        registered = sent[0].value
        assert set(keys) <= set(registered)

        supervisor, supervisor_compiles = self.supervisor_masker(monkeypatch)
        self.receive(sent[0])
        assert [supervisor.redact(key) for key in keys] == ["***"] * k
        assert len(supervisor_compiles) == len(registered)  # one compile per key there

    def test_with_split_batch_as_the_adapter_the_supervisor_compiles_once_for_a_bulk_embed(
        self,
        sent: list[Any],
        compiles: list[object],
        jobmojito_sandbox: Any,
        jobmojito_conn: Any,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """``[logging] secret_mask_adapter = airflow_provider_jobmojito.masking.split_batch``, as the
        task process and its supervisor both read it: the batch is one string, one compile there."""
        local = masking._local_masker()
        monkeypatch.setattr(local, "secret_mask_adapter", masking.split_batch)
        k = 40
        keys = self.bulk_embed(k, jobmojito_sandbox, jobmojito_conn, sent, compiles)
        assert len(compiles) == 2  # the batch's patterns, then the joined string itself
        assert len(sent) == 1
        assert isinstance(sent[0].value, str)
        assert set(keys) <= set(sent[0].value.split(masking.BATCH_SEPARATOR))

        supervisor, supervisor_compiles = self.supervisor_masker(monkeypatch, masking.split_batch)
        self.receive(sent[0])
        assert [supervisor.redact(f"key={key}.") for key in keys] == ["key=***."] * k
        assert len(supervisor_compiles) == 1

    def test_without_the_adapter_a_batch_is_never_sent_as_one_string(
        self, sent: list[Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A supervisor without the adapter would mask only the joined string, not each key."""
        keys = new_keys(3)
        monkeypatch.setattr(masking._local_masker(), "secret_mask_adapter", None)
        masking.mask_all(keys)
        assert [msg.value for msg in sent] == [keys]

    def test_a_batch_holding_the_separator_is_sent_as_a_list(
        self, sent: list[Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(masking._local_masker(), "secret_mask_adapter", masking.split_batch)
        keys = [*new_keys(2), f"odd{masking.BATCH_SEPARATOR}secret-value"]
        masking.mask_all(keys)
        assert [msg.value for msg in sent] == [keys]

    def test_one_secret_is_one_message(self, sent: list[Any]) -> None:
        (key,) = new_keys(1)
        masking.mask(key)
        assert [(msg.value, msg.name) for msg in sent] == [(key, None)]

    def test_the_fallback_tells_the_supervisor_each_key(
        self, sent: list[Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(masking, "_local_masker", lambda: None)
        keys = new_keys(3)
        masking.mask_all(keys)
        assert [msg.value for msg in sent] == keys


def test_a_secret_holding_a_jwt_start_is_also_registered_as_airflow_rewrites_it() -> None:
    # Airflow 3 rewrites "eyJ..." in a log line as a JWT before its masker runs: the masker must
    # know what the line then holds, or the part before "eyJ" is shown.
    from airflow_provider_jobmojito.masking import with_jwt_lookalike_rewrites

    assert with_jwt_lookalike_rewrites(["abcdefgh12eyJxyz", "eyJhbGciOi.eyJzdWIi.sig", "plain-key"]) == [
        "abcdefgh12eyJxyz",
        "abcdefgh12eyJ***",
        "eyJhbGciOi.eyJzdWIi.sig",  # a JWT is rewritten whole: nothing of it is shown
        "plain-key",
    ]


def test_a_secret_holding_a_jwt_start_is_still_masked_whole_elsewhere(fresh_masker: None) -> None:
    from airflow.providers.common.compat.sdk import redact

    from airflow_provider_jobmojito.masking import mask_all

    keys = [f"key{n:04d}-abcdefghijklmnopqrstuv-eyJtail{n:04d}" for n in range(50)]
    mask_all(keys)
    assert [redact(f"k={key}") for key in keys] == ["k=***"] * 50
    assert [redact(f"k={key[: key.index('eyJ')]}eyJ***") for key in keys] == ["k=***"] * 50


def test_split_batch_adapts_only_a_joined_batch() -> None:
    keys = new_keys(3)
    assert masking.split_batch(keys[0]) == []
    assert masking.split_batch(masking.BATCH_SEPARATOR.join(keys)) == keys
    assert masking.split_batch(f"{masking.BATCH_SEPARATOR}{keys[0]}{masking.BATCH_SEPARATOR}") == keys[:1]


@pytest.mark.skipif(not AIRFLOW_V3, reason="Airflow 3's supervisor registers the task's secrets itself")
def test_with_the_adapter_configured_a_supervisor_process_masks_each_key_of_a_joined_batch() -> None:
    # A fresh process configured as the deployment is (the environment variable), reset as the
    # supervisor resets its masker for each task, then given the one string mask_all sends: every
    # key, not only the joined string, must be redacted by the masker that redacts its output.
    script = textwrap.dedent(
        """
        import json, secrets
        import airflow.settings  # configures both maskers from [logging]
        from airflow.sdk._shared.secrets_masker import _secrets_masker, reset_secrets_masker
        from airflow.sdk.execution_time.comms import MaskSecret
        from airflow_provider_jobmojito import masking

        masker = _secrets_masker()
        reset_secrets_masker()
        keys = [secrets.token_urlsafe(24) for _ in range(50)]
        message = MaskSecret.model_validate_json(
            MaskSecret(value=masking.BATCH_SEPARATOR.join(keys)).model_dump_json()
        )
        try:
            from airflow.sdk.execution_time.supervisor import handle_mask_secret
        except ImportError:
            from airflow.sdk.log import mask_secret
            mask_secret(message.value)
        else:
            handle_mask_secret(message)
        print(json.dumps({
            "adapter": masker.secret_mask_adapter is masking.split_batch,
            "leaked": sum(key in masker.redact(f"key={key}") for key in keys),
        }))
        """
    )
    env = {
        **os.environ,
        "AIRFLOW__LOGGING__SECRET_MASK_ADAPTER": "airflow_provider_jobmojito.masking.split_batch",
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"adapter": True, "leaked": 0}
