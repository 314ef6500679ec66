"""``wirewatch rules eval`` over real published texts, through the real CLI.

``labels.jsonl`` holds headlines and lead paragraphs of news articles in English, Arabic,
Russian and Korean (sources in ``PROVENANCE.md``), each judged by an analyst's intent for
every bundled rule, with hard negatives (the Kursk submarine, Russian troops without North
Korea, North Korean missile tests alone, 무기한).  ``labels.jsonl`` and ``holdout.jsonl`` are
the sets the bundled config was first tuned on.  Each ``fresh*.jsonl`` (``fresh.jsonl``,
then ``fresh2.jsonl`` to ``fresh53.jsonl``) was gathered as an out-of-sample set (from
``fresh10.jsonl`` on, labelled and committed before any rule ran on it), measured once, and
then had its disagreements read and fixed in the next round, so all of them are tuning sets
now.  Their sources, sizes, once-measured figures and
fixes are in ``PROVENANCE.md``; the sets kept small because the stored pages on the topic ran
out are in ``SMALL_SETS``.
The bundled config must keep precision and recall per language at or above the floors below; the other tests pin the
command's contract: the table, the JSON document, marked words, and exit codes for usage
errors only.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

HERE = Path(__file__).parent
LABELS = HERE / "labels.jsonl"
HOLDOUT = HERE / "holdout.jsonl"
FRESH = HERE / "fresh.jsonl"
FRESH2 = HERE / "fresh2.jsonl"
FRESH3 = HERE / "fresh3.jsonl"
FRESH4 = HERE / "fresh4.jsonl"
FRESH5 = HERE / "fresh5.jsonl"
FRESH6 = HERE / "fresh6.jsonl"
FRESH7 = HERE / "fresh7.jsonl"
FRESH8 = HERE / "fresh8.jsonl"
FRESH9 = HERE / "fresh9.jsonl"
FRESH10 = HERE / "fresh10.jsonl"
FRESH11 = HERE / "fresh11.jsonl"
FRESH12 = HERE / "fresh12.jsonl"
FRESH13 = HERE / "fresh13.jsonl"
FRESH14 = HERE / "fresh14.jsonl"
FRESH15 = HERE / "fresh15.jsonl"
FRESH16 = HERE / "fresh16.jsonl"
FRESH17 = HERE / "fresh17.jsonl"
FRESH18 = HERE / "fresh18.jsonl"
FRESH19 = HERE / "fresh19.jsonl"
FRESH20 = HERE / "fresh20.jsonl"
FRESH21 = HERE / "fresh21.jsonl"
FRESH22 = HERE / "fresh22.jsonl"
FRESH23 = HERE / "fresh23.jsonl"
FRESH24 = HERE / "fresh24.jsonl"
FRESH25 = HERE / "fresh25.jsonl"
FRESH26 = HERE / "fresh26.jsonl"
FRESH27 = HERE / "fresh27.jsonl"
FRESH28 = HERE / "fresh28.jsonl"
FRESH29 = HERE / "fresh29.jsonl"
FRESH30 = HERE / "fresh30.jsonl"
FRESH31 = HERE / "fresh31.jsonl"
FRESH32 = HERE / "fresh32.jsonl"
FRESH33 = HERE / "fresh33.jsonl"
FRESH34 = HERE / "fresh34.jsonl"
FRESH35 = HERE / "fresh35.jsonl"
FRESH36 = HERE / "fresh36.jsonl"
FRESH37 = HERE / "fresh37.jsonl"
FRESH38 = HERE / "fresh38.jsonl"
FRESH39 = HERE / "fresh39.jsonl"
FRESH40 = HERE / "fresh40.jsonl"
FRESH41 = HERE / "fresh41.jsonl"
FRESH42 = HERE / "fresh42.jsonl"
FRESH43 = HERE / "fresh43.jsonl"
FRESH44 = HERE / "fresh44.jsonl"
FRESH45 = HERE / "fresh45.jsonl"
FRESH46 = HERE / "fresh46.jsonl"
FRESH47 = HERE / "fresh47.jsonl"
FRESH48 = HERE / "fresh48.jsonl"
FRESH49 = HERE / "fresh49.jsonl"
FRESH50 = HERE / "fresh50.jsonl"
FRESH51 = HERE / "fresh51.jsonl"
FRESH52 = HERE / "fresh52.jsonl"
FRESH53 = HERE / "fresh53.jsonl"
FRESH_SETS = [FRESH, FRESH2, FRESH3, FRESH4, FRESH5, FRESH6, FRESH7, FRESH8, FRESH9, FRESH10, FRESH11, FRESH12]
FRESH_SETS += [FRESH13, FRESH14, FRESH15, FRESH16, FRESH17, FRESH18, FRESH19, FRESH20, FRESH21, FRESH22]
FRESH_SETS += [FRESH23, FRESH24, FRESH25, FRESH26, FRESH27, FRESH28, FRESH29, FRESH30, FRESH31]
FRESH_SETS += [FRESH32, FRESH33, FRESH34, FRESH35, FRESH36, FRESH37, FRESH38, FRESH39, FRESH40, FRESH41]
FRESH_SETS += [FRESH42, FRESH43, FRESH44, FRESH45, FRESH46, FRESH47]
FRESH_SETS += [FRESH48, FRESH49, FRESH50, FRESH51, FRESH52, FRESH53]
CONFIG = ROOT / "config.toml"
MADE_UP = HERE / "made_up.toml"
LANGUAGES = ("en", "ar", "ru", "ko")
# Per-language floors on the bundled config (measured figures are in ARCHITECTURE.md).
FLOORS = dict.fromkeys(LANGUAGES, (0.97, 0.97))
# (precision, recall) floors on the sets measured in PROVENANCE.md, just under what was
# measured, so that losing one more (text, rule) pair of a language fails.
# holdout.jsonl measured en 1.000/1.000, ar 1.000/0.769, ru 1.000/1.000, ko 1.000/1.000
# (ar 0.923 since the seventh round).
# fresh.jsonl and fresh2.jsonl were raised on 2026-12-07 after their known errors were
# fixed (they are tuning sets from then on): fresh.jsonl now en 1.000/1.000,
# ar 0.970/1.000, ru 1.000/1.000, ko 1.000/0.982 (was ar 0.969/0.969, ru 1.000/0.971,
# ko 0.982/0.947); fresh2.jsonl now 1.000/1.000 in every language (was ar 0.833/1.000,
# ru 0.909/1.000).  fresh3.jsonl was measured once on 2026-12-07 (en 0.974/0.860,
# ar 1.000/0.861, ru 1.000/0.952, ko 0.982/0.966), then its errors were fixed and it became
# a tuning set: now en 1.000/0.977, ar 1.000/0.972, ru 1.000/1.000, ko 1.000/1.000, and
# fresh.jsonl's Korean recall rose to 1.000 with the same fixes, so both floors were raised.
# fresh4.jsonl (130 texts, committed before any rule ran on them) was measured once on
# 2026-12-07: en 0.975/0.929, ar 1.000/0.897, ru 0.941/0.970, ko 1.000/0.943; then its
# disagreements were read and fixed (fourth round, PROVENANCE.md), so it is a tuning set
# now: en 0.977/1.000, ar 1.000/1.000, ru 0.971/1.000, ko 1.000/1.000.
# fresh5.jsonl (137 texts, committed before any rule ran on them) was measured once on
# 2026-12-07 on the fourth round's config: en 0.971/1.000, ar 1.000/0.974, ru 0.944/0.919,
# ko 1.000/0.900; then its disagreements were read and fixed (fifth round, PROVENANCE.md),
# so it is a tuning set now: 1.000/1.000 in every language; fresh4.jsonl's Russian precision
# rose to 1.000 with the same fixes (the Interfax dateline), so its floor was raised too.
# fresh6.jsonl (132 texts, committed before any rule ran on them) was measured once on
# 2026-12-07 on the fifth round's config: en 1.000/0.952, ar 0.972/0.972, ru 1.000/0.925,
# ko 0.963/0.981; then its disagreements were read and fixed (sixth round, PROVENANCE.md),
# so it is a tuning set now: 1.000/1.000 in every language, and its floors were raised.
# fresh7.jsonl (129 texts, committed before any rule ran on them) was measured once on
# 2026-12-07 on the sixth round's config: en 0.968/0.811, ar 1.000/0.879, ru 1.000/0.967,
# ko 0.980/0.891; then its disagreements were read and fixed (seventh round, PROVENANCE.md),
# so it is a tuning set now: en, ar, ru 1.000/1.000, ko 1.000/0.982 (f7-ko-23 left), and its
# floors were raised; holdout.jsonl's Arabic recall rose to 0.923 with the same fixes (كيم
# beside Kursk), so its floor was raised too.
# fresh8.jsonl (126 texts, committed before any rule ran on them) was measured once on
# 2026-12-07 on the seventh round's config: en 1.000/0.861, ar 1.000/0.893, ru 1.000/0.895,
# ko 0.984/0.953; then its disagreements were read and fixed (eighth round, PROVENANCE.md:
# troops named by what they did, arms without a weapon word, leaders and officials by role,
# the Arabic "agreement"), and f8-ko-17's label was corrected (its subtitle says North Korean
# troops are already fighting), so it is a tuning set now: 1.000/1.000 in every language, and
# its floors were raised. No other set's figures changed (fresh3's h3-en-25 and h3-ru-23 were
# relabelled as troops to match fresh8's judgement on Putin's thanks for the Kursk support).
# fresh9.jsonl (121 texts, committed before any rule ran on them) was measured once on
# 2026-12-07 on the eighth round's config: en 1.000/0.939, ar 0.923/0.857, ru 0.960/0.960,
# ko 1.000/0.915; then its disagreements were read and fixed (ninth round, PROVENANCE.md:
# Pyongyang's and Moscow's names for the war as the troops' place, Arabic possessive and
# accusative troop words, 북 before a troop word, 추모 and "lost N soldiers" as casualties,
# أسر after a word of care as families, warplanes and attack drones as arms, arms exhibitions,
# a minister in the headline), so it is a tuning set now: 1.000/1.000 in every language, and
# its floors were raised. No other set's figures changed.
# fresh10.jsonl (126 texts, committed before any rule ran on them, gathered after the ninth
# round was committed) was measured once on 2026-12-07 on the ninth round's config:
# en 0.969/0.861, ar 0.920/0.821, ru 0.917/0.917, ko 1.000/0.956 (overall 0.960/0.895, 109 of
# 126 exactly right); then its disagreements were read and fixed (tenth round, PROVENANCE.md:
# weapon systems by type, Arabic indefinite accusatives, units and their commanders,
# "eliminated", the camera sense of "captured", thanks for the army's support, a bare "treaty"
# beside North Korea, "speaks with" in person, Kim's visits to China, satellite technology), so
# it is a tuning set now: en, ar, ko 1.000/1.000, ru 0.960/1.000 (f10-ru-17 left), and its
# floors were raised. fresh7.jsonl's Korean recall rose to 1.000 with the same fixes (f7-ko-23,
# Putin's thanks for the army's support), so its floor was raised too; no other set changed.
# fresh11.jsonl (122 texts, committed before any rule ran on them, gathered after the tenth
# round was committed) was measured once on 2026-12-07 on the tenth round's config:
# en 1.000/1.000, ar 1.000/0.967, ru 1.000/0.952, ko 0.931/0.964 (overall 0.972/0.972, 114 of
# 122 exactly right); then its disagreements were read and fixed (eleventh round, PROVENANCE.md:
# detention words as casualties, the army's losses by 피해, Russian "договор" beside North Korea,
# Choe by surname and title, the Korean digest on 북러 only with a topic word and not on embassy
# visits, weapons the soldiers are armed with), so it is a tuning set now: 1.000/1.000 in every
# language (122 of 122 exactly right), and its floors were raised. No other set changed.
# fresh12.jsonl (135 texts, committed before any rule ran on them, gathered after the eleventh
# round was committed) was measured once on 2026-12-07 on the eleventh round's config:
# en 0.971/0.895, ar 0.966/0.933, ru 1.000/0.969, ko 1.000/0.983 (overall 0.987/0.950, 127 of
# 135 exactly right); then its disagreements were read and fixed (twelfth round, PROVENANCE.md:
# Russia's own forces kept apart from North Korea's, "North Korean(s)" as a noun before a
# stationing or casualty participle, capture and arrest words beside the army's name, Korean
# casualty verbs, "lost" up to six words before the named soldiers, the Shoygu spelling and the
# English "Security Council Secretary", a treaty word within twelve words of North Korea), so it
# is a tuning set now: 1.000/1.000 in every language (135 of 135 exactly right), and its floors
# were raised. No other set changed.
# fresh13.jsonl (121 texts, committed before any rule ran on them, gathered after the twelfth
# round was committed) was measured once on 2026-12-07 on the twelfth round's config:
# en 1.000/0.969, ar 0.960/0.923, ru 1.000/0.923, ko 0.922/1.000 (overall 0.962/0.962, 111 of
# 121 exactly right); then its disagreements were read and fixed (thirteenth round, PROVENANCE.md:
# words glued by a page's lost link spaces cut before a capital in the analyser, "вооруженные силы
# КНДР" as the army's name, an agreement word beside the mutual-aid clause's armed attack as the
# treaty, مباحثات and "прибыл к" as headline meeting words, a headline meeting word beside another
# leader kept apart, weapons for Ukraine or from the West and weapons issued to the soldiers kept
# apart from arms, tourists' visits kept out of the Korean digest), so it is a tuning set now:
# 1.000/1.000 in every language (121 of 121 exactly right), and its floors were raised. No other
# set changed.
# fresh14.jsonl (131 texts, committed before any rule ran on them, gathered after the thirteenth
# round was committed) was measured once on 2026-12-07 on the thirteenth round's config:
# en 1.000/1.000, ar 0.969/0.939, ru 1.000/0.929, ko 0.980/0.860 (overall 0.986/0.923, 120 of
# 131 exactly right); then its disagreements were read and fixed (fourteenth round, PROVENANCE.md:
# a state visit's moments in the headline (영접, 배웅, 대면, 방북 …) as meeting words, a body sentence
# where one leader meets or signs with the other, the treaty's Korean name with 파트너십, a
# country's own nuclear weapons near the pair and missiles "that were tested" kept apart from
# arms, the spelling "Cursk", arrest words beside a plain troop word as capture), so it is a
# tuning set now: 1.000/1.000 in every language (131 of 131 exactly right), and its floors were
# raised. fresh3.jsonl's English recall rose to 1.000 with the same fixes (h3-en-08, Putin signing
# with Kim in the body), so its floor was raised too; no other set changed.
# fresh15.jsonl (126 texts, committed before any rule ran on them, gathered after the fourteenth
# round was committed) was measured once on 2026-12-07 on the fourteenth round's config:
# en 0.933/0.903, ar 0.931/0.844, ru 1.000/0.921, ko 0.982/0.917 (overall 0.967/0.901, 108 of
# 126 exactly right); then its disagreements were read and fixed (fifteenth round, PROVENANCE.md:
# "Russian and North Korean forces" and POW nouns as the soldiers, "своих военных", a short name of
# the country and a troop dispatch across a bullet's line break, parades kept apart from troops and
# arms, the vice-president's title, a minister's talks with South Korea about the North, weapons
# sent to the leader, a deal of "the two", co-developed drones, the treaty's full name without
# Russia, 방북/방러 for the Korean digest and 방러 북한인 kept out), so it is a tuning set now:
# 1.000/1.000 in every language (126 of 126 exactly right), and its floors were raised. No other
# set changed.
# fresh16.jsonl (32 texts: en 20, ar 6, ru 6, no Korean; committed before any rule ran on them,
# gathered after the fifteenth round was committed) was measured once on 2026-12-07 on the fifteenth
# round's config: en 1.000/1.000, ar 0.714/1.000, ru 1.000/1.000 (overall 0.931/1.000, 31 of 32
# exactly right); then its one family of disagreements was read and fixed (sixteenth round,
# PROVENANCE.md: Soviet soldiers of 1945 and Korea's liberation honoured in Pyongyang kept apart from
# North Korea's soldiers), so it is a tuning set now: 1.000/1.000 in every language it has (32 of 32
# exactly right), and its Arabic floor was raised.  No other set changed.
# fresh17.jsonl (54 texts: en 7, ar 2, ru 14, ko 31; committed before any rule ran on them, gathered
# after the sixteenth round was committed) was measured once on 2026-12-07 on the sixteenth round's
# config: en 1.000/0.875, ar 1.000/1.000, ru 1.000/1.000, ko 0.943/0.962 (overall 0.958/0.958, 49 of
# 54 exactly right); then its disagreements were read and fixed (seventeenth round, PROVENANCE.md:
# satellite technology kept to its own sentence, the soldiers' weapons "used" at the front, 북조선 as
# North Korea, a regional delegation's visit and 부상 "emerged" kept out of the Korean digest), so it is
# a tuning set now: en, ar, ru 1.000/1.000, ko 0.981/1.000 (f17-ko-11, the typo 미사일 for Mikhail,
# left), and its floors were raised.  No other set changed.  Its English, Arabic and Russian figures
# rest on 8, 3 and 8 expected pairs: coarse.
# fresh18.jsonl (34 English texts, 21 hard negatives, from an RSS archive and a NewsAPI fixture in
# public repositories; committed before any rule ran on them, gathered after the seventeenth round was
# committed) was measured once on 2026-12-07 on the seventeenth round's config: en 1.000/0.880 (31 of
# 34 exactly right); then its disagreements were read and fixed (eighteenth round, PROVENANCE.md: "Kim"
# in a headline naming North Korea, the summit by its setting, the mutual-defence clause by what it
# does), so it is a tuning set now: en 1.000/1.000, and its floor was raised.  No other set changed.
# fresh19.jsonl (38 texts: ar 14, ru 14, ko 10, 23 hard negatives; committed before any rule ran on
# them, gathered after the eighteenth round was committed) was measured once on 2026-12-07 on the
# eighteenth round's config: ar 0.938/1.000, ru 1.000/1.000, ko 0.800/0.889 (overall 0.914/0.970, 34
# of 38 exactly right); then its disagreements were read and fixed (nineteenth round, PROVENANCE.md:
# Arabic أسر with a possessive as "and their families" or "in its entirety", a casualty word beside a
# denial or a word of absence, ministers of civil portfolios and education exchanges kept out of the
# Korean digest's visit clause, munitions given in exchange for satellite technology as arms), so it
# is a tuning set now: 1.000/1.000 in every language it has (38 of 38 exactly right), and its floors
# were raised.  No other set changed.  Its figures rest on 15, 9 and 9 expected pairs: coarse.
# fresh20.jsonl (30 texts: ar 9, ru 12, ko 9, 19 hard negatives; committed before any rule ran on
# them, gathered after the nineteenth round was committed) was measured once on 2026-12-07 on the
# nineteenth round's config: ar 0.667/0.333, ru 1.000/1.000, ko 0.667/1.000 (overall 0.750/0.789, 22
# of 30 exactly right); then its disagreements were read and fixed (twentieth round, PROVENANCE.md:
# Pyongyang in a mixed Arabic spelling, Russia's own men as casualties, Arabic plural agreements,
# joining Russia's forces, 부상 as a vice-minister's title, university delegations' visits, a combat
# word beside workers), so it is a tuning set now: ar 1.000/0.833, ru 1.000/1.000, ko 0.800/1.000 (27
# of 30 exactly right; the glued Arabic word of f20-ar-06 is the analyser's, f20-ko-04 and f20-ko-08
# are judgement calls), and its floors were raised.  No other set changed.  Its figures rest on 6, 5
# and 8 expected pairs: coarse.
# fresh21.jsonl (24 texts: en 7, ar 4, ru 6, ko 7, 13 hard negatives; committed before any rule ran
# on them, gathered after the twentieth round was committed) was measured once on 2026-12-07 on the
# twentieth round's config: en 1.000/1.000, ar 1.000/0.667, ru 0.667/1.000, ko 0.889/1.000 (overall
# 0.917/0.917, 20 of 24 exactly right); then its disagreements were read and fixed (twenty-first
# round, PROVENANCE.md: munitions beside the leaders' names as arms, another agreement keeping the bare
# treaty word from counting, a match's combat and visit words kept out of the Korean digest), so it is
# a tuning set now: 1.000/1.000 in every language (24 of 24 exactly right), and its floors were
# raised.  No other set changed.  Its figures rest on 8, 6, 2 and 8 expected pairs: coarse.
# fresh22.jsonl (35 texts: en 4, ar 9, ru 11, ko 11, 16 hard negatives; committed before any rule ran
# on them, gathered after the twenty-first round was committed) was measured once on 2026-12-07 on the
# twenty-first round's config: en 1.000/1.000, ar 1.000/0.933, ru 1.000/1.000, ko 1.000/1.000 (overall
# 1.000/0.978, 34 of 35 exactly right; en 4 of 4, ar 8 of 9, ru 11 of 11, ko 11 of 11); then its
# disagreement was read and fixed (twenty-second round, PROVENANCE.md: soldiers sent to support
# Russia's forces are North Korea's, like alongside and joined), so it is a tuning set now:
# 1.000/1.000 in every language (35 of 35 exactly right), and its floors were raised.  No other set
# changed.  Its figures rest on 4, 15, 10 and 17 expected pairs: coarse.
# fresh23.jsonl (37 texts: en 7, ar 14, ru 7, ko 9, 18 hard negatives; committed before any rule ran
# on them, gathered after the twenty-second round was committed) was measured once on 2026-12-07 on the
# twenty-second round's config: en 0.909/1.000, ar 1.000/0.944, ru 1.000/1.000, ko 0.846/1.000 (overall
# 0.936/0.978, 33 of 37 exactly right; en 6 of 7, ar 13 of 14, ru 7 of 7, ko 7 of 9); then its
# disagreements were read and fixed (twenty-third round, PROVENANCE.md: a phone call's sentence names
# no summit of theirs, the Arabic wounded adjective and passive capture, the spirit of self-sacrifice
# is no casualty, the state's "government, army and people" is no soldiers sent), so it is a tuning set
# now: 1.000/1.000 in every language (37 of 37 exactly right), and its floors were raised.  No other set
# changed.  Its figures rest on 10, 18, 6 and 11 expected pairs: coarse.
# fresh24.jsonl (30 texts: en 9, ar 8, ru 6, ko 7, 15 hard negatives; committed before any rule ran
# on them, gathered after the twenty-third round was committed) was measured once on 2026-12-07 on the
# twenty-third round's config: en 1.000/0.909, ar 1.000/1.000, ru 1.000/1.000, ko 0.917/0.917 (overall
# 0.971/0.943, 27 of 30 exactly right; en 8 of 9, ar 8 of 8, ru 6 of 6, ko 5 of 7); then its
# disagreements were read and fixed (twenty-fourth round, PROVENANCE.md: drone production set up for
# North Korea is arms, an art troupe's or a region's visit is no summit for 조선 beside Russia, North
# Korea's army trained on Russia's soil is its soldiers there), so it is a tuning set now: 1.000/1.000
# in every language (30 of 30 exactly right), and its floors were raised.  Its figures rest on 11, 8,
# 4 and 12 expected pairs: coarse.
# fresh25.jsonl (35 texts: en 8, ar 10, ru 9, ko 8, 16 hard negatives; committed before any rule ran
# on them, gathered after the twenty-fourth round was on main) was measured once on 2026-12-07 on the
# twenty-fourth round's config: en 1.000/0.875, ar 0.909/0.833, ru 1.000/1.000, ko 0.875/1.000 (overall
# 0.927/0.927, 29 of 35 exactly right; en 7 of 8, ar 7 of 10, ru 9 of 9, ko 6 of 8); then its
# disagreements were read and fixed (twenty-fifth round, PROVENANCE.md: nuclear-submarine hardware or
# technology handed over is arms, blood shed is a casualty, South Korea's foreign minister by name,
# another state's leader's visit is no Russia–North Korea summit, North Korean-made weapons beside a
# unit are no North Korean soldiers), so it is a tuning set now: 1.000/1.000 in every language (35 of
# 35 exactly right), and its floors were raised.  No other set changed.  Its figures rest on 8, 12, 7
# and 14 expected pairs: coarse.
# fresh26.jsonl (37 texts: en 10, ar 9, ru 9, ko 9, 17 hard negatives; committed before any rule ran
# on them, gathered after the twenty-fifth round was on main) was measured once on 2026-12-07 on the
# twenty-fifth round's config: en 1.000/0.875, ar 1.000/1.000, ru 1.000/1.000, ko 0.889/1.000 (overall
# 0.967/0.967, 35 of 37 exactly right; en 9 of 10, ar 9 of 9, ru 9 of 9, ko 8 of 9); then its
# disagreements were read and fixed (twenty-sixth round, PROVENANCE.md: the treaty described as a
# military alliance beside an agreement word, a region's delegation's 방북/방러 is no summit for the
# Korean digest), so it is a tuning set now: 1.000/1.000 in every language (37 of 37 exactly right),
# and its floors were raised.  No other set changed.  Its figures rest on 8, 8, 6 and 8 expected
# pairs: coarse.
# fresh27.jsonl (35 texts: en 10, ar 8, ru 9, ko 8, 16 hard negatives; committed before any rule ran
# on them, gathered after the twenty-sixth round was on main) was measured once on 2026-12-07 on the
# twenty-sixth round's config: en 1.000/1.000, ar 1.000/0.833, ru 1.000/0.909, ko 1.000/0.947 (overall
# 1.000/0.943, 32 of 35 exactly right; en 10 of 10, ar 7 of 8, ru 8 of 9, ko 7 of 8); then its
# disagreements were read and fixed (twenty-seventh round, PROVENANCE.md: soldiers' bodies beside a
# troop word are casualties, North Korea beside shells in a list of Russia's helpers with Iran is
# arms), so it is a tuning set now: 1.000/1.000 in every language (35 of 35 exactly right), and its
# floors were raised.  No other set changed.  Its figures rest on 17, 6, 11 and 19 expected pairs:
# coarse.
# fresh28.jsonl (41 texts: en 12, ar 10, ru 6, ko 13, 15 hard negatives; committed before any rule ran
# on them, gathered after the twenty-seventh round was on main) was measured once on 2026-12-07 on the
# twenty-seventh round's config: en 0.810/1.000, ar 0.929/0.929, ru 0.750/0.857, ko 0.833/0.833
# (overall 0.836/0.920, 29 of 41 exactly right; en 8 of 12, ar 8 of 10, ru 4 of 6, ko 9 of 13); then
# its disagreements were read and fixed (twenty-eighth round, PROVENANCE.md: Russia's own wounded and
# dead beside North Korea, a diplomat's death, كيم with his soldiers for the casualty rule, those who
# took part in liberating Kursk beside Kim, youth camps as a civil visit, a Russian minister's 방북 and
# Medvedev for the Korean digest), so it is a tuning set now: 1.000/1.000 in English, Arabic and
# Russian, ko 0.923/1.000 (40 of 41 exactly right; f28-ko-03, the partnership named as a relationship,
# is left against the h3-ko-29 precedent), and its floors were raised.  No other set got a new
# disagreement; holdout's h-ar-04 is now caught.  Its figures rest on 17, 14, 7 and 12 expected pairs:
# coarse.
# fresh29.jsonl (32 texts: en 8, ar 5, ru 9, ko 10, 14 hard negatives; committed before any rule ran
# on them, gathered after the twenty-eighth round was on main) was measured once on 2026-12-07 on the
# twenty-eighth round's config: en 0.778/0.875, ar 0.875/1.000, ru 0.818/1.000, ko 0.933/0.875
# (overall 0.860/0.925, 23 of 32 exactly right; en 5 of 8, ar 4 of 5, ru 7 of 9, ko 7 of 10); then its
# disagreements were read and fixed (twenty-ninth round, PROVENANCE.md: North Korean soldiers at
# Russia's Victory Day parade are on show in a text naming no war, "sent to reinforce" is a dispatch,
# "lost ground" is no casualty, generals are commanders, the partnership beside another state is
# that state's, a missile test is no arms for the Korean digest), so it is a tuning set now:
# 1.000/1.000 in English, Arabic and Russian, ko 1.000/0.938 (31 of 32 exactly right; f29-ko-04, North
# Korea's army invited to Moscow's parade, is left as a judgement call on the digest), and its floors
# were raised.  No other set got a new disagreement or lost one.  Its figures rest on 8, 7, 9 and 16
# expected pairs: coarse.
# fresh30.jsonl (38 texts: en 10, ar 9, ru 8, ko 11, 18 hard negatives; committed before any rule ran
# on them, gathered after the twenty-ninth round was on main) was measured once on 2026-12-07 on the
# twenty-ninth round's config: en 0.889/1.000, ar 0.800/1.000, ru 1.000/1.000, ko 0.650/1.000
# (overall 0.775/1.000, 31 of 38 exactly right; en 9 of 10, ar 8 of 9, ru 8 of 8, ko 6 of 11); then its
# disagreements were read and fixed (thirtieth round, PROVENANCE.md: civilians killed and land captured
# are no soldiers' casualties, a test missile, a missile "experiment" or a moratorium is a test, youth
# delegations are a civil visit, the army's name right before a weapon is no soldiers), so it is a
# tuning set now: 1.000/1.000 in English, Arabic and Russian, ko 0.929/1.000 (37 of 38 exactly right;
# f30-ko-07, Seoul and Moscow sparring over arms support in a sentence naming Kim, is left), and its
# floors were raised.  No other set got a new disagreement or lost one.  Its figures rest on 8, 4, 6
# and 13 expected pairs: coarse.
# fresh31.jsonl (19 texts: en 4, ar 4, ru 5, ko 6, 13 hard negatives; committed before any rule ran
# on them, gathered after the thirtieth round was on main) was measured once on 2026-12-07 on the
# thirtieth round's config: en 1.000/1.000, ar 0.500/1.000, ru no expected pairs and one false alarm,
# ko 1.000/1.000 (overall 0.867/1.000, 17 of 19 exactly right; en 4 of 4, ar 3 of 4, ru 4 of 5, ko 6
# of 6); then its two disagreements were read and fixed (thirty-first round, PROVENANCE.md: Lavrov as
# South Korea's foreign minister's counterpart, or beside him by name, is no official with Pyongyang),
# so it is a tuning set now: 19 of 19 exactly right, and its floors are at that.  No other set got a
# new disagreement or lost one.  Its figures rest on 5, 1, 0 and 7 expected pairs: very coarse, and
# the Russian texts are all hard negatives, so Russian has no floor here.
# fresh32.jsonl (23 texts: en 11, ru 12, 12 hard negatives; English and Russian only, committed before
# any rule ran on them, gathered after the thirty-first round was on main) was measured once on
# 2026-12-07 on the thirty-first round's config: en 0.800/0.923, ru 0.909/0.909 (overall 0.846/0.917,
# 18 of 23 exactly right; en 8 of 11, ru 10 of 12); then its six disagreements were read and fixed
# (thirty-second round, PROVENANCE.md: Kremlin-backed soldiers are Russia's, the Kremlin leader is
# Putin, "according to" is no accord, a letter's headline is no summit, thanks to Kim for help in the
# fighting in Kursk are the troops, the president's spokesman is not the president), so it is a tuning
# set now: 23 of 23 exactly right, and its floors are at that.  No other set got a new disagreement or
# lost one.  Its figures rest on 13 and 11 expected pairs: coarse.
# fresh33.jsonl (43 texts: ar 20, ko 23, 22 hard negatives; Arabic and Korean only, committed before
# any rule ran on them, gathered after the thirty-first round was on main) was measured once on
# 2026-12-07 on the thirty-first round's config: ar 0.857/0.750, ko 0.846/0.917 (overall 0.849/0.865,
# 33 of 43 exactly right; ar 15 of 20, ko 18 of 23); then its disagreements were read and fixed
# (thirty-third round, PROVENANCE.md: the two countries' older treaties, a weapons test or long-range
# launch as a test, the foreign intelligence chief, submarine and drone technology handed over, deaths,
# the army's name beside 배치), so it is a tuning set now: ar 0.941/1.000, ko 1.000/0.972 (41 of 43
# exactly right; f33-ar-12, the West's weapons for "the Kyiv regime's army", and f33-ko-08, "북·러 軍",
# left).  No other set got a new disagreement or lost one.  Its figures rest on 16 and 36 expected
# pairs: coarse.
# fresh34.jsonl (35 texts: ar 18, ko 17, 15 hard negatives; Arabic and Korean only, committed before
# any rule ran on them, gathered after the thirty-third round and the named clauses were on main) was
# measured once on 2026-12-07 on that config: ar 0.812/1.000, ko 0.871/1.000 (overall 0.851/1.000, 29
# of 35 exactly right; ar 15 of 18, ko 14 of 17); then its seven disagreements were read and fixed
# (thirty-fourth round, PROVENANCE.md: a souvenir missile, a defence exhibition by its Arabic
# adjective, the enemy's forces eliminated, Russia's army by its Korean names, the bare friendship
# treaty in Korean and another treaty's military clause, a minister in Putin's suite on another
# state's visit), so it is a tuning set now: 35 of 35 exactly right, and its floors are at that.  No
# other set got a new disagreement or lost one.  Its figures rest on 13 and 27 expected pairs: coarse.
# fresh35.jsonl (29 texts: en 16, ru 13, 15 hard negatives; English and Russian only, committed before
# any rule ran on them, gathered after the named-clause rewrite was on main) was measured once on
# 2026-12-07 on that config: en 0.880/0.957, ru 1.000/0.875 (overall 0.906/0.935, 24 of 29 exactly
# right; en 12 of 16, ru 12 of 13); then its five disagreements were read and fixed (round 35,
# PROVENANCE.md: weapons for Kyiv beside North Korea's name, a peace treaty and the bare treaty word,
# soldiers dying, a foothold lost or an area captured, weapons given as a gift in Kim's sentence), so
# it is a tuning set now: 29 of 29 exactly right, and its floors are at that.  No other set got a new
# disagreement or lost one.  Its figures rest on 23 and 8 expected pairs: coarse.
# fresh36.jsonl (28 texts: en 15, ru 13, 15 hard negatives; English and Russian only, committed before
# any rule ran on them, gathered after rounds 34 and 35 were merged on main) was measured once on
# 2026-12-07 on that config: en 0.909/0.769, ru 0.917/0.917 (overall 0.913/0.840, 24 of 28 exactly
# right; en 13 of 15, ru 11 of 13); then four of its six disagreements were read and fixed (round 36,
# PROVENANCE.md: the treaty word inside an organisation's name, battle tanks and armoured carriers as
# weapons, Russia's army's losses beside North Korea's soldiers, Russia's forces firing North Korea's
# arms), so it is a tuning set now: en 1.000/0.846, ru 1.000/1.000 (27 of 28 exactly right; f36-en-03,
# a page that dropped the letters of "soldiers" and "troops", left).  No other set got a new
# disagreement or lost one.  Its figures rest on 13 and 12 expected pairs: coarse.
# fresh37.jsonl (31 texts: ar 15, ko 16, 15 hard negatives; Arabic and Korean only, committed before
# any rule ran on them, gathered after rounds 34 and 35 were merged on main) was measured once on
# 2026-12-07 on that config: ar 0.769/0.833, ko 0.880/0.917 (overall 0.842/0.889, 23 of 31 exactly
# right; ar 11 of 15, ko 12 of 16); then its disagreements were read and fixed (round 37,
# PROVENANCE.md: volunteers sent as troops sent, Russia's security chief by role, South Korea's
# foreign minister in Yonhap's Arabic spelling, North Korea's own launch as a test, another state's
# attack drones, cargo taken to a naval base, captives of other nationals in Russia's army), so it is
# a tuning set now: ar 0.923/1.000, ko 0.958/0.958 (28 of 31 exactly right; f37-ar-08, the
# partnership as the aim of Putin's visit, f37-ko-11, munitions named as Russia's need, and
# f37-ko-12, arms transfers named a sentence after Russia, left as judgement calls).  No other set
# got a new disagreement or lost one.  Its figures rest on 12 and 24 expected pairs: coarse.
# fresh38.jsonl (23 texts: en 12, ru 11, 13 hard negatives; English and Russian only, committed before
# any rule ran on them, gathered after round 37 was on main) was measured once on 2026-12-08 on that
# config: en 0.867/1.000, ru 0.714/1.000 (overall 0.818/1.000, 19 of 23 exactly right; en 10 of 12, ru
# 9 of 11); then two of its four disagreements were read and fixed (round 38, PROVENANCE.md: a treaty
# said not to exist, another holder of the president's title by name), so it is a tuning set now:
# en 0.929/1.000, ru 0.833/1.000 (21 of 23 exactly right; f38-en-05, a gift's headline over a recalled
# meeting, and f38-ru-01, North Korea's hackers beside a Russian missile maker, left as judgement
# calls).  No other set got a new disagreement or lost one.  Its figures rest on 13 and 5 expected
# fresh39.jsonl (33 texts: ar 16, ko 17, 15 hard negatives; Arabic and Korean only, committed before
# any rule ran on them, gathered on main after round 37 and its follow-ups) was measured once on
# 2026-12-08 on that config: ar 0.533/1.000, ko 0.957/1.000 (overall 0.789/1.000, 25 of 33 exactly
# right; ar 9 of 16, ko 16 of 17); then its eight disagreements were read and fixed (round 39,
# PROVENANCE.md: Medvedev named with the Russian president's title, arms sent to help Russia's forces,
# weapons for the infantry), so it is a tuning set now: 33 of 33 exactly right, and its floors are at
# that.  No other set got a new disagreement or lost one.  Its figures rest on 8 and 22 expected
# pairs: coarse.
# fresh40.jsonl (22 texts: en 10, ru 12, 16 hard negatives; English and Russian only, committed before
# any rule ran on them, gathered on main after rounds 38 and 39 were merged) was measured once on
# 2026-12-08 on that config: en 1.000/1.000, ru 1.000/1.000 (23 of 23 exactly right, with f40-en-11,
# taken out afterwards as the same Kyodo interview as f10-en-01); it had no disagreement, so round 40
# changed nothing (PROVENANCE.md) and its floors are at that.  No other set got a new disagreement or
# lost one.  Its figures rest on 8 and 1 expected pairs: coarse, and in Russian nearly empty.
# fresh41.jsonl (22 texts: ar 11, ko 11, 15 hard negatives; Arabic and Korean only, committed before
# any rule ran on them, gathered after rounds 38 and 39 were merged on main) was measured once on
# 2026-12-08 on that config: ar 0.750/1.000, ko 0.600/0.857 (overall 0.643/0.900, 17 of 22 exactly
# right; ar 10 of 11, ko 7 of 11); then five of its six disagreements were read and fixed (round 41,
# PROVENANCE.md: the Korean War in the Soviet papers, the troop word inside Russia's air force's name),
# so it is a tuning set now: ar 1.000/1.000, ko 1.000/0.857 (21 of 22 exactly right; f41-ko-11,
# Russian engineers entering North Korea for its spy satellite, left).  No other set got a new
# disagreement or lost one.  Its figures rest on 4 and 7 expected pairs: coarse.
# fresh42.jsonl (29 texts: en 16, ru 13, 13 hard negatives; English and Russian only, committed before
# any rule ran on them, gathered on main at c805d9f, looking for positives: think-tank pieces, Kim Yong
# Bok, Ukrainian outlets in Russian) was measured once on 2026-12-08 on that config: en 0.926/1.000,
# ru 0.917/0.917 (overall 0.923/0.973, 25 of 29 exactly right; en 14 of 16, ru 11 of 13); then its four
# disagreements were read and fixed (round 42, PROVENANCE.md: a corps read as corpses, Russia's own
# losses by mention, weapons issued to the deployed soldiers, wounded as a Russian verb), so it is a
# tuning set now: 29 of 29 exactly right, and its floors are at that.  No other set got a new
# disagreement or lost one.  Its figures rest on 25 and 12 expected pairs: coarse.
# fresh43.jsonl (24 texts: ar 12, ko 12, 9 hard negatives; Arabic and Korean only, committed before
# any rule ran on them, gathered on main at c805d9f) was measured once on 2026-12-08 on that config:
# ar 0.947/0.857, ko 1.000/0.913 (overall 0.975/0.886, 19 of 24 exactly right; ar 9 of 12, ko 10 of
# 12); then two of its six disagreements were read and fixed (round 43, PROVENANCE.md: a send verb
# beside soldiers read as a submarine handed over, the Arabic accusative agreement and "either party
# attacked" as the treaty's clause), so it is a tuning set now: ar 1.000/0.905, ko 1.000/0.913 (20 of
# 24 exactly right; f43-ar-04, f43-ar-05 and f43-ko-07, delegations below the chiefs the officials
# rule names, and f43-ko-06, the army's name beside its gun in Russian hands, left).  No other set got
# a new disagreement or lost one.  Its figures rest on 19 and 23 expected pairs: coarse.
# fresh44.jsonl (20 texts: en 9, ru 11, 11 hard negatives; English and Russian only, committed before
# any rule ran on them, gathered on main at 3641475, looking for positives: a prisoner on his unit's
# losses, officers killed near Donetsk, the treaty's first year, Lavrov, Rudenko and Zhelokhovtsev) was
# measured once on 2026-12-08 on that config: en 0.867/1.000, ru 1.000/1.000 (overall 0.920/1.000, 18
# of 20 exactly right; en 7 of 9, ru 11 of 11); then its two disagreements were read and fixed (round
# 44, PROVENANCE.md: the cargo ship that carried the soldiers, artillery as fire support), so it is a
# tuning set now: 20 of 20 exactly right, and its floors are at that.  No other set got a new
# disagreement or lost one.  Its figures rest on 13 and 10 expected pairs: coarse.
# fresh45.jsonl (16 texts: ar 8, ko 8, 8 hard negatives; Arabic and Korean only, committed before any
# rule ran on them, gathered on branch rules46 from main at 3641475, looking for positives: casualty
# counts, the EU on the troops and the missiles, Pantsir for Pyongyang, drone crews in Kursk) was
# measured once on 2026-12-08 on that config: ar 1.000/1.000, ko 1.000/1.000 (16 of 16 exactly right);
# it had no disagreement, so round 45 changed nothing (PROVENANCE.md) and its floors are at that.  No
# other set got a new disagreement or lost one.  Its figures rest on 10 and 13 expected pairs, with none
# for kim-putin, the officials rule or the summit page: coarse.
# fresh46.jsonl (13 texts: en 7, ru 6, 6 hard negatives; English and Russian only, committed before any
# rule ran on them, gathered on branch rules47 from main at e91f205, looking for positives: losses in
# Kursk, the soldiers near Sumy, Budanov on the shells after Shoigu's visit, Yoon on the troops, Lavrov
# in 2017, Kim's invitation in 2018) was measured once on 2026-12-08 on that config: en 1.000/0.909,
# ru 1.000/1.000 (overall 1.000/0.933, 12 of 13 exactly right; en 6 of 7, ru 6 of 6); then its one
# disagreement was read (round 46, PROVENANCE.md: equipment as the object of a send verb); the fix
# read bare "equipment" sent between the two as arms and also fired on a hospital's, so at the merge it
# was narrowed to military equipment and f46-en-01 ("sending more equipment") is left: en 1.000/0.909,
# 12 of 13 exactly right, its floors just under that.  No other set got a new disagreement or lost
# one.  Its figures rest on 11 and 4 expected pairs, with none for the treaty or the summit page:
# coarse.
# fresh47.jsonl (14 texts: ar 6, ko 8, 5 hard negatives; Arabic and Korean only, committed before any
# rule ran on them, gathered on branch rules48 from main at e91f205, looking for positives: Zelensky on
# the troops' camps and the shells, Blinken's missile sanctions, wounded North Koreans in a Kursk
# hospital, the M1991 launcher) was measured once on 2026-12-08 on that config: ar 0.875/0.875, ko
# 0.882/1.000 (overall 0.880/0.957, 11 of 14 exactly right; ar 4 of 6, ko 7 of 8); then three of its
# four disagreements were read and fixed (round 47, PROVENANCE.md: the Arabic transfer noun نقل as a
# send verb for weapons, Kursk named only with the incursion's date, a headline on carrying out a past
# summit's agreements), so it is a tuning set now: ar 1.000/1.000, ko 0.938/1.000 (13 of 14 exactly
# right; f47-ko-06, Kozlov's visit to Pyongyang for the Korean digest, left).  No other set got a new
# disagreement or lost one.  Its figures rest on 8 and 15 expected pairs, with none for the officials
# rule or the summit page: coarse.
# fresh48.jsonl (20 texts: en 10, ru 10, 10 hard negatives; English and Russian only, committed before
# any rule ran on them, gathered on branch rules49 from main at 8519403, looking for positives: Seoul on
# missiles for Russia, Shoigu with Kim in 2023 and March 2025, Sudzha with North Korean reinforcements,
# the sappers in Kursk, the supply ship at Rason) was measured once on 2026-12-08 on that config: en
# 0.778/1.000, ru 0.750/0.750 (overall 0.769/0.909, 13 of 20 exactly right; en 7 of 10, ru 6 of 10); then
# its eight disagreements were read and fixed (round 48, PROVENANCE.md: Kim Jong Il as the leader of a
# text that never names Kim Jong Un, missile defence as a stance, Kyiv's captures and a governor's
# casualties, the fallen of the whole war, military supplies, thousands of «военных»), so it is a tuning
# set now: en 1.000/1.000, ru 1.000/1.000 (20 of 20 exactly right).  No other set got a new
# disagreement or lost one.  Its figures rest on 14 and 8 expected pairs, with none for the summit page:
# coarse.
# fresh49.jsonl (30 texts: ar 12, ko 18, 12 hard negatives; Arabic and Korean only, committed before
# any rule ran on them, gathered on branch rules50 from main at 8519403, looking for positives:
# Gerasimov on the fighters in Kursk, Kirby's briefings, the refusal to take back the dead, the Korean
# press on the Kim Jong Il-Putin summits and the 1999 treaty) was measured once on 2026-12-08 on that
# config: ar 0.889/1.000, ko 0.800/0.960 (overall 0.833/0.976, 24 of 31 exactly right; ar 11 of 13,
# ko 13 of 18; f49-ar-09, a missile launch that came out right, was then found to be f9-ar-04's page
# and dropped: 23 of 30); then seven of its nine disagreements were read and fixed (round 49, PROVENANCE.md:
# Kim Jong Il with Putin, the 1961 treaty's intervention clause, the deputy-minister guard set at the
# mention, casualties outside Russia's war), so it is a tuning set now: ar 1.000/1.000, ko 0.926/1.000
# (28 of 30 exactly right; f49-ko-01's munitions plant and f49-ko-13's foreseen deaths left).  No
# other set got a new disagreement or lost one.  Its figures rest on 16 and 25 expected pairs, with
# none for the summit page: coarse.
# fresh50.jsonl (16 texts: en 8, ru 8, 8 hard negatives; English and Russian only, committed before
# any rule ran on them, gathered on branch rules54 from main at 9fad282, looking for positives:
# Kostin and Filchakov on the Kharkiv missiles, Skibitskyi on the dud shells, the NIS on drone
# training, Zelensky's 10,000 soldiers, strike drones for Russia, Kim's 2024 birthday greeting and
# Putin's telegram on the Korean units in Kursk) was measured once on 2026-12-08 on that config: en
# 0.857/1.000, ru 1.000/0.800 (overall 0.933/0.875, 13 of 16 exactly right; en 7 of 8, ru 6 of 8);
# then its three disagreements were read and fixed (round 50, PROVENANCE.md: the generic verb of
# deployment with North Korea's weapons as object and a Prosecutor General read as a commander,
# "ударные дроны" as strike drones, «корейские подразделения/бойцы» as North Korea's soldiers), so
# it is a tuning set now: en 1.000/1.000, ru 1.000/1.000 (16 of 16 exactly right).  No other set got
# a new disagreement; none lost one.  Its figures rest on 7 and 10 expected pairs, with none for the
# officials rule, the digest or the summit page: coarse.
# fresh51.jsonl (23 texts: ar 10, ko 13, 10 hard negatives; Arabic and Korean only, committed before
# any rule ran on them, gathered on branch rules55 from main at 9fad282, looking for positives: Putin's
# invitation carried by Lavrov, Shoigu in Tehran after meeting Kim, Kirby on the dead in Kursk, the
# Koksan guns, the prisoners off the exchange list, Russia's drone help, Medvedev with Kim and Ri Hi
# Yong) was measured once on 2026-12-08 on that config: ar 0.909/1.000, ko 0.826/0.905 (overall
# 0.853/0.935, 18 of 23 exactly right; ar 9 of 10, ko 9 of 13); then four of its seven disagreements
# were read and fixed (round 51, PROVENANCE.md: a military word beside a workers word in the drone
# clauses, Putin named only as someone's aide, Kim in a recalled summit beside a South Korean
# minister's talks; its fix for the partnership named as a level of relations was dropped at the
# merge), so it is a tuning set now: ar 0.909/1.000, ko 0.913/1.000 (20 of 23 exactly right;
# f51-ar-06's Kim and Putin apart, f51-ko-09's "북·러 군사협력" as a talking point and f51-ko-11's
# partnership level left).  No other set got a new disagreement or lost one.  Its figures rest on 10
# and 21 expected pairs, with none for the summit page: coarse.
# fresh52.jsonl (17 texts: en 7, ru 10, 7 hard negatives; English and Russian only, committed before
# any rule ran on them, gathered on branch rules58 from main at 5e995a9, looking for positives: Seoul's
# ministry on the treaty and on the troop movements, Cho Hyun to Lavrov and at the Security Council,
# Chang Ho-jin after the Vostochny summit, the WSJ and NYT on ammunition purchases, Mash on the
# soldiers before Kursk, Kim's New Year letter to Putin) was measured once on 2026-12-08 on that
# config: en 1.000/1.000, ru 0.889/1.000 (overall 0.941/1.000, 16 of 17 exactly right; en 7 of 7, ru
# 9 of 10); then its one disagreement was read and fixed (round 52, PROVENANCE.md: a troop word within
# two words of Russia's army, with no word of fighting beside or supporting it, is Russia's: Kim's
# letter «военнослужащим отважной российской армии»), so it is a tuning set now: en 1.000/1.000, ru
# 1.000/1.000 (17 of 17 exactly right).  No other set got a new disagreement; none lost one.  Its
# figures rest on 8 and 8 expected pairs, with none for the casualty rule, the digest or the summit
# page: coarse.
# fresh53.jsonl (19 texts: ar 7, ko 12, 8 hard negatives; Arabic and Korean only, committed before
# any rule ran on them, gathered on branch rules59 from main at 5e995a9: Seoul on missiles for Moscow,
# the launch during Kim's 2023 visit, the first unit in Kursk, the first summit's announcement, the
# satellite technology, military delegations from 1990 to 2025, and hard negatives on the Kursk
# nuclear plant, Matsegora and Russian MPs on the North's missiles, Wonsan and the Rason trains) was
# measured once on 2026-12-08 on that config: ar 0.500/0.667, ko 0.950/0.950 (overall 0.821/0.885,
# 13 of 19 exactly right; ar 2 of 7, ko 11 of 12); then three of its eight disagreements were read
# and fixed (round 53, PROVENANCE.md: a troop word right after a word of arming or equipping, a
# military delegation beside North Korea and Russia for the Korean digest), so it is a tuning set
# now: ar 0.667/0.667, ko 0.952/1.000 (15 of 19 exactly right; f53-ar-01's and f53-ar-02's missiles
# the North has, f53-ar-03's and f53-ar-04's arms missed and f53-ko-02's troop shortage left).  No
# other set got a new disagreement or lost one.  Its figures rest on 6 and 20 expected pairs, with
# none for the casualties rule: coarse.
SET_FLOORS = {
    HOLDOUT: {"en": (0.99, 0.99), "ar": (0.99, 0.92), "ru": (0.99, 0.99), "ko": (0.99, 0.99)},
    FRESH: {"en": (0.99, 0.99), "ar": (0.96, 0.99), "ru": (0.99, 0.99), "ko": (0.99, 0.99)},
    FRESH2: {"en": (0.99, 0.99), "ar": (0.99, 0.99), "ru": (0.99, 0.99), "ko": (0.99, 0.99)},
    FRESH3: {"en": (0.99, 0.99), "ar": (0.99, 0.97), "ru": (0.99, 0.99), "ko": (0.99, 0.99)},
    FRESH4: {"en": (0.97, 0.99), "ar": (0.99, 0.99), "ru": (0.99, 0.99), "ko": (0.99, 0.99)},
    FRESH5: {"en": (0.99, 0.99), "ar": (0.99, 0.99), "ru": (0.99, 0.99), "ko": (0.99, 0.99)},
    FRESH6: {"en": (0.99, 0.99), "ar": (0.99, 0.99), "ru": (0.99, 0.99), "ko": (0.99, 0.99)},
    FRESH7: {"en": (0.99, 0.99), "ar": (0.99, 0.99), "ru": (0.99, 0.99), "ko": (0.99, 0.99)},
    FRESH8: {"en": (0.99, 0.99), "ar": (0.99, 0.99), "ru": (0.99, 0.99), "ko": (0.99, 0.99)},
    FRESH9: {"en": (0.99, 0.99), "ar": (0.99, 0.99), "ru": (0.99, 0.99), "ko": (0.99, 0.99)},
    FRESH10: {"en": (0.99, 0.99), "ar": (0.99, 0.99), "ru": (0.95, 0.99), "ko": (0.99, 0.99)},
    FRESH11: {"en": (0.99, 0.99), "ar": (0.99, 0.99), "ru": (0.99, 0.99), "ko": (0.99, 0.99)},
    FRESH12: {"en": (0.99, 0.99), "ar": (0.99, 0.99), "ru": (0.99, 0.99), "ko": (0.99, 0.99)},
    FRESH13: {"en": (0.99, 0.99), "ar": (0.99, 0.99), "ru": (0.99, 0.99), "ko": (0.99, 0.99)},
    FRESH14: {"en": (0.99, 0.99), "ar": (0.99, 0.99), "ru": (0.99, 0.99), "ko": (0.99, 0.99)},
    FRESH15: {"en": (0.99, 0.99), "ar": (0.99, 0.99), "ru": (0.99, 0.99), "ko": (0.99, 0.99)},
    FRESH16: {"en": (0.99, 0.99), "ar": (0.99, 0.99), "ru": (0.99, 0.99)},
    FRESH17: {"en": (0.99, 0.99), "ar": (0.99, 0.99), "ru": (0.99, 0.99), "ko": (0.98, 0.99)},
    FRESH18: {"en": (0.99, 0.99)},
    FRESH19: {"ar": (0.99, 0.99), "ru": (0.99, 0.99), "ko": (0.99, 0.99)},
    FRESH20: {"ar": (0.99, 0.83), "ru": (0.99, 0.99), "ko": (0.79, 0.99)},
    FRESH21: {"en": (0.99, 0.99), "ar": (0.99, 0.99), "ru": (0.99, 0.99), "ko": (0.99, 0.99)},
    FRESH22: {"en": (0.99, 0.99), "ar": (0.99, 0.99), "ru": (0.99, 0.99), "ko": (0.99, 0.99)},
    FRESH23: {"en": (0.99, 0.99), "ar": (0.99, 0.99), "ru": (0.99, 0.99), "ko": (0.99, 0.99)},
    FRESH24: {"en": (0.99, 0.99), "ar": (0.99, 0.99), "ru": (0.99, 0.99), "ko": (0.99, 0.99)},
    FRESH25: {"en": (0.99, 0.99), "ar": (0.99, 0.99), "ru": (0.99, 0.99), "ko": (0.99, 0.99)},
    FRESH26: {"en": (0.99, 0.99), "ar": (0.99, 0.99), "ru": (0.99, 0.99), "ko": (0.99, 0.99)},
    FRESH27: {"en": (0.99, 0.99), "ar": (0.99, 0.99), "ru": (0.99, 0.99), "ko": (0.99, 0.99)},
    FRESH28: {"en": (0.99, 0.99), "ar": (0.99, 0.99), "ru": (0.99, 0.99), "ko": (0.92, 0.99)},
    FRESH29: {"en": (0.99, 0.99), "ar": (0.99, 0.99), "ru": (0.99, 0.99), "ko": (0.99, 0.93)},
    FRESH30: {"en": (0.99, 0.99), "ar": (0.99, 0.99), "ru": (0.99, 0.99), "ko": (0.92, 0.99)},
    FRESH31: {"en": (0.99, 0.99), "ar": (0.99, 0.99), "ko": (0.99, 0.99)},
    FRESH32: {"en": (0.99, 0.99), "ru": (0.99, 0.99)},
    FRESH33: {"ar": (0.94, 0.99), "ko": (0.99, 0.97)},
    FRESH34: {"ar": (0.99, 0.99), "ko": (0.99, 0.99)},
    FRESH35: {"en": (0.99, 0.99), "ru": (0.99, 0.99)},
    FRESH36: {"en": (0.99, 0.84), "ru": (0.99, 0.99)},
    FRESH37: {"ar": (0.92, 0.99), "ko": (0.95, 0.95)},
    FRESH38: {"en": (0.92, 0.99), "ru": (0.83, 0.99)},
    FRESH39: {"ar": (0.99, 0.99), "ko": (0.99, 0.99)},
    FRESH40: {"en": (0.99, 0.99), "ru": (0.99, 0.99)},
    FRESH41: {"ar": (0.99, 0.99), "ko": (0.99, 0.85)},
    FRESH42: {"en": (0.99, 0.99), "ru": (0.99, 0.99)},
    FRESH43: {"ar": (0.99, 0.90), "ko": (0.99, 0.90)},
    FRESH44: {"en": (0.99, 0.99), "ru": (0.99, 0.99)},
    FRESH45: {"ar": (0.99, 0.99), "ko": (0.99, 0.99)},
    FRESH46: {"en": (0.99, 0.90), "ru": (0.99, 0.99)},
    FRESH47: {"ar": (0.99, 0.99), "ko": (0.93, 0.99)},
    FRESH48: {"en": (0.99, 0.99), "ru": (0.99, 0.99)},
    FRESH49: {"ar": (0.99, 0.99), "ko": (0.92, 0.99)},
    FRESH50: {"en": (0.99, 0.99), "ru": (0.99, 0.99)},
    FRESH51: {"ar": (0.90, 0.99), "ko": (0.91, 0.99)},
    FRESH52: {"en": (0.99, 0.99), "ru": (0.99, 0.99)},
    FRESH53: {"ar": (0.66, 0.66), "ko": (0.95, 0.99)},
}


@pytest.fixture(scope="module")
def report() -> dict:
    proc = run_cli("rules", "eval", str(LABELS), "--json", config=CONFIG)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def set_reports() -> dict[Path, dict]:
    """Every measured set scored in one run of the command (several files, one JSON document)."""
    paths = list(SET_FLOORS)
    proc = run_cli("rules", "eval", *map(str, paths), "--json", config=CONFIG, timeout=600)
    assert proc.returncode == 0, proc.stderr
    files = json.loads(proc.stdout)["files"]
    assert [f["file"] for f in files] == [str(p) for p in paths]
    return dict(zip(paths, files, strict=True))


def _texts(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# The sets gathered once the stored pages on the topic were nearly used up (most search hits were
# already in an earlier set by address or lead; PROVENANCE.md says per set how they were found):
# each is as large as it honestly could be made, so it is held to its own size, per language,
# as (texts, hard negatives), instead of 30 and 8 in every language.
SMALL_SETS: dict[Path, dict[str, tuple[int, int]]] = {
    # No new Korean text was found.
    FRESH16: {"en": (20, 9), "ar": (6, 2), "ru": (6, 4)},
    # Korean pages were not used up, so its Korean part is full size.
    FRESH17: {"en": (7, 2), "ar": (2, 1), "ru": (14, 9), "ko": (30, 8)},
    # From public repositories (an RSS archive of The Moscow Times, a NewsAPI fixture): English only.
    FRESH18: {"en": (30, 8)},
    # Arabic, Russian and Korean only, within a short session.
    FRESH19: {"ar": (14, 6), "ru": (14, 6), "ko": (10, 6)},
    # Sub-topics not used before (workers, health, education, oil); four Arabic hard negatives only.
    FRESH20: {"ar": (9, 4), "ru": (12, 8), "ko": (9, 6)},
    # Sub-topics not used before (Putin's gift of animals to the Pyongyang zoo, sports matches, the
    # Russian Centre), a few on sub-topics an earlier set has in another language.
    FRESH21: {
        "en": (7, 4),
        "ar": (4, 2),
        "ru": (6, 4),
        "ko": (7, 3),
    },  # Sub-topics chosen for hard negatives sharing the rules' words (the Russia–Iran treaty, Shoigu with
    # Iran, Alaska, Kim with Xi and Lukashenko, the Kursk nuclear plant) and a few rarer spellings.
    FRESH22: {"en": (4, 2), "ar": (9, 3), "ru": (11, 5), "ko": (11, 6)},
    # Most hits on the topic were already in an earlier set by address or lead; weighted to Arabic,
    # with hard negatives on Kursk's losses and nuclear plant, South Korea–Russia ties and civil links.
    FRESH23: {"en": (7, 2), "ar": (14, 7), "ru": (7, 4), "ko": (9, 5)},
    # Sub-topics little used before (the sanctions monitoring team, students, health, culture, Kursk
    # residents held in Ukraine); 66 of 155 addresses checked were in an earlier set already.
    FRESH24: {"en": (9, 5), "ar": (8, 4), "ru": (6, 4), "ko": (7, 2)},
    # Hard negatives on other states' treaties and visits (Russia–Iran, Russia–Belarus, Vietnam's To Lam)
    # and new arms sub-topics (Pantsir, submarine technology, Koksan guns); 48 of 134 addresses were in.
    FRESH25: {"en": (8, 4), "ar": (10, 4), "ru": (9, 5), "ko": (8, 3)},
    # Sub-topics little used before (KN-23s in Ukraine, the veto in English, Japan's statements, Kim Yo
    # Jong, the Rajin port and railway, tourists, trains); 30 of 143 addresses checked were in.
    FRESH26: {"en": (10, 4), "ar": (9, 4), "ru": (9, 4), "ko": (9, 5)},
    # Sub-topics little used before (soldiers' diaries and belongings, drone videos, coffins, NIS casualty
    # briefings, Shahed and Myanmar hard negatives); about 20 of 110 addresses checked were in.
    FRESH27: {"en": (10, 4), "ar": (8, 5), "ru": (9, 4), "ko": (8, 3)},
    # Korean civil, sport and third-country hard negatives, the Songdowon camp, Russia's wounded in North
    # Korea, the ambassador's death; about 50 of 175 addresses checked were in; only 6 Russian texts.
    FRESH28: {"en": (12, 3), "ar": (10, 3), "ru": (6, 2), "ko": (13, 7)},
    # Moscow's Victory Day parade with North Korea's soldiers and generals, the sappers' return, the
    # Alabuga drone workers, Vietnam and Iran partnerships, flights, missile tests; 14 of about 60
    # addresses checked were in; only 5 Arabic texts.
    FRESH29: {"en": (8, 4), "ar": (5, 3), "ru": (9, 4), "ko": (10, 3)},
    # Arms sub-topics little used before (failure rates, debris findings, the Lady R, the 240-mm launcher,
    # the Rajin containers), envoys and ministers of 2014-2018, Kursk and missile-test hard negatives,
    # South Korea–Russia ties, civil exchanges; about 140 of 270 addresses checked were in.
    FRESH30: {"en": (10, 4), "ar": (9, 5), "ru": (8, 4), "ko": (11, 5)},
    # Sub-topics little used before (North Korean drone operators over Sumy, Ukraine's intelligence
    # figures, Kirby's food for ammunition, the 1.8 million shells, NIS on airborne and marine units)
    # and South Korea–Russia hard negatives (Hyundai's plant, ministers and ambassadors, Xi in
    # Pyongyang); about 40 of 85 addresses checked were in, and the stored pages are nearly used up.
    FRESH31: {"en": (4, 2), "ar": (4, 3), "ru": (5, 5), "ko": (6, 3)},
    # English and Russian only (another round took Arabic and Korean): a Kursk hospital, Kim's 72nd
    # birthday letter, Putin on Article 4, Volodin, Matvienko and Kozlov in Pyongyang, hard negatives on
    # Kursk without North Korea, missile tests, the Iran treaty, Seoul; about 85 of 180 addresses were in.
    FRESH32: {"en": (11, 6), "ru": (12, 6)},
    # Arabic and Korean only; the Arabic pages on the topic are used up (11 of 20 are hard negatives).
    FRESH33: {"ar": (20, 11), "ko": (23, 11)},
    # Arabic and Korean only: tourists' souvenirs in Wonsan, Belarus and Indonesia hard negatives, Kursk
    # prisoner swaps, the ISW shells estimate, satellite help, the China treaty, Putin in Hanoi; about
    # 165 of 330 addresses checked were in.
    FRESH34: {"ar": (18, 9), "ko": (17, 6)},
    # English and Russian only; Primorye's governor, oil tankers, Kolokoltsev, Mongolia; about 80 of 220 in.
    FRESH35: {"en": (16, 7), "ru": (13, 8)},
    # English and Russian only; arms quality and sanctions, Peskov on the treaty, Kursk evacuations and
    # civilians, Seoul's and Moscow's envoys; about 60 of 155 addresses checked were in.
    FRESH36: {"en": (15, 8), "ru": (13, 7)},
    # Arabic and Korean only: Chinese, Indian and Nepali recruits in Russia's army, the MiG-29 deal, the
    # UN denial, the Rajin ghost ships; about 35 of 110 addresses checked were in.
    FRESH37: {"ar": (15, 8), "ko": (16, 7)},
    # English and Russian only: NPO Mash hackers, Russia's oil and the UN cap, the Aurus car, Russia Day
    # messages, Koksan guns in Crimea, Kursk battle and nuclear plant hard negatives; about 40 of 150 in.
    FRESH38: {"en": (12, 6), "ru": (11, 7)},
    # Arabic and Korean only: North Korea's arms for Wagner, the Tumangang railcars, and hard negatives
    # on Kim Jong Il's summit with Medvedev, the Soviet-era debt and Russian wheat; 45 of 141 addresses
    # checked were in.
    FRESH39: {"ar": (16, 9), "ko": (17, 6)},
    # English and Russian only: satellite help, Budanov's arms figures, and hard negatives on the Sudzha
    # gas station, Kursk's governor, trade, flights and the Tumen bridge; 58 of 127 addresses were in.
    FRESH40: {"en": (10, 5), "ru": (12, 11)},
    # Arabic and Korean only: Russia's help to the spy satellite, Putin on Kim, and hard negatives on the
    # Rajin-Khasan coal, Putin with Moon Jae-in, ships held, and the Korean War in the Soviet papers; 8 of
    # 47 addresses checked were in.
    FRESH41: {"ar": (11, 8), "ko": (11, 7)},
    # English and Russian only: think-tank pieces, Kim Yong Bok, Ukrainian outlets in Russian, and hard
    # negatives on Russian tours, Kim with Xi, the Belarus and Iran treaties and the allies' drills; 61 of
    # 175 addresses checked were in.
    FRESH42: {"en": (16, 6), "ru": (13, 7)},
    # Arabic and Korean only: submarine reactor modules, co-developed drones, the Kursk film and the
    # families' estate, delegations between the capitals, and hard negatives on K2 tanks for Poland,
    # Hyundai's Russian plant, the Kursk submarine and nuclear plant, and Putin with Xi; 65 of 142
    # addresses checked were in.
    FRESH43: {"ar": (12, 4), "ko": (12, 5)},
    # English and Russian only: a prisoner on his unit's losses, officers killed near Donetsk, the
    # treaty's first year, Lavrov in the Duma, Rudenko and Zhelokhovtsev, and hard negatives on a Kursk
    # drone attack, South Korea's envoys, Rajin's rail and wharf, football, No Kwang Chol, Zakharova
    # and Borodavkin; 65 of 142 addresses checked were in.
    FRESH44: {"en": (9, 5), "ru": (11, 6)},
    # Arabic and Korean only: casualty counts in Kursk, the EU on the troops and the missiles, Pantsir for
    # Pyongyang, drone crews in Kursk, and hard negatives on drills and patrols with China, arms for India
    # and Iran, Putin on South Korea, Trump and Kim at APEC, and a prisoner exchange; 65 of 161 addresses
    # checked by address were in.
    FRESH45: {"ar": (8, 3), "ko": (8, 5)},
    # English and Russian only: losses in Kursk and "more equipment", the soldiers near Sumy, Budanov on
    # the shells after Shoigu's visit, Yoon on the troops, ISW on demining in Kursk, Lavrov (2017) and
    # Kim's invitation (2018), and hard negatives on construction workers, flights with South Korea,
    # drone strikes in the Kursk region and Ukraine's losses there; 78 of 157 addresses checked were in.
    FRESH46: {"en": (7, 3), "ru": (6, 3)},
    # Arabic and Korean only: Zelensky on the troops' camps and the shells, Blinken's missile sanctions,
    # wounded North Koreans in a Kursk hospital, the M1991 launcher, and hard negatives on the Crimean
    # speaker's invitation, Shoigu in Tehran and China, Kozlov's 2019 visit and Orban with Putin; 72 of
    # about 150 addresses checked were in.
    FRESH47: {"ar": (6, 2), "ko": (8, 3)},
    # English and Russian only: Seoul on missiles for Russia, Shoigu with Kim (2023, March 2025), Sudzha
    # with North Korean reinforcements, losses in Kursk, the sappers, the supply ship at Rason, Putin's
    # 2017 greeting, and hard negatives on Kim Jong Il with Putin and Medvedev, Russian troops in Kursk
    # and Belarus, missile tests, Lukashenko, Belousov with China and North Korea's defence minister; 110
    # of 223 addresses checked were in.
    FRESH48: {"en": (10, 4), "ru": (10, 6)},
    # Arabic and Korean only: Gerasimov and Kim on Kursk and the treaty, Volodin's trip, Kirby's
    # briefings, the dead not taken back, the Kim Jong Il-Putin summits and the 1999 treaty, and hard
    # negatives on missile launches, Yeonpyeong, Kursk without North Koreans, the Kursk submarine,
    # Putin with Xi and Trump; more than half of about 240 addresses checked were in.
    FRESH49: {"ar": (12, 6), "ko": (18, 6)},
    # English and Russian only: the Kharkiv missiles (Kostin, Filchakov), Skibitskyi's dud shells, the
    # NIS on drone training, Zelensky's 10,000 soldiers, strike drones for Russia, Kim's 2024 greeting
    # and Putin's 2025 telegram, and hard negatives on Shoigu and Lavrov with China, Iran and Belarus
    # and the Kursk nuclear plant; about 60 of 150 addresses checked were in.
    FRESH50: {"en": (8, 4), "ru": (8, 4)},
    # Arabic and Korean only: Putin's invitation carried by Lavrov, Shoigu in Tehran after Kim, Kirby
    # on the dead in Kursk, the Koksan guns, the prisoners, Russia's drone help, Medvedev with Kim, and
    # hard negatives on the Kursk incursion and the 1943 battle, Shoigu in Beijing and Tehran, Lavrov
    # with Seoul's ministers, a tourist route and Medvedev with Ri Hi Yong; well over half of about 230
    # addresses checked were in.
    FRESH51: {"ar": (10, 5), "ko": (13, 5)},
    # English and Russian only: Seoul's ministry on the treaty and the troop movements, Cho Hyun to
    # Lavrov and at the Security Council, Chang Ho-jin after Vostochny, the WSJ and NYT on ammunition
    # purchases, Mash on the soldiers before Kursk, Kim's New Year letter, and hard negatives on Lavrov
    # with Iran, Belousov with Belarus and drones over Kursk; about 45 of 110 addresses checked were in.
    FRESH52: {"en": (7, 3), "ru": (10, 4)},
    # Arabic and Korean only: Seoul on missiles for Moscow, the launch during Kim's 2023 visit, the
    # first unit in Kursk, the first summit's announcement, the satellite technology, military
    # delegations from 1990 to 2025, and hard negatives on the Kursk nuclear plant, the North's
    # missiles told to Russians, Wonsan and the Rason trains; well over half of about 90 addresses
    # checked were in.
    FRESH53: {"ar": (7, 4), "ko": (12, 4)},
}


@pytest.mark.parametrize(
    "path",
    [LABELS, *(p for p in FRESH_SETS if p != FRESH2)],  # fresh2.jsonl: 42 texts, 8-14 per language
    ids=lambda path: path.stem,
)
def test_the_set_is_real_and_broad(path: Path) -> None:
    texts = _texts(path)
    for lang, (least, negatives) in SMALL_SETS.get(path, dict.fromkeys(LANGUAGES, (30, 8))).items():
        mine = [t for t in texts if t["language"] == lang]
        assert len(mine) >= least, lang
        assert sum(1 for t in mine if not t["expected"]) >= negatives, f"{lang}: too few hard negatives"
    assert all(t["url"].startswith("http") for t in texts)
    assert path.name in (HERE / "PROVENANCE.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "path",
    FRESH_SETS,
    ids=lambda path: path.stem,
)
def test_the_fresh_sets_are_apart_from_the_others(path: Path) -> None:
    fresh = _texts(path)
    others = {t["url"] for p in (LABELS, HOLDOUT, *FRESH_SETS) if p != path for t in _texts(p)}
    assert not [t["id"] for t in fresh if t["url"] in others]
    assert all("outlet" in t and "date" in t for t in fresh)  # provenance kept per text
    assert len({t["id"] for t in fresh}) == len(fresh)
    assert path.name in (HERE / "PROVENANCE.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_bundled_rules_hold_per_language(report: dict, lang: str) -> None:
    score = next(s for s in report["languages"] if s["language"] == lang)
    precision_floor, recall_floor = FLOORS[lang]
    assert score["precision"] >= precision_floor, score
    assert score["recall"] >= recall_floor, score


def test_json_lists_every_disagreement_with_spans(report: dict) -> None:
    overall = report["overall"]
    assert len(report["disagreements"]) == overall["fp"] + overall["fn"]
    assert report["texts"] == len(LABELS.read_text(encoding="utf-8").splitlines())
    for d in report["disagreements"]:
        assert d["kind"] in ("extra", "missed")
        text = {"title": d["title"], "body": d["body"]}
        for s in d["spans"]:
            assert text[s["field"]][s["start"] : s["end"]] == s["text"]
        if d["kind"] == "extra":
            assert d["spans"], d  # a rule never fires on nothing here
    rules = {r["rule"] for r in report["rules"]}
    assert "nk-troops-for-russia" in rules and "kim-putin" in rules


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _disagreements(labels: Path) -> list[dict]:
    """The bundled rules' disagreements with a labelled file, through the real command."""
    proc = run_cli("rules", "eval", str(labels), "--json", config=CONFIG)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["disagreements"]


def test_text_output_marks_words_and_counts(tmp_path: Path) -> None:
    labels = _write(
        tmp_path,
        "few.toml",
        """
[[text]]
id = "hit"
language = "en"
title = "Kim Jong Un and Putin meet"
body = "The summit of Kim Jong Un and Putin took place in Vladivostok."
expected = ["kim-putin", "kim-putin-summit-critical"]

[[text]]
id = "missed"
language = "en"
text = "Putin met Kim Jong Un."
expected = ["kim-putin", "kim-putin-summit-critical"]

[[text]]
id = "extra"
language = "en"
text = "Kim Jong Un wrote to Putin."
expected = []
""",
    )
    proc = run_cli("rules", "eval", str(labels), config=CONFIG)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "3 texts, 9 rules, 1 texts exactly right" in out
    assert "missed [en] kim-putin-summit-critical: expected, did not fire" in out
    assert "terms found: kim_jong_un, kim_surname, kim_headline, putin, meeting_verb, summit" in out
    assert "extra [en] kim-putin: fired, not expected" in out
    assert "body:  [[Kim Jong Un]] wrote to [[Putin]]." in out
    line = next(x for x in out.splitlines() if x.startswith("kim-putin "))
    assert line.split()[1:] == ["2", "1", "0", "0.667", "1.000"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.jsonl", '{"language": "en", "text": "x", "expected": ["kim-putn"]}\n', "unknown rule 'kim-putn'"),
        ("bad.jsonl", '{"language": "en", "text": "x"}\n', "expected must be a list"),
        ("bad.jsonl", '{"text": "x", "expected": []}\n', "language is required"),
        ("bad.jsonl", "{not json\n", "line 1: not JSON"),
        ("bad.jsonl", '{"language": "en", "txt": "x", "expected": []}\n', "unknown key 'txt'"),
        ("bad.toml", "[[text]\n", "invalid TOML"),
        ("empty.jsonl", "\n", "no labelled texts"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, name: str, content: str, message: str) -> None:
    proc = run_cli("rules", "eval", str(_write(tmp_path, name, content)), config=CONFIG)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert proc.stdout == ""


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    proc = run_cli("rules", "eval", str(tmp_path / "nope.jsonl"), config=CONFIG)
    assert proc.returncode == 2
    assert "cannot read" in proc.stderr


@pytest.mark.parametrize(("path", "lang"), [(p, lang) for p in SET_FLOORS for lang in SET_FLOORS[p]])
def test_measured_sets_stay_where_they_were_measured(set_reports: dict[Path, dict], path: Path, lang: str) -> None:
    # See PROVENANCE.md: holdout and fresh to fresh6 are tuning sets now; fresh7.jsonl was
    # labelled and committed before the rules ran on it.  Floors guard against regressions.
    score = next(s for s in set_reports[path]["languages"] if s["language"] == lang)
    precision_floor, recall_floor = SET_FLOORS[path][lang]
    assert score["precision"] >= precision_floor, score
    assert score["recall"] >= recall_floor, score


def test_the_made_up_texts_come_out_as_labelled() -> None:
    # made_up.toml: short made-up texts, one group per reading a round or a matcher change
    # settled (the arms rule's test guard, the spirit of self-sacrifice, Russia firing North
    # Korea's missiles, another president's title), each failing on the config from before it.
    assert [(d["id"], d["rule"], d["kind"]) for d in _disagreements(MADE_UP)] == []


def test_the_bundled_rules_stay_silent_on_the_real_feeds_of_general_news(tmp_path: Path) -> None:
    # Every entry of the real feeds and news sitemaps in tests/data/corpus (sources in its
    # SOURCES.md: the BBC, the Guardian, Spiegel, NPR, Urdu and Russian news, podcasts, ...),
    # read by wirewatch's own parser: general news, none of it on the topic, though some
    # names Russia, Korea or Putin ("Can you take a 3DS into North Korea?").  What a daemon
    # sees most of the day; every alert here would be a false alarm.
    from monitor.core.feeds import parse_feed
    from monitor.errors import ParseError

    feeds = ROOT / "tests" / "data" / "corpus" / "feeds"
    lines: list[str] = []
    for path in sorted([*feeds.glob("*.*"), *(feeds / "sitemaps").glob("*.*")]):
        try:
            parsed = parse_feed(path.read_bytes(), f"https://example.org/{path.name}")
        except ParseError:
            continue  # the corpus keeps broken feeds too; the parser's tests cover them
        for n, item in enumerate(parsed.items):
            body = "\n".join(p for p in (item.summary, item.text) if p)
            if not (item.title or body).strip():
                continue
            language = (item.language or parsed.language or "en").replace("_", "-").split("-")[0].lower()
            entry = {"id": f"{path.name}#{n}", "language": language, "title": item.title, "body": body}
            lines.append(json.dumps({**entry, "url": item.url or "", "expected": []}, ensure_ascii=False))
    labels = _write(tmp_path, "general-news.jsonl", "\n".join(lines) + "\n")
    named = sum(1 for line in lines if any(w in line for w in ("Korea", "Russia", "Putin", "Росси", "Путин")))
    assert len(lines) >= 1_400 and named >= 10, (len(lines), named)
    assert _disagreements(labels) == []


def _narrowed_config(tmp_path: Path) -> Path:
    """The bundled config with one rule's query cut to a word no text has: an edit gone wrong."""
    text = CONFIG.read_text(encoding="utf-8")
    start = text.index('name = "kim-putin"\nquery = ')
    end = text.index("'''\n", text.index("'''", start) + 3) + 4
    edited = text[:start] + 'name = "kim-putin"\nquery = \'"Kim Jong Un" NEAR/0 "Kardashian"\'\n' + text[end:]
    return _write(tmp_path, "narrowed.toml", edited)


_TWO_TEXTS = """
[[text]]
id = "summit"
language = "en"
text = "Kim Jong Un met Vladimir Putin in Vladivostok on Wednesday."
expected = ["kim-putin"]

[[text]]
id = "weather"
language = "en"
text = "Rain is expected in Seoul on Wednesday."
expected = []
"""


def test_against_another_config_lists_what_an_edit_made_new_and_gone(tmp_path: Path) -> None:
    labels = _write(tmp_path, "two.toml", _TWO_TEXTS)
    narrowed = _narrowed_config(tmp_path)
    # The narrowed config scored against the bundled one: the summit is newly missed.
    proc = run_cli("rules", "eval", str(labels), "--against", str(CONFIG), "--json", config=narrowed)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    against = doc["against"]
    assert against["config"] == str(CONFIG)
    assert [(d["id"], d["rule"], d["kind"]) for d in against["new"]] == [("summit", "kim-putin", "missed")]
    assert against["gone"] == []
    assert against["overall"]["fn"] == 0 and doc["overall"]["fn"] == 1
    assert against["exact"] == 2 and doc["exact"] == 1
    # The other way round, the edit is undone: the miss is gone.
    proc = run_cli("rules", "eval", str(labels), "--against", str(narrowed), config=CONFIG)
    assert proc.returncode == 0, proc.stderr
    assert f"against {narrowed}: overall -/0.000 -> 1.000/1.000, 1 -> 2 texts exactly right" in proc.stdout
    assert "0 new disagreements, 1 gone" in proc.stdout
    assert "  gone: summit [en] kim-putin: expected, did not fire" in proc.stdout


def test_several_files_give_their_figures_and_the_pooled_ones(tmp_path: Path) -> None:
    first = _write(tmp_path, "two.toml", _TWO_TEXTS)
    second = _write(
        tmp_path,
        "one.jsonl",
        json.dumps({"id": "k", "language": "en", "text": "Kim Jong Un met Putin.", "expected": []}) + "\n",
    )
    proc = run_cli("rules", "eval", str(first), str(second), "--json", config=CONFIG)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [f["file"] for f in doc["files"]] == [str(first), str(second)]
    pooled = doc["pooled"]
    assert pooled["files"] == 2 and pooled["texts"] == 3 and pooled["exact"] == 2
    assert pooled["overall"] == {"tp": 1, "fp": 1, "fn": 0, "precision": 0.5, "recall": 1.0}
    assert pooled["disagreement_count"] == 1 and "against" not in pooled
    text = run_cli("rules", "eval", str(first), str(second), "--against", str(CONFIG), config=CONFIG)
    assert text.returncode == 0, text.stderr
    assert f"{second}: 1 texts, 0 exactly right; en 0.000/-" in text.stdout
    assert "\nk [en] kim-putin: fired, not expected\n" in text.stdout
    assert "pooled over 2 files: 3 texts, 2 texts exactly right" in text.stdout
    assert "0 new disagreements, 0 gone" in text.stdout  # a config against itself changes nothing
    narrowed = _narrowed_config(tmp_path)
    proc = run_cli("rules", "eval", str(first), str(second), "--against", str(narrowed), "--json", config=CONFIG)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["pooled"]["against"]["new_count"] == 1  # the narrowed config misses nothing "k" expects
    assert doc["pooled"]["against"]["gone_count"] == 1  # ... and misses the summit the bundled one finds
    assert [d["id"] for d in doc["files"][0]["against"]["gone"]] == ["summit"]
    assert [d["id"] for d in doc["files"][1]["against"]["new"]] == ["k"]
