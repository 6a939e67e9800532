"""The time words table: every phrase, in every language /language offers, lands on the time a person means
(echoed with its zone) or is refused with a word saying why.

Each row: the workspace's language, the clock (``now``) and zone, the phrase, and either the echo of the time it
must land on (``format_when``: local date, time, abbreviation and zone) or "refused" with a word the refusal holds.
Unless a row says otherwise it is Monday 23 Nov 2026, 11:00 in Paris.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from handlers.core.when import LANGUAGES, WhenError, format_when, parse_when

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # Monday, 11:00 CET in Paris
EVENING = datetime(2026, 11, 23, 20, 30, tzinfo=UTC)  # Monday, 21:30 CET in Paris
BEFORE_DST = datetime(2027, 3, 27, 10, 0, tzinfo=UTC)  # Saturday; clocks jump 02:00 -> 03:00 CET -> CEST that night
DST_NIGHT = datetime(2027, 3, 28, 0, 30, tzinfo=UTC)  # 01:30 CET, half an hour before the jump
PARIS = "Europe/Paris"
REFUSED = "refused"


def ok(language: str, text: str, shown: str, *, now: datetime = NOW, zone: str = PARIS) -> object:
    return pytest.param(language, now, zone, text, shown, None, id=f"{language}: {text}")


def no(language: str, text: str, word: str, *, now: datetime = NOW, zone: str = PARIS) -> object:
    return pytest.param(language, now, zone, text, REFUSED, word, id=f"{language}: {text} (refused)")


PHRASES = [
    ok('en', 'tomorrow 9am', 'Tue 24 Nov 2026 09:00 CET (Europe/Paris)'),
    ok('en', 'tomorrow 9:30am', 'Tue 24 Nov 2026 09:30 CET (Europe/Paris)'),
    ok('en', 'tomorrow 9.30', 'Tue 24 Nov 2026 09:30 CET (Europe/Paris)'),
    ok('en', 'tomorrow at 21:00', 'Tue 24 Nov 2026 21:00 CET (Europe/Paris)'),
    ok('en', 'tomorrow 21h', 'Tue 24 Nov 2026 21:00 CET (Europe/Paris)'),
    ok('en', 'tomorrow 21h30', 'Tue 24 Nov 2026 21:30 CET (Europe/Paris)'),
    ok('en', 'tomorrow 7pm', 'Tue 24 Nov 2026 19:00 CET (Europe/Paris)'),
    ok('en', 'tomorrow at 7:45 p.m.', 'Tue 24 Nov 2026 19:45 CET (Europe/Paris)'),
    ok('en', 'tomorrow noon', 'Tue 24 Nov 2026 12:00 CET (Europe/Paris)'),
    ok('en', '17:00', 'Mon 23 Nov 2026 17:00 CET (Europe/Paris)'),
    ok('en', 'at 17:00', 'Mon 23 Nov 2026 17:00 CET (Europe/Paris)'),
    ok('en', 'today 17:00', 'Mon 23 Nov 2026 17:00 CET (Europe/Paris)'),
    ok('en', '5pm', 'Mon 23 Nov 2026 17:00 CET (Europe/Paris)'),
    ok('en', '21h', 'Mon 23 Nov 2026 21:00 CET (Europe/Paris)'),
    ok('en', 'next tuesday 9:00', 'Tue 24 Nov 2026 09:00 CET (Europe/Paris)'),
    ok('en', 'tuesday 18:00', 'Tue 24 Nov 2026 18:00 CET (Europe/Paris)'),
    ok('en', 'on friday at 10:30', 'Fri 27 Nov 2026 10:30 CET (Europe/Paris)'),
    ok('en', 'next monday 10:00', 'Mon 30 Nov 2026 10:00 CET (Europe/Paris)'),
    ok('en', 'monday 10:00', 'Mon 30 Nov 2026 10:00 CET (Europe/Paris)'),
    ok('en', 'dec 3 9am', 'Thu 3 Dec 2026 09:00 CET (Europe/Paris)'),
    ok('en', '3 December 2026 14:00', 'Thu 3 Dec 2026 14:00 CET (Europe/Paris)'),
    ok('en', 'the day after tomorrow 10:00', 'Wed 25 Nov 2026 10:00 CET (Europe/Paris)'),
    ok('en', 'in 2 days 9am', 'Wed 25 Nov 2026 09:00 CET (Europe/Paris)'),
    ok('en', 'in 2 hours', 'Mon 23 Nov 2026 13:00 CET (Europe/Paris)'),
    ok('en', 'in 90 minutes', 'Mon 23 Nov 2026 12:30 CET (Europe/Paris)'),
    ok('en', 'in 2h', 'Mon 23 Nov 2026 13:00 CET (Europe/Paris)'),
    ok('en', '2 hours from now', 'Mon 23 Nov 2026 13:00 CET (Europe/Paris)'),
    ok('en', 'in 3 days', 'Thu 26 Nov 2026 11:00 CET (Europe/Paris)'),
    ok('en', '12am tomorrow', 'Tue 24 Nov 2026 00:00 CET (Europe/Paris)'),
    ok('en', 'tomorrow 12pm', 'Tue 24 Nov 2026 12:00 CET (Europe/Paris)'),
    ok('en', '2026-12-01 18:30', 'Tue 1 Dec 2026 18:30 CET (Europe/Paris)'),
    ok('en', '2026-12-01 18:30 America/New_York', 'Tue 1 Dec 2026 18:30 EST (America/New_York)'),
    ok('en', 'tomorrow 9am UTC', 'Tue 24 Nov 2026 09:00 UTC'),
    no('en', 'tomorrow', 'no time of day'),
    no('en', 'next tuesday', 'no time of day'),
    no('en', 'next week', 'not which day or what time'),
    no('en', 'next month', 'not which day or what time'),
    no('en', 'dec 3', 'no time of day'),
    no('en', '2026-12-01', 'no time of day'),
    no('en', 'tomorrow 9am 10am', 'times of day'),
    no('en', 'tomorrow 9:00 17:00', 'times of day'),
    no('en', 'in 2 hours 9am', 'two times'),
    no('en', '25:00', "isn't a time of day"),
    no('en', '9:75', "isn't a time of day"),
    no('en', 'tomorrow 24:00', "isn't a time of day"),
    no('en', '13pm', "isn't a time of day"),
    no('en', 'tomorrow at 9', 'morning or evening'),
    no('en', 'friday 9', 'morning or evening'),
    no('en', 'tomorrow 25', "isn't a time of day"),
    no('en', 'tomorrow midnight', 'start or the end'),
    no('en', 'next week 10:00', 'not which day or what time'),
    no('en', '10:00', 'already past today'),
    no('en', 'yesterday 9am', 'in the past'),
    no('en', 'tomorrow 9am EST', 'zone abbreviation'),
    no('en', "banana o'clock", "couldn't read"),
    no('en', 'now', "not 'now'"),
    ok('ru', 'завтра в 9', 'Tue 24 Nov 2026 09:00 CET (Europe/Paris)'),
    ok('ru', 'завтра в 9:30', 'Tue 24 Nov 2026 09:30 CET (Europe/Paris)'),
    ok('ru', 'завтра в 21:00', 'Tue 24 Nov 2026 21:00 CET (Europe/Paris)'),
    ok('ru', 'завтра в 21', 'Tue 24 Nov 2026 21:00 CET (Europe/Paris)'),
    ok('ru', 'завтра 21:00', 'Tue 24 Nov 2026 21:00 CET (Europe/Paris)'),
    ok('ru', 'завтра в 9 утра', 'Tue 24 Nov 2026 09:00 CET (Europe/Paris)'),
    ok('ru', 'завтра в 9 вечера', 'Tue 24 Nov 2026 21:00 CET (Europe/Paris)'),
    ok('ru', 'завтра в 2 дня', 'Tue 24 Nov 2026 14:00 CET (Europe/Paris)'),
    ok('ru', 'завтра в 2 ночи', 'Tue 24 Nov 2026 02:00 CET (Europe/Paris)'),
    ok('ru', 'сегодня в 15', 'Mon 23 Nov 2026 15:00 CET (Europe/Paris)'),
    ok('ru', 'сегодня в 15:30', 'Mon 23 Nov 2026 15:30 CET (Europe/Paris)'),
    ok('ru', 'в 18:00', 'Mon 23 Nov 2026 18:00 CET (Europe/Paris)'),
    ok('ru', 'послезавтра в 7 утра', 'Wed 25 Nov 2026 07:00 CET (Europe/Paris)'),
    ok('ru', 'в пятницу в 18:00', 'Fri 27 Nov 2026 18:00 CET (Europe/Paris)'),
    ok('ru', 'в пятницу в 18', 'Fri 27 Nov 2026 18:00 CET (Europe/Paris)'),
    ok('ru', 'во вторник в 10:00', 'Tue 24 Nov 2026 10:00 CET (Europe/Paris)'),
    ok('ru', 'в следующий вторник в 10', 'Tue 24 Nov 2026 10:00 CET (Europe/Paris)'),
    ok('ru', 'в понедельник в 10:00', 'Mon 30 Nov 2026 10:00 CET (Europe/Paris)'),
    ok('ru', '3 декабря в 14:30', 'Thu 3 Dec 2026 14:30 CET (Europe/Paris)'),
    ok('ru', '24 декабря 2026 в 18:00', 'Thu 24 Dec 2026 18:00 CET (Europe/Paris)'),
    ok('ru', 'через 2 часа', 'Mon 23 Nov 2026 13:00 CET (Europe/Paris)'),
    ok('ru', 'через 90 минут', 'Mon 23 Nov 2026 12:30 CET (Europe/Paris)'),
    ok('ru', 'через 3 дня', 'Thu 26 Nov 2026 11:00 CET (Europe/Paris)'),
    ok('ru', 'через 2 дня в 9:00', 'Wed 25 Nov 2026 09:00 CET (Europe/Paris)'),
    ok('ru', 'завтра в полдень', 'Tue 24 Nov 2026 12:00 CET (Europe/Paris)'),
    no('ru', 'завтра', 'no time of day'),
    no('ru', 'в пятницу', 'no time of day'),
    no('ru', '3 декабря', 'no time of day'),
    no('ru', 'на следующей неделе', 'not which day or what time'),
    no('ru', 'завтра 9', 'morning or evening'),
    no('ru', 'завтра в 9 в 10', 'times of day'),
    no('ru', 'завтра в 9:00 и в 17:00', 'times of day'),
    no('ru', 'завтра в 25:00', "isn't a time of day"),
    no('ru', 'завтра в 9:75', "isn't a time of day"),
    no('ru', 'завтра в полночь', 'start or the end'),
    no('ru', 'в 10:00', 'already past today'),
    no('ru', 'вчера в 9:00', 'in the past'),
    no('ru', 'сейчас', "not 'now'"),
    no('ru', 'через 2 часа в 9:00', 'two times'),
    no('ru', 'tomorrow 9am', "couldn't read"),
    ok('fr', 'demain à 21h', 'Tue 24 Nov 2026 21:00 CET (Europe/Paris)'),
    ok('fr', 'demain 21h30', 'Tue 24 Nov 2026 21:30 CET (Europe/Paris)'),
    ok('fr', 'demain à 9h', 'Tue 24 Nov 2026 09:00 CET (Europe/Paris)'),
    ok('fr', 'demain à 9h15', 'Tue 24 Nov 2026 09:15 CET (Europe/Paris)'),
    ok('fr', 'demain à 9 heures', 'Tue 24 Nov 2026 09:00 CET (Europe/Paris)'),
    ok('fr', 'demain à 21:00', 'Tue 24 Nov 2026 21:00 CET (Europe/Paris)'),
    ok('fr', 'demain midi', 'Tue 24 Nov 2026 12:00 CET (Europe/Paris)'),
    ok('fr', "aujourd'hui à 15h", 'Mon 23 Nov 2026 15:00 CET (Europe/Paris)'),
    ok('fr', 'à 18h', 'Mon 23 Nov 2026 18:00 CET (Europe/Paris)'),
    ok('fr', '18h', 'Mon 23 Nov 2026 18:00 CET (Europe/Paris)'),
    ok('fr', 'après-demain 10h', 'Wed 25 Nov 2026 10:00 CET (Europe/Paris)'),
    ok('fr', 'vendredi 18h', 'Fri 27 Nov 2026 18:00 CET (Europe/Paris)'),
    ok('fr', 'vendredi à 18h30', 'Fri 27 Nov 2026 18:30 CET (Europe/Paris)'),
    ok('fr', 'mardi prochain à 9h', 'Tue 24 Nov 2026 09:00 CET (Europe/Paris)'),
    ok('fr', 'lundi 10h', 'Mon 30 Nov 2026 10:00 CET (Europe/Paris)'),
    ok('fr', 'le 3 décembre à 14h', 'Thu 3 Dec 2026 14:00 CET (Europe/Paris)'),
    ok('fr', 'le 24 décembre 2026 à 18h', 'Thu 24 Dec 2026 18:00 CET (Europe/Paris)'),
    ok('fr', '3 décembre 14:30', 'Thu 3 Dec 2026 14:30 CET (Europe/Paris)'),
    ok('fr', 'dans 2 heures', 'Mon 23 Nov 2026 13:00 CET (Europe/Paris)'),
    ok('fr', 'dans 2h', 'Mon 23 Nov 2026 13:00 CET (Europe/Paris)'),
    ok('fr', 'dans 90 minutes', 'Mon 23 Nov 2026 12:30 CET (Europe/Paris)'),
    ok('fr', 'dans 3 jours', 'Thu 26 Nov 2026 11:00 CET (Europe/Paris)'),
    ok('fr', 'dans 2 jours à 9h', 'Wed 25 Nov 2026 09:00 CET (Europe/Paris)'),
    no('fr', 'demain', 'no time of day'),
    no('fr', 'le 3 décembre', 'no time of day'),
    no('fr', 'mardi prochain', 'no time of day'),
    no('fr', 'la semaine prochaine', 'not which day or what time'),
    no('fr', 'demain à 9', 'morning or evening'),
    no('fr', 'demain à 9h à 10h', 'times of day'),
    no('fr', 'demain 9h 17h', 'times of day'),
    no('fr', 'demain 25h', "isn't a time of day"),
    no('fr', 'demain à 9h75', "isn't a time of day"),
    no('fr', 'demain minuit', 'start or the end'),
    no('fr', '9h', 'already past today'),
    no('fr', 'hier à 9h', 'in the past'),
    no('fr', 'maintenant', "not 'now'"),
    ok('fr', 'demain 9am', 'Tue 24 Nov 2026 09:00 CET (Europe/Paris)'),
    ok('de', 'morgen 9 Uhr', 'Tue 24 Nov 2026 09:00 CET (Europe/Paris)'),
    ok('de', 'morgen um 9 Uhr', 'Tue 24 Nov 2026 09:00 CET (Europe/Paris)'),
    ok('de', 'morgen 9:30 Uhr', 'Tue 24 Nov 2026 09:30 CET (Europe/Paris)'),
    ok('de', 'morgen 9 Uhr 30', 'Tue 24 Nov 2026 09:30 CET (Europe/Paris)'),
    ok('de', 'morgen 21 Uhr', 'Tue 24 Nov 2026 21:00 CET (Europe/Paris)'),
    ok('de', 'morgen um 21:00', 'Tue 24 Nov 2026 21:00 CET (Europe/Paris)'),
    ok('de', 'morgen 18.30 Uhr', 'Tue 24 Nov 2026 18:30 CET (Europe/Paris)'),
    ok('de', 'morgen mittag', 'Tue 24 Nov 2026 12:00 CET (Europe/Paris)'),
    ok('de', 'heute 21 Uhr', 'Mon 23 Nov 2026 21:00 CET (Europe/Paris)'),
    ok('de', 'heute um 15:30', 'Mon 23 Nov 2026 15:30 CET (Europe/Paris)'),
    ok('de', '17:00', 'Mon 23 Nov 2026 17:00 CET (Europe/Paris)'),
    ok('de', 'übermorgen 18.30 Uhr', 'Wed 25 Nov 2026 18:30 CET (Europe/Paris)'),
    ok('de', 'Freitag 18 Uhr', 'Fri 27 Nov 2026 18:00 CET (Europe/Paris)'),
    ok('de', 'am Freitag um 18 Uhr', 'Fri 27 Nov 2026 18:00 CET (Europe/Paris)'),
    ok('de', 'nächsten Dienstag 10 Uhr', 'Tue 24 Nov 2026 10:00 CET (Europe/Paris)'),
    ok('de', 'Montag 10 Uhr', 'Mon 30 Nov 2026 10:00 CET (Europe/Paris)'),
    ok('de', 'am 3. Dezember 14:30', 'Thu 3 Dec 2026 14:30 CET (Europe/Paris)'),
    ok('de', '3. Dezember um 14 Uhr', 'Thu 3 Dec 2026 14:00 CET (Europe/Paris)'),
    ok('de', '24. Dezember 2026 18 Uhr', 'Thu 24 Dec 2026 18:00 CET (Europe/Paris)'),
    ok('de', 'in 2 Stunden', 'Mon 23 Nov 2026 13:00 CET (Europe/Paris)'),
    ok('de', 'in 90 Minuten', 'Mon 23 Nov 2026 12:30 CET (Europe/Paris)'),
    ok('de', 'in 3 Tagen', 'Thu 26 Nov 2026 11:00 CET (Europe/Paris)'),
    ok('de', 'in 2 Tagen um 9 Uhr', 'Wed 25 Nov 2026 09:00 CET (Europe/Paris)'),
    no('de', 'morgen', 'no time of day'),
    no('de', 'nächsten Dienstag', 'no time of day'),
    no('de', '3. Dezember', 'no time of day'),
    no('de', 'nächste Woche', 'not which day or what time'),
    no('de', 'morgen um 9', 'morning or evening'),
    no('de', 'morgen 9 Uhr 10 Uhr', 'times of day'),
    no('de', 'morgen 9 Uhr und 17 Uhr', 'times of day'),
    no('de', 'morgen 25 Uhr', "isn't a time of day"),
    no('de', 'morgen 9:75', "isn't a time of day"),
    no('de', 'morgen Mitternacht', 'start or the end'),
    no('de', '9 Uhr', 'already past today'),
    no('de', 'gestern 9 Uhr', 'in the past'),
    no('de', 'jetzt', "not 'now'"),
    no('de', 'tomorrow 9am', "couldn't read"),
    ok('es', 'mañana a las 9:00', 'Tue 24 Nov 2026 09:00 CET (Europe/Paris)'),
    ok('es', 'mañana a las 9:30', 'Tue 24 Nov 2026 09:30 CET (Europe/Paris)'),
    ok('es', 'mañana a las 21', 'Tue 24 Nov 2026 21:00 CET (Europe/Paris)'),
    ok('es', 'mañana a las 21:00', 'Tue 24 Nov 2026 21:00 CET (Europe/Paris)'),
    ok('es', 'mañana 21:00', 'Tue 24 Nov 2026 21:00 CET (Europe/Paris)'),
    ok('es', 'mañana a las 9 de la mañana', 'Tue 24 Nov 2026 09:00 CET (Europe/Paris)'),
    ok('es', 'mañana a las 9 de la noche', 'Tue 24 Nov 2026 21:00 CET (Europe/Paris)'),
    ok('es', 'mañana a las 4 de la tarde', 'Tue 24 Nov 2026 16:00 CET (Europe/Paris)'),
    ok('es', 'mañana al mediodía', 'Tue 24 Nov 2026 12:00 CET (Europe/Paris)'),
    ok('es', 'hoy a las 15:00', 'Mon 23 Nov 2026 15:00 CET (Europe/Paris)'),
    ok('es', 'a las 18:00', 'Mon 23 Nov 2026 18:00 CET (Europe/Paris)'),
    ok('es', 'pasado mañana a las 9:00', 'Wed 25 Nov 2026 09:00 CET (Europe/Paris)'),
    ok('es', 'el viernes 18:00', 'Fri 27 Nov 2026 18:00 CET (Europe/Paris)'),
    ok('es', 'viernes a las 18:00', 'Fri 27 Nov 2026 18:00 CET (Europe/Paris)'),
    ok('es', 'el próximo martes a las 10:00', 'Tue 24 Nov 2026 10:00 CET (Europe/Paris)'),
    ok('es', 'lunes a las 10:00', 'Mon 30 Nov 2026 10:00 CET (Europe/Paris)'),
    ok('es', 'el 3 de diciembre a las 14:30', 'Thu 3 Dec 2026 14:30 CET (Europe/Paris)'),
    ok('es', '24 de diciembre de 2026 a las 18:00', 'Thu 24 Dec 2026 18:00 CET (Europe/Paris)'),
    ok('es', 'en 2 horas', 'Mon 23 Nov 2026 13:00 CET (Europe/Paris)'),
    ok('es', 'en 90 minutos', 'Mon 23 Nov 2026 12:30 CET (Europe/Paris)'),
    ok('es', 'dentro de 2 horas', 'Mon 23 Nov 2026 13:00 CET (Europe/Paris)'),
    ok('es', 'en 3 días', 'Thu 26 Nov 2026 11:00 CET (Europe/Paris)'),
    ok('es', 'en 2 días a las 9:00', 'Wed 25 Nov 2026 09:00 CET (Europe/Paris)'),
    no('es', 'mañana', 'no time of day'),
    no('es', 'el próximo martes', 'no time of day'),
    no('es', 'el 3 de diciembre', 'no time of day'),
    no('es', 'la próxima semana', 'not which day or what time'),
    no('es', 'mañana a las 9', 'morning or evening'),
    no('es', 'mañana a las 9:00 y a las 10:00', 'times of day'),
    no('es', 'mañana a las 9:00 10:00', 'times of day'),
    no('es', 'mañana a las 25:00', "isn't a time of day"),
    no('es', 'mañana a las 9:75', "isn't a time of day"),
    no('es', 'mañana a medianoche', 'start or the end'),
    no('es', 'a las 10:00', 'already past today'),
    no('es', 'ayer a las 9:00', 'in the past'),
    no('es', 'ahora', "not 'now'"),
    no('es', 'tomorrow 9am', "couldn't read"),
    no('en', 'tonight 9:00', "can't tell which"),
    ok('en', 'tonight 21:00', 'Mon 23 Nov 2026 21:00 CET (Europe/Paris)'),
    ok('en', 'tomorrow morning 9:00', 'Tue 24 Nov 2026 09:00 CET (Europe/Paris)'),
    no('en', 'tomorrow morning 21:00', "can't tell which"),
    no('en', 'tonight', 'no time of day'),
    ok('en', 'in an hour', 'Mon 23 Nov 2026 12:00 CET (Europe/Paris)'),
    ok('en', '2026-12-01T18:30:00+02:00', 'Tue 1 Dec 2026 17:30 CET (Europe/Paris)'),
    ok('en', '18:30 +05:30', 'Mon 23 Nov 2026 14:00 CET (Europe/Paris)'),
    no('en', '03/04/2027 10:00', 'could mean'),
    no('en', '2027-03-28 02:30', "doesn't exist"),
    no('en', '2029-01-01 10:00', 'two years'),
    # other zones, other clocks
    ok("en", "tomorrow 9am", "Tue 24 Nov 2026 09:00 EST (America/New_York)", zone="America/New_York"),
    ok("en", "tomorrow 21h", "Tue 24 Nov 2026 21:00 EST (America/New_York)", zone="America/New_York"),
    ok("ru", "завтра в 9", "Tue 24 Nov 2026 09:00 MSK (Europe/Moscow)", zone="Europe/Moscow"),
    ok("ru", "сегодня в 15:30", "Mon 23 Nov 2026 15:30 MSK (Europe/Moscow)", zone="Europe/Moscow"),
    ok("de", "morgen 9 Uhr", "Tue 24 Nov 2026 09:00 CET (Europe/Berlin)", zone="Europe/Berlin"),
    ok("es", "mañana a las 9:00", "Tue 24 Nov 2026 09:00 CET (Europe/Madrid)", zone="Europe/Madrid"),
    ok("fr", "demain à 21h", "Tue 24 Nov 2026 21:00 EST (America/Toronto)", zone="America/Toronto"),
    ok("es", "mañana a las 21", "Tue 24 Nov 2026 21:00 -03 (America/Argentina/Buenos_Aires)",
       zone="America/Argentina/Buenos_Aires"),
    no("en", "21:00", "already past today", now=EVENING),
    ok("en", "21:45", "Mon 23 Nov 2026 21:45 CET (Europe/Paris)", now=EVENING),
    ok("en", "tomorrow 21h", "Tue 24 Nov 2026 21:00 CET (Europe/Paris)", now=EVENING),
    no("fr", "à 21h", "already past today", now=EVENING),
    no("de", "heute 21 Uhr", "already past today", now=EVENING),
    ok("en", "tomorrow 9am", "Sun 28 Mar 2027 09:00 CEST (Europe/Paris)", now=BEFORE_DST),
    ok("de", "morgen 9 Uhr", "Sun 28 Mar 2027 09:00 CEST (Europe/Paris)", now=BEFORE_DST),
    ok("fr", "dans 2 heures", "Sun 28 Mar 2027 04:30 CEST (Europe/Paris)", now=DST_NIGHT),
    ok("ru", "через 2 часа", "Sun 28 Mar 2027 04:30 CEST (Europe/Paris)", now=DST_NIGHT),
    no("de", "morgen 2:30 Uhr", "doesn't exist", now=BEFORE_DST),
    no("ru", "завтра в 2:30", "doesn't exist", now=BEFORE_DST),
]


@pytest.mark.parametrize(("language", "now", "zone", "text", "expected", "word"), PHRASES)
def test_a_phrase_lands_on_the_time_meant_or_is_refused_with_a_reason(
    language: str, now: datetime, zone: str, text: str, expected: str, word: str | None
) -> None:
    if expected == REFUSED:
        with pytest.raises(WhenError) as caught:
            parse_when(text, now=now, default_tz=zone, language=language)
        assert word is not None and word in str(caught.value)
    else:
        when = parse_when(text, now=now, default_tz=zone, language=language)
        assert format_when(when.at, when.tz) == expected


def test_the_table_has_at_least_150_phrases_in_every_language() -> None:
    assert len(PHRASES) >= 150
    languages = [param.values[0] for param in PHRASES]  # type: ignore[attr-defined]
    assert set(languages) == set(LANGUAGES)
    assert min(languages.count(code) for code in LANGUAGES) >= 25


ASKING = [param for param in PHRASES if param.values[5] in ("no time of day", "times of day")]  # type: ignore[attr-defined]


@pytest.mark.parametrize(("language", "now", "zone", "text", "expected", "word"), ASKING)
def test_the_example_a_refusal_gives_is_read_as_a_time(
    language: str, now: datetime, zone: str, text: str, expected: str, word: str
) -> None:
    """'next tuesday' asks for a time with 'next tuesday 9:00': typing that example works."""
    with pytest.raises(WhenError) as caught:
        parse_when(text, now=now, default_tz=zone, language=language)
    example = re.search(r"e\.g\. '([^']+)'", str(caught.value))
    assert example is not None, str(caught.value)
    assert parse_when(example.group(1), now=now, default_tz=zone, language=language).at > now


@pytest.mark.parametrize("text", ["25:00", "tomorrow 25:00", "9:75", "24:00"])
def test_an_impossible_clock_time_is_never_suggested_back(text: str) -> None:
    with pytest.raises(WhenError) as caught:
        parse_when(text, now=NOW, default_tz=PARIS)
    message = str(caught.value)
    assert "isn't a time of day" in message
    assert f"tomorrow {text.split()[-1]}" not in message
