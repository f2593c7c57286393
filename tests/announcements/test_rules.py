"""The recurrence of kb_schedule rows: once, daily, weekly on weekdays, several times a day, the validity window."""

from __future__ import annotations

import unittest
from datetime import date, datetime, time, timedelta

from kkobot.announcements.rules import (
    Recurrence,
    RuleError,
    describe,
    parseTime,
    parseTimes,
    parseWeekdays,
    recurrence,
)

# 2026-12-07 is a Monday.
MONDAY = date(2026, 12, 7)


def row(**kw):
    base = {
        "schedule_type": "daily",
        "schedule_time": timedelta(hours=9),
        "schedule_times": None,
        "schedule_weekdays": None,
        "schedule_date": None,
        "valid_from": datetime(2026, 1, 1),
        "valid_until": datetime(2027, 1, 1),
    }
    base.update(kw)
    return base


def at(day: date, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss))


class Parsing(unittest.TestCase):
    def test_times_of_day_in_every_form_the_drivers_give(self):
        self.assertEqual(parseTime(timedelta(hours=9, minutes=5, seconds=3), "t"), time(9, 5, 3))
        self.assertEqual(parseTime("18:30", "t"), time(18, 30))
        self.assertEqual(parseTime("07:00:15", "t"), time(7, 0, 15))
        self.assertEqual(parseTime(time(6, 1), "t"), time(6, 1))
        for bad in ("25:00", "9시", "", timedelta(days=1, hours=1), None):
            with self.assertRaises(RuleError):
                parseTime(bad, "schedule_time")

    def test_schedule_times_replace_schedule_time_when_given(self):
        self.assertEqual(parseTimes("09:00:00", '["18:00", "12:00", "12:00"]'),
                         (time(12), time(18)))
        self.assertEqual(parseTimes("09:00:00", None), (time(9),))
        self.assertEqual(parseTimes("09:00:00", "[]"), (time(9),))
        self.assertEqual(parseTimes(timedelta(hours=9), ["10:00"]), (time(10),))
        with self.assertRaises(RuleError):
            parseTimes("09:00", "not json")
        with self.assertRaises(RuleError):
            parseTimes("09:00", '{"a": 1}')

    def test_weekdays_from_a_set_column(self):
        self.assertEqual(parseWeekdays("monday,friday"), frozenset({0, 4}))
        self.assertEqual(parseWeekdays({"sunday"}), frozenset({6}))
        self.assertEqual(parseWeekdays(""), frozenset())
        self.assertEqual(parseWeekdays(None), frozenset())
        with self.assertRaises(RuleError):
            parseWeekdays("monday,funday")

    def test_rows_that_make_no_sense_are_refused_with_the_column(self):
        with self.assertRaisesRegex(RuleError, "schedule_type"):
            recurrence(row(schedule_type="monthly"))
        with self.assertRaisesRegex(RuleError, "schedule_weekdays"):
            recurrence(row(schedule_type="weekly", schedule_weekdays=""))
        with self.assertRaisesRegex(RuleError, "valid_from"):
            recurrence(row(valid_from="soon"))
        # SQLite gives text for every column.
        rule = recurrence(row(valid_from="2026-01-01 00:00:00", schedule_time="09:00:00",
                              schedule_date="2026-12-07", schedule_type="once"))
        self.assertEqual(rule.date, MONDAY)


class Slots(unittest.TestCase):
    def test_once_fires_on_its_date_at_each_time(self):
        rule = recurrence(row(schedule_type="once", schedule_date=MONDAY,
                              schedule_times='["09:00","21:00"]'))
        self.assertEqual(rule.slotsBetween(at(MONDAY, 0), at(MONDAY + timedelta(days=30), 0)),
                         [at(MONDAY, 9), at(MONDAY, 21)])
        self.assertEqual(rule.nextAfter(at(MONDAY, 9)), at(MONDAY, 21))
        self.assertIsNone(rule.nextAfter(at(MONDAY, 21)))
        self.assertTrue(rule.isFinished(at(MONDAY, 21)))

    def test_once_without_a_date_fires_on_the_first_valid_day(self):
        rule = recurrence(row(schedule_type="once", valid_from=at(MONDAY, 8)))
        self.assertEqual(rule.nextAfter(at(MONDAY, 0)), at(MONDAY, 9))

    def test_daily_fires_every_day_at_each_time(self):
        rule = recurrence(row(schedule_times='["08:00", "20:30"]'))
        slots = rule.slotsBetween(at(MONDAY, 12), at(MONDAY + timedelta(days=2), 12))
        self.assertEqual(slots, [
            at(MONDAY, 20, 30),
            at(MONDAY + timedelta(days=1), 8), at(MONDAY + timedelta(days=1), 20, 30),
            at(MONDAY + timedelta(days=2), 8),
        ])

    def test_weekly_fires_only_on_its_weekdays(self):
        rule = recurrence(row(schedule_type="weekly", schedule_weekdays="wednesday,sunday",
                              schedule_time="10:15:00"))
        slots = rule.slotsBetween(at(MONDAY, 0), at(MONDAY + timedelta(days=14), 0))
        self.assertEqual([s.strftime("%a %d %H:%M") for s in slots],
                         ["Wed 09 10:15", "Sun 13 10:15", "Wed 16 10:15", "Sun 20 10:15"])
        self.assertEqual(rule.nextAfter(at(MONDAY, 0)), at(MONDAY + timedelta(days=2), 10, 15))
        # From Thursday the next is Sunday; from Sunday after the time, Wednesday.
        self.assertEqual(rule.nextAfter(at(MONDAY + timedelta(days=3), 0)),
                         at(MONDAY + timedelta(days=6), 10, 15))
        self.assertEqual(rule.nextAfter(at(MONDAY + timedelta(days=6), 10, 15)),
                         at(MONDAY + timedelta(days=9), 10, 15))

    def test_the_validity_window_bounds_every_kind(self):
        rule = recurrence(row(valid_from=at(MONDAY, 9, 0, 1), valid_until=at(MONDAY, 23) + timedelta(days=2)))
        self.assertEqual(rule.slotsBetween(at(MONDAY, 0), at(MONDAY + timedelta(days=9), 0)),
                         [at(MONDAY + timedelta(days=1), 9), at(MONDAY + timedelta(days=2), 9)])
        self.assertIsNone(rule.nextAfter(at(MONDAY + timedelta(days=2), 9)))
        self.assertEqual(rule.nextAfter(at(MONDAY, 0)), at(MONDAY + timedelta(days=1), 9))
        # valid_from and valid_until are inclusive.
        exact = recurrence(row(valid_from=at(MONDAY, 9), valid_until=at(MONDAY, 9)))
        self.assertEqual(exact.slotsBetween(at(MONDAY, 0), at(MONDAY, 23)), [at(MONDAY, 9)])

    def test_next_after_a_long_gap_in_the_window(self):
        rule = recurrence(row(schedule_type="weekly", schedule_weekdays="saturday",
                              valid_from=datetime(2027, 3, 1)))
        self.assertEqual(rule.nextAfter(datetime(2026, 1, 1)), None)  # valid_until is 2027-01-01
        later = recurrence(row(schedule_type="weekly", schedule_weekdays="saturday",
                               valid_from=datetime(2026, 3, 1)))
        self.assertEqual(later.nextAfter(datetime(2026, 1, 1)), datetime(2026, 3, 7, 9))


class Due(unittest.TestCase):
    def test_due_means_not_in_the_future_and_at_most_lateness_late(self):
        rule = recurrence(row())
        self.assertEqual(rule.due(at(MONDAY, 8, 59, 59), 600), [])
        self.assertEqual(rule.due(at(MONDAY, 9), 600), [at(MONDAY, 9)])
        self.assertEqual(rule.due(at(MONDAY, 9, 10), 600), [at(MONDAY, 9)])
        self.assertEqual(rule.due(at(MONDAY, 9, 10, 1), 600), [])

    def test_several_missed_slots_within_the_lateness_are_all_due(self):
        rule = recurrence(row(schedule_times='["09:00","09:20","09:40"]'))
        self.assertEqual(rule.due(at(MONDAY, 9, 45), 3600),
                         [at(MONDAY, 9), at(MONDAY, 9, 20), at(MONDAY, 9, 40)])

    def test_nothing_from_before_the_schedule_existed(self):
        rule = recurrence(row())
        self.assertEqual(rule.due(at(MONDAY, 9, 5), 600, notBefore=at(MONDAY, 9, 1)), [])
        self.assertEqual(rule.due(at(MONDAY, 9, 5), 600, notBefore=at(MONDAY, 9)), [at(MONDAY, 9)])

    def test_a_preview_lists_the_next_sends(self):
        rule = recurrence(row(schedule_type="weekly", schedule_weekdays="tuesday,friday",
                              schedule_times='["08:00","20:00"]', valid_until=at(MONDAY, 0) + timedelta(days=5)))
        self.assertEqual(rule.upcoming(at(MONDAY, 12), 10), [
            at(MONDAY + timedelta(days=1), 8), at(MONDAY + timedelta(days=1), 20),
            at(MONDAY + timedelta(days=4), 8), at(MONDAY + timedelta(days=4), 20),
        ])
        self.assertEqual(rule.upcoming(at(MONDAY, 12), 1), [at(MONDAY + timedelta(days=1), 8)])

    def test_describe(self):
        self.assertEqual(describe(recurrence(row(schedule_type="weekly",
                                                  schedule_weekdays="monday,thursday"))),
                         "weekly mon,thu 09:00")
        self.assertEqual(describe(recurrence(row(schedule_times='["07:30","19:00:30"]'))),
                         "daily 07:30,19:00:30")
        self.assertEqual(describe(recurrence(row(schedule_type="once", schedule_date=MONDAY))),
                         "once 2026-12-07 09:00")


class Recurrences(unittest.TestCase):
    def test_a_rule_built_directly(self):
        rule = Recurrence("weekly", (time(7),), datetime(2026, 12, 1), datetime(2026, 12, 31),
                          weekdays=frozenset({MONDAY.weekday()}))
        self.assertEqual(rule.nextAfter(datetime(2026, 12, 1)), at(MONDAY, 7))


class Properties(unittest.TestCase):
    """The rules agree with a brute-force walk over 16 days of random schedules."""

    def test_next_after_and_due_agree_with_a_walk(self):
        from hypothesis import given, settings, strategies as st

        minutes = st.integers(0, 24 * 60 - 1).map(lambda m: time(m // 60, m % 60))
        start = datetime(2026, 12, 1)

        @settings(max_examples=150, deadline=None)
        @given(
            kind=st.sampled_from(["once", "daily", "weekly"]),
            times=st.lists(minutes, min_size=1, max_size=4),
            days=st.sets(st.integers(0, 6), min_size=1),
            fromMinutes=st.integers(0, 3 * 24 * 60),
            spanMinutes=st.integers(0, 12 * 24 * 60),
            onceDay=st.integers(0, 10),
            afterMinutes=st.integers(0, 14 * 24 * 60),
            lateness=st.integers(0, 3 * 3600),
        )
        def check(kind, times, days, fromMinutes, spanMinutes, onceDay, afterMinutes, lateness):
            validFrom = start + timedelta(minutes=fromMinutes)
            rule = Recurrence(kind, tuple(sorted(set(times))), validFrom,
                              validFrom + timedelta(minutes=spanMinutes),
                              date=(start + timedelta(days=onceDay)).date(), weekdays=frozenset(days))

            def fires(moment):
                if not (rule.validFrom <= moment <= rule.validUntil) or moment.time() not in rule.times:
                    return False
                if kind == "once":
                    return moment.date() == rule.date
                return kind == "daily" or moment.weekday() in days

            # Every minute of the day that is one of the rule's times, over 16 days.
            candidates = sorted(datetime.combine((start + timedelta(days=d)).date(), t)
                                for d in range(16) for t in set(times))
            walk = [moment for moment in candidates if fires(moment)]
            after = start + timedelta(minutes=afterMinutes)
            expected = next((s for s in walk if s > after), None)
            self.assertEqual(rule.nextAfter(after), expected)
            self.assertEqual(rule.due(after, lateness),
                             [s for s in walk if after - timedelta(seconds=lateness) <= s <= after])

        check()
