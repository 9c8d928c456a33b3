"""Ids: UUIDv7 strings from the OS's CSPRNG, unique, ordered within a generator, unguessable;
a seeded generator replays its ids and is used only when asked for."""

from __future__ import annotations

import random
import time
import uuid

from bus.ids import IdGenerator, MessageIds

MT_WORDS = 624  # 32-bit outputs that fix a Mersenne Twister's state


def _untemper(y: int) -> int:
    """The MT19937 state word behind one 32-bit output."""
    y ^= y >> 18
    y ^= (y << 15) & 0xEFC60000
    x = y
    for _ in range(5):
        x = y ^ ((x << 7) & 0x9D2C5680)
    y = x
    for _ in range(3):
        x = y ^ (x >> 11)
    return x & 0xFFFFFFFF


def _predict_next_from_mersenne_twister(observed: list[str]) -> str:
    """The id a `random.Random(...).getrandbits(128)` generator would give after `observed`:
    each id reveals four 32-bit outputs, least significant first, and 624 outputs rebuild
    the generator's state."""
    words: list[int] = []
    for identifier in observed:
        value = uuid.UUID(identifier).int
        words.extend((value >> (32 * i)) & 0xFFFFFFFF for i in range(4))
    state = [_untemper(w) for w in words[-MT_WORDS:]]
    rebuilt = random.Random()
    rebuilt.setstate((3, (*state, MT_WORDS), None))
    return str(uuid.UUID(int=rebuilt.getrandbits(128)))


def test_the_next_id_cannot_be_predicted_from_the_156_before_it() -> None:
    ids = IdGenerator()
    observed = [ids() for _ in range(MT_WORDS // 4)]

    assert ids() != _predict_next_from_mersenne_twister(observed)


def test_the_mersenne_twister_attack_does_predict_a_seeded_generator() -> None:
    """Shows the attack above works on a generator that draws from `random`; the seeded
    one is kept for replayable runs only."""
    draws = random.Random(2024).getrandbits
    observed = [str(uuid.UUID(int=draws(128))) for _ in range(MT_WORDS // 4)]

    assert str(uuid.UUID(int=draws(128))) == _predict_next_from_mersenne_twister(observed)


def test_seeding_pythons_random_does_not_reproduce_ids() -> None:
    random.seed(7)
    first = [IdGenerator()() for _ in range(3)]
    random.seed(7)
    again = [IdGenerator()() for _ in range(3)]

    assert set(first).isdisjoint(again)


def test_ids_are_uuid7_strings_stamped_with_the_current_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    identifier = IdGenerator()()
    after = time.time_ns() // 1_000_000

    parsed = uuid.UUID(identifier)
    assert str(parsed) == identifier
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert before <= parsed.int >> 80 <= after


def test_a_hundred_thousand_ids_are_unique_and_each_greater_than_the_one_before() -> None:
    ids = IdGenerator()
    drawn = [ids() for _ in range(100_000)]

    assert len(set(drawn)) == len(drawn)
    assert drawn == sorted(drawn)
    assert all(uuid.UUID(i).version == 7 for i in drawn[::997])


def test_ids_keep_increasing_when_one_millisecond_mints_more_than_the_counter_holds() -> None:
    ids = IdGenerator(seed=1)  # its clock stands still, as a fast burst's clock appears to
    drawn = [ids() for _ in range(10_000)]

    assert drawn == sorted(drawn) and len(set(drawn)) == len(drawn)


def test_a_seeded_generator_replays_its_ids_and_another_seed_does_not() -> None:
    first, again, other = IdGenerator(seed=5), IdGenerator(seed=5), IdGenerator(seed=6)
    replayed = [first() for _ in range(1000)]

    assert [again() for _ in range(1000)] == replayed
    assert set(other() for _ in range(1000)).isdisjoint(replayed)


def test_message_ids_are_unique_uuid4_strings_and_a_seed_replays_them() -> None:
    ids = MessageIds()
    drawn = [ids() for _ in range(10_000)]

    assert len(set(drawn)) == len(drawn)
    assert all(str(uuid.UUID(i)) == i and uuid.UUID(i).version == 4 for i in drawn[::997])
    assert [MessageIds(5)() for _ in range(2)] == [MessageIds(5)()] * 2
    assert MessageIds(5)() != MessageIds(6)()
    assert MessageIds()() != MessageIds()()
