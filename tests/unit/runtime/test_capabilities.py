"""Capability names and masks, and the pure checks of process.user and process.rlimits."""

from __future__ import annotations

import pytest

from dockyard.runtime.errors import ConfigError
from dockyard.runtime.linux import capabilities, credentials, rlimits


@pytest.fixture
def kernel_without_bpf(monkeypatch):
    """Pretend the kernel stops at CAP_PERFMON (38), as a 5.8-era kernel without CAP_BPF."""
    monkeypatch.setattr(capabilities, "_last_cap", 38)


def test_table_numbers_every_capability_up_to_checkpoint_restore():
    assert len(capabilities.CAPABILITIES) == 41
    assert sorted(capabilities.CAPABILITIES.values()) == list(range(41))
    assert capabilities.CAPABILITIES["CAP_CHOWN"] == 0
    assert capabilities.CAPABILITIES["CAP_SYS_ADMIN"] == 21
    assert capabilities.CAPABILITIES["CAP_CHECKPOINT_RESTORE"] == 40


def test_known_lists_what_the_running_kernel_supports_in_number_order():
    known = capabilities.known()
    assert known[0] == "CAP_CHOWN"
    assert len(known) == capabilities.last_cap() + 1
    assert [capabilities.CAPABILITIES[n] for n in known] == list(range(len(known)))


def test_probing_finds_the_same_last_capability_as_proc():
    assert capabilities._probe_last_cap() == capabilities.last_cap()


def test_mask_sets_one_bit_per_name():
    assert capabilities.mask(["CAP_CHOWN", "CAP_KILL", "CAP_KILL"]) == 1 | 1 << 5
    assert capabilities.mask([]) == 0
    assert capabilities.mask(None) == 0


def test_mask_rejects_unknown_names_in_runcs_words():
    with pytest.raises(ConfigError, match=r'^unknown capability "CAP_FOO"$'):
        capabilities.mask(["CAP_CHOWN", "CAP_FOO"])
    with pytest.raises(ConfigError, match="unknown capability"):
        capabilities.mask(["chown"])  # names are CAP_ and upper case, as in runc
    with pytest.raises(ConfigError, match="unknown capability"):
        capabilities.mask([3])


def test_mask_leaves_out_capabilities_the_kernel_lacks(kernel_without_bpf):
    ignored: list[str] = []
    bits = capabilities.mask(["CAP_BPF", "CAP_PERFMON", "CAP_CHECKPOINT_RESTORE"], ignored)
    assert bits == 1 << 38
    assert ignored == ["CAP_BPF", "CAP_CHECKPOINT_RESTORE"]
    assert "CAP_BPF" not in capabilities.known()


def test_validate_warns_and_does_not_fail_for_capabilities_the_kernel_lacks(
        kernel_without_bpf, capfd):
    capabilities.validate({"bounding": ["CAP_BPF", "CAP_CHOWN"], "effective": ["CAP_BPF"]})
    err = capfd.readouterr().err
    assert "ignoring unknown or unavailable capabilities: [CAP_BPF]" in err


def test_no_capabilities_object_means_every_set_is_empty():
    assert capabilities.masks(None) == dict.fromkeys(capabilities.SETS, 0)
    assert capabilities.masks({"bounding": ["CAP_KILL"]})["effective"] == 0


@pytest.mark.parametrize("caps, message", [
    ("CAP_CHOWN", "must be an object"),
    ({"bounding": "CAP_CHOWN"}, "bounding must be a list"),
    ({"ambient": ["CAP_NOPE"]}, 'unknown capability "CAP_NOPE"'),
])
def test_validate_rejects_malformed_capabilities(caps, message):
    with pytest.raises(ConfigError, match=message):
        capabilities.validate(caps)


def test_names_round_trips_a_mask():
    names = ["CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"]
    assert capabilities.names(capabilities.mask(names)) == names


# process.user

@pytest.mark.parametrize("user", [
    {"uid": 0, "gid": 0},
    {"uid": 1000, "gid": 1000, "umask": 0o077, "additionalGids": [5, 10]},
    {},  # runc: uid and gid default to 0
    {"uid": 4294967295, "gid": 0, "username": "ignored on Linux"},
])
def test_validate_user_accepts_numeric_ids(user):
    credentials.validate_user(user)


@pytest.mark.parametrize("user, message", [
    ([], "process.user must be an object"),
    ({"uid": -1}, "uid must be an integer"),
    ({"uid": "root"}, "uid must be an integer"),
    ({"uid": True}, "uid must be an integer"),
    ({"gid": 2 ** 32}, "gid must be an integer"),
    ({"umask": -2}, "umask must be an integer"),
    ({"additionalGids": 5}, "additionalGids must be a list"),
    ({"additionalGids": [1, "wheel"]}, "additionalGids entry must be an integer"),
])
def test_validate_user_rejects_bad_ids(user, message):
    with pytest.raises(ConfigError, match=message):
        credentials.validate_user(user)


def test_lookup_home_reads_the_passwd_file(tmp_path):
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/sh\n"
                      "app:x:1000:1000::/home/app:/bin/sh\n"
                      "nohome:x:1001:1001:::/bin/sh\n")
    assert credentials.lookup_home(0, str(passwd)) == "/root"
    assert credentials.lookup_home(1000, str(passwd)) == "/home/app"
    assert credentials.lookup_home(1001, str(passwd)) == "/"
    assert credentials.lookup_home(4242, str(passwd)) == "/"
    assert credentials.lookup_home(0, str(tmp_path / "missing")) == "/"


# process.rlimits

def test_rlimit_table_has_all_sixteen():
    assert len(rlimits.RLIMITS) == 16
    assert sorted(rlimits.RLIMITS.values()) == list(range(16))
    assert rlimits.RLIMITS["RLIMIT_NOFILE"] == 7


def test_validate_rlimits_accepts_the_spec_form():
    rlimits.validate(None)
    rlimits.validate([])
    rlimits.validate([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024},
                      {"type": "RLIMIT_CORE", "soft": 0, "hard": rlimits.RLIM_INFINITY}])


@pytest.mark.parametrize("limits, message", [
    ({"type": "RLIMIT_NOFILE"}, "must be a list"),
    ([{"type": "RLIMIT_FOO", "soft": 1, "hard": 1}], "^wrong rlimit value: RLIMIT_FOO$"),
    ([{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1},
      {"type": "RLIMIT_NOFILE", "soft": 2, "hard": 2}], "duplicate rlimit type RLIMIT_NOFILE"),
    ([{"type": "RLIMIT_NOFILE", "soft": 2, "hard": 1}], "soft limit 2 is greater than hard"),
    ([{"type": "RLIMIT_NOFILE", "soft": -1, "hard": 1}], "soft must be an integer"),
    ([{"type": "RLIMIT_NOFILE", "soft": 1}], "hard must be an integer"),
    (["RLIMIT_NOFILE"], "entries must be objects"),
])
def test_validate_rlimits_rejects_bad_entries(limits, message):
    with pytest.raises(ConfigError, match=message):
        rlimits.validate(limits)
